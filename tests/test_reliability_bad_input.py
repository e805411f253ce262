"""Issue 9, "bad input, everywhere": one test per (model or pipeline, bad input) of tests/bad_input_cases.py.

Each must raise a ValueError/TypeError naming the value, from hf-seq / transformers code rather than from inside torch.
Cases the owners have not fixed yet are strict xfails carrying the needed fix (see KNOWN_FAILURES); the table with the
counts is written by `python benchmarks/bad_input_table.py`.
"""

import pytest
from bad_input_cases import all_cases, run_case

CASES = all_cases()


def _param(case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_is_refused_clearly(case):
    passed, what = run_case(case)
    assert passed, f"{case.id}: {what}"


def test_table_covers_every_family_and_kind():
    families = {c.family for c in CASES}
    assert {"recurrent", "recurrent-classification", "seq2seq", "transformer", "word2vec"} <= families
    kinds = {c.kind for c in CASES}
    for kind in ("id_out_of_range", "negative_id", "float_ids", "empty_batch", "zero_length", "mask_shape_mismatch",
                 "too_long_for_positions", "label_out_of_range", "nan_inputs_embeds", "mask_nan", "unknown_words",
                 "yaml_invalid_syntax", "yaml_unknown_key", "generate_id_out_of_range"):
        assert kind in kinds, kind
    assert len(CASES) >= 200

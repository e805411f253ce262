"""Issues 9 and 20, "bad input, everywhere": one test per (model or pipeline, bad input) of tests/bad_input_cases.py.

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
    assert {"recurrent", "recurrent-classification", "seq2seq", "transformer", "word2vec", "training", "hub"} <= families
    kinds = {c.kind for c in CASES}
    for kind in ("id_out_of_range", "negative_id", "float_ids", "empty_batch", "zero_length", "mask_shape_mismatch",
                 "too_long_for_positions", "label_out_of_range", "nan_inputs_embeds", "mask_nan", "unknown_words",
                 "yaml_invalid_syntax", "yaml_unknown_key", "generate_id_out_of_range",
                 # issue 20
                 "mask_value_not_0_or_1", "fully_masked_row", "all_labels_ignored", "generate_right_padding",
                 "yaml_duplicate_key", "yaml_negative_max_steps", "yaml_generate_temperature_0", "yaml_block_size_0",
                 "load_not_utf8", "load_bad_header", "load_bad_float", "load_nan_vector", "save_lone_surrogate_word",
                 "word_pairs_nan_score", "analogies_empty_file", "most_similar_negative_topn", "another_runs_folder",
                 "output_is_an_input", "output_is_another_model", "last_negative", "value_wrong_type",
                 "config_fails_validation", "pickle_only_folder", "truncated_safetensors"):
        assert kind in kinds, kind
    assert len(CASES) >= 340

#!/usr/bin/env python
"""Run the bad-input table of issues 9 and 20 (tests/bad_input_cases.py) and write benchmarks/results/bad_input_table.md.

    OMP_NUM_THREADS=1 python benchmarks/bad_input_table.py

Each row: the model or pipeline, the bad input, PASS (a ValueError/TypeError naming the value, raised before torch)
or FAIL with what happened instead and the fix the owner needs.
"""

import collections
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import torch  # noqa: E402
from bad_input_cases import all_cases, run_case  # noqa: E402
from transformers.utils import logging  # noqa: E402

from hf_seq.io_utils import atomic_write  # noqa: E402


def main():
    torch.set_num_threads(1)
    logging.set_verbosity_error()
    started = time.time()
    cases = all_cases()
    rows, per_family = [], collections.defaultdict(lambda: [0, 0])
    for case in cases:
        passed, what = run_case(case)
        per_family[case.family][0] += 1
        per_family[case.family][1] += passed
        rows.append((case, passed, what))
    tried, passed = len(rows), sum(p for _, p, _ in rows)
    out = os.path.join(HERE, "results", "bad_input_table.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write("# Bad-input table (issues 9 and 20)\n\n")
        f.write(f"Command: `OMP_NUM_THREADS=1 python benchmarks/bad_input_table.py` ({time.time() - started:.0f} s).\n\n")
        f.write(f"**{passed} of {tried} cases refused with a clear ValueError/TypeError naming the value.**\n\n")
        f.write("| family | tried | passed |\n|---|---|---|\n")
        for family, (n, ok) in sorted(per_family.items()):
            f.write(f"| {family} | {n} | {ok} |\n")
        f.write("\n## Failing cases and the fix each needs\n\n| target | bad input | what happened | fix |\n|---|---|---|---|\n")
        for case, ok, what in rows:
            if not ok:
                f.write(f"| {case.target} | {case.kind} | {what.replace('|', '/')[:160]} | {case.xfail or 'new failure'} |\n")
        f.write("\n## All cases\n\n| target | bad input | result | message |\n|---|---|---|---|\n")
        for case, ok, what in rows:
            f.write(f"| {case.target} | {case.kind} | {'PASS' if ok else 'FAIL'} | {what.replace('|', '/')[:160]} |\n")
    print(f"{passed} of {tried} bad-input cases passed -> {out}")


if __name__ == "__main__":
    main()

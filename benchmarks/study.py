#!/usr/bin/env python
"""The side-by-side study (issue 8): the classic architectures trained and evaluated on the same data, tokenizer and
budget; writes benchmarks/results/study/study.json (machine, versions, seeds, commit, every number) and REPORT.md
(tables + PNG plots).

    OMP_NUM_THREADS=1 python benchmarks/study.py --subset lm,long_range,translation,word_vectors
    python benchmarks/study.py --subset lm --budget-seconds 600 --jobs 2   # longer LM budget, two models at a time
    python benchmarks/study.py --subset lm,long_range,word_vectors --quick # seconds; what tests/test_study.py runs

Long runs resume: an interrupted LM model restarts from its last checkpoint in runs/study/lm/<model>/checkpoint, and
finished models / translation systems (result files in runs/study/) are skipped on rerun. Subsets not named keep
their earlier numbers in the report.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the `study` package beside this file

from study.cli import main  # noqa: E402

if __name__ == "__main__":
    main()

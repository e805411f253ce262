#!/usr/bin/env python
"""The side-by-side study (issues 8 and 23): the classic architectures trained and evaluated on the same data,
tokenizer and budget; writes benchmarks/results/study/study.json (machine, versions, seeds, commit, every number) and
REPORT.md (tables + PNG plots).

    OMP_NUM_THREADS=1 python benchmarks/study.py --all                     # every section (hours on 2 CPU cores)
    OMP_NUM_THREADS=1 python benchmarks/study.py --all --quick             # every section at smoke size, minutes;
                                                                           # what tests/test_study.py runs
    python benchmarks/study.py --subset lm --budget 3600 --seeds 0 1 2 --jobs 2   # one CPU-hour per model and seed
    python benchmarks/study.py --subset lm --lm 'recipes={lstm: {learning_rate: 1e-3, dropout: 0.3}}'  # a recipe

The LM models train with transformers.Trainer (hf_seq's StatefulLMTrainer for the recurrent ones) for a budget of
CPU seconds counted across resumes; per-architecture recipes live in benchmarks/study/lm.py's RECIPES table. Long
runs resume: an interrupted LM model restarts from its newest complete Trainer checkpoint in
runs/study/lm/[seed<k>/]<model>/checkpoint-*, and finished models / translation systems (result files in runs/study/)
are skipped on rerun. Subsets not named keep their earlier numbers in the report.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the `study` package beside this file

from study.cli import main  # noqa: E402

if __name__ == "__main__":
    main()

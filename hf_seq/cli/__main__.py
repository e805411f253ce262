"""`python -m hf_seq.cli ...` is `hf-seq ...`."""

import sys

from . import main

sys.exit(main())

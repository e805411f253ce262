"""`python -m hf_seq.train EXPERIMENT [options] [section.key=value ...]`: the same as `hf-seq train`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))

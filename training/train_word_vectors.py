#!/usr/bin/env python
"""Train word2vec vectors with gensim on local text and write them in word2vec text format (for
`hf_seq.embeddings.load_pretrained_embeddings`). No GloVe / Google News vectors are available offline, so the
classifiers' "pre-trained" vectors come from here: WikiText-2 + PTB + the text8 prefix (about 3.5M words).
`--polarity_dir` adds the training part (train + dev, never test) of train_classifier.py's fixed polarity split as
unlabelled text, so the classifier's vocabulary is covered.

    OMP_NUM_THREADS=1 python training/train_word_vectors.py --dim 128 --out runs/vectors/wiki_ptb_text8.128d.txt
    OMP_NUM_THREADS=1 python training/train_word_vectors.py --dim 128 --min_count 1 \
        --polarity_dir ../shared/data/sentence-polarity --out runs/vectors/wiki_ptb_text8_polaritytrain.128d.txt
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from gensim.models import Word2Vec

DEFAULT_FILES = [
    "../shared/data/wikitext-2/wiki.train.tokens",
    "../shared/data/ptb/ptb.train.txt",
    "../shared/data/text8-head/text8.split.head",
]


class Sentences:
    """Lower-cased whitespace tokens, one sentence per non-empty line; re-iterable for gensim's epochs."""

    def __init__(self, files):
        self.files = files

    def __iter__(self):
        for path in self.files:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    words = line.lower().split()
                    if words and not words[0].startswith("="):  # WikiText section headings
                        yield words


def main(argv=None):
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    cli.add_argument("--out", required=True)
    cli.add_argument("--dim", type=int, default=100)
    cli.add_argument("--window", type=int, default=5)
    cli.add_argument("--min_count", type=int, default=3)
    cli.add_argument("--epochs", type=int, default=5)
    cli.add_argument("--workers", type=int, default=1)
    cli.add_argument("--seed", type=int, default=0)
    cli.add_argument("--polarity_dir", help="add the train/dev part of the fixed polarity split (default split args)")
    opts = cli.parse_args(argv)
    started = time.time()
    os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
    if opts.polarity_dir:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from train_classifier import DataArguments, read_polarity

        splits = read_polarity(DataArguments(data_dir=opts.polarity_dir))
        part = os.path.join(os.path.dirname(os.path.abspath(opts.out)), "polarity_train_part.txt")
        with open(part, "w") as f:
            f.write("\n".join(splits["train"]["text"] + splits["dev"]["text"]) + "\n")
        opts.files = list(opts.files) + [part]
    model = Word2Vec(Sentences(opts.files), vector_size=opts.dim, window=opts.window, min_count=opts.min_count,
                     sg=1, negative=5, epochs=opts.epochs, workers=opts.workers, seed=opts.seed)
    model.wv.save_word2vec_format(opts.out, binary=False)
    print(f"{len(model.wv)} words x {opts.dim} dims -> {opts.out} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()

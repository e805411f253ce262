"""Rebuild hf_seq/data/tatoeba_en_fr.tsv: a small, short English->French subset of the Tatoeba pairs.

    python training/make_tatoeba_subset.py --source $HF_SEQ_DATA/fra-eng/fra.txt --pairs 6000

Rule (deterministic): English sentences of 3-6 whitespace words, French of at most 8, the first French translation
of each distinct English sentence, then a seeded random sample of `--pairs` of them, in file order.
Data: Tatoeba via manythings.org/anki, CC BY 2.0 (see hf_seq/data/TATOEBA_ATTRIBUTION.md).
"""

import argparse
import os
import random

from hf_seq.training.experiment import data_root


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=os.path.join(data_root() or ".", "fra-eng", "fra.txt"),
                        help="fra.txt of manythings.org's fra-eng.zip (default: $HF_SEQ_DATA/fra-eng/fra.txt)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "hf_seq", "data", "tatoeba_en_fr.tsv"))
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    seen, pairs = set(), []
    with open(args.source, encoding="utf-8") as f:
        for line in f:
            en, fr = line.rstrip("\n").split("\t")[:2]
            if 3 <= len(en.split()) <= 6 and len(fr.split()) <= 8 and en not in seen:
                seen.add(en)
                pairs.append((en, fr))
    keep = sorted(random.Random(args.seed).sample(range(len(pairs)), args.pairs))
    with open(args.out, "w", encoding="utf-8") as f:
        for i in keep:
            f.write(f"{pairs[i][0]}\t{pairs[i][1]}\n")
    print(f"{len(pairs)} candidate pairs, wrote {len(keep)} to {args.out}")


if __name__ == "__main__":
    main()

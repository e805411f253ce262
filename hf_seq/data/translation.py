"""Translation data: sentence pairs (source, target) for train / validation / test, a joint BPE vocabulary over both
sides, and the tokenised `datasets.Dataset` that `DataCollatorForSeq2Seq` pads.

Data sets (`dataset=`):

- `tatoeba`: the 6,000 short English-French Tatoeba pairs embedded in the package (`tatoeba_en_fr.tsv`, CC BY 2.0);
  `heldout` pairs each for test and validation after a seeded shuffle, the rest for training. Both translation
  architectures use the same split, so their scores compare.
- `tatoeba-en-fr`: all of `<data_dir>/fra-eng/fra.txt` (manythings.org), pairs up to `max_words` words per side,
  `test_size` pairs each for test and validation.
- `multi30k`: `<data_dir>/multi30k/{train,val,test_2016_flickr}.<lang>` (the WMT16 multimodal task's text).
- `toy`: a synthetic language pair (words renamed by a fixed dictionary, in reverse order): no files at all.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

from datasets import Dataset

from . import embedded_corpus_path

DATASETS = ("tatoeba", "tatoeba-en-fr", "multi30k", "toy")
EMBEDDED_TATOEBA = "tatoeba_en_fr.tsv"
# test split of Multi30k, and its official tokenized lower-cased references (what Multi30k papers score against)
MULTI30K_SPLITS = (("train", "train"), ("validation", "val"), ("test", "test_2016_flickr"))
MULTI30K_TOKENIZED_TEST = os.path.join("tok", "test_2016_flickr.lc.norm.tok.{lang}")

Pairs = list[tuple[str, str]]


def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def toy_pairs(n: int, seed: int, vocab: int, lengths: tuple[int, int]) -> Pairs:
    """A synthetic 'language pair': target = source words renamed by a fixed dictionary, in reverse order."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    rename = {w: f"v{(7 * i + 3) % vocab}" for i, w in enumerate(words)}
    pairs = []
    for _ in range(n):
        src = [rng.choice(words) for _ in range(rng.randint(*lengths))]
        pairs.append((" ".join(src), " ".join(rename[w] for w in reversed(src))))
    return pairs


def data_files(dataset: str, data_dir: str | None, source_lang: str, target_lang: str) -> list[str]:
    """The files (or folders) `load_pairs` reads for `dataset` under `data_dir` (none for the embedded sets)."""
    if dataset == "multi30k":
        root = os.path.join(data_dir or "", "multi30k")
        return [os.path.join(root, f"{stem}.{lang}") for _, stem in MULTI30K_SPLITS for lang in (source_lang, target_lang)]
    if dataset == "tatoeba-en-fr":
        return [os.path.join(data_dir or "", "fra-eng", "fra.txt")]
    return []


def load_pairs(
    dataset: str,
    *,
    source_lang: str,
    target_lang: str,
    data_dir: str | None = None,
    seed: int | None = 0,
    heldout: int = 500,
    test_size: int = 1000,
    max_words: int = 12,
    toy: dict | None = None,
    limits: dict[str, int | None] | None = None,
) -> dict[str, Pairs]:
    """Sentence pairs (source, target) for "train" / "validation" / "test", each cut to `limits[split]` pairs.

    `toy` = {"n", "train", "validation", "vocab", "lengths": (min, max)} sizes the synthetic set."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    for path in data_files(dataset, data_dir, source_lang, target_lang):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{dataset}: {path} not found; set data.data_dir (or ${{HF_SEQ_DATA}}) to the "
                                    f"folder holding {'multi30k/' if dataset == 'multi30k' else 'fra-eng/fra.txt'}")
    if dataset == "toy":
        toy = toy or {"n": 700, "train": 600, "validation": 50, "vocab": 20, "lengths": (2, 6)}
        pairs = toy_pairs(toy["n"], seed, toy["vocab"], tuple(toy["lengths"]))
        cut = toy["train"] + toy["validation"]
        splits = {"train": pairs[: toy["train"]], "validation": pairs[toy["train"] : cut], "test": pairs[cut:]}
    elif dataset == "tatoeba":
        rows = [line.split("\t") for line in read_lines(embedded_corpus_path(EMBEDDED_TATOEBA)) if line]
        pairs = [(en, fr) if source_lang == "en" else (fr, en) for en, fr in rows]
        random.Random(seed).shuffle(pairs)
        splits = {"test": pairs[:heldout], "validation": pairs[heldout : 2 * heldout], "train": pairs[2 * heldout :]}
    elif dataset == "multi30k":
        root = os.path.join(data_dir, "multi30k")
        splits = {
            name: list(zip(read_lines(f"{root}/{stem}.{source_lang}"), read_lines(f"{root}/{stem}.{target_lang}")))
            for name, stem in MULTI30K_SPLITS
        }
    else:  # tatoeba-en-fr
        pairs = []
        for line in read_lines(os.path.join(data_dir, "fra-eng", "fra.txt")):
            en, fr = line.split("\t")[:2]
            if len(en.split()) <= max_words and len(fr.split()) <= max_words:
                pairs.append((en, fr) if source_lang == "en" else (fr, en))
        random.Random(seed).shuffle(pairs)
        splits = {"test": pairs[:test_size], "validation": pairs[test_size : 2 * test_size],
                  "train": pairs[2 * test_size :]}
    limits = limits or {}
    return {k: v[: limits[k]] if limits.get(k) else v for k, v in splits.items()}


def official_tokenized_references(dataset: str, data_dir: str | None, target_lang: str, n_test: int) -> list[str] | None:
    """Multi30k's own tokenized lower-cased test references, when the whole test set (`n_test` pairs) is scored."""
    if dataset != "multi30k" or not data_dir:
        return None
    path = os.path.join(data_dir, "multi30k", MULTI30K_TOKENIZED_TEST.format(lang=target_lang))
    if not os.path.isfile(path):
        return None
    refs = read_lines(path)
    return refs if len(refs) == n_test else None


def joint_bpe_tokenizer(train_pairs: Pairs, vocab_size: int, min_frequency: int = 2, model_max_length: int = 64):
    """A byte-level BPE vocabulary trained with `tokenizers` on both sides of the training pairs (Vaswani et al.
    2017, §5.1: one shared source-target vocabulary)."""
    from ..tokenization import build_bpe_tokenizer

    return build_bpe_tokenizer((text for pair in train_pairs for text in pair), vocab_size=vocab_size,
                               min_frequency=min_frequency, model_max_length=model_max_length)


def tokenize_pairs(pairs: Sequence[tuple[str, str]], tokenizer, max_source_length: int,
                   max_target_length: int) -> Dataset:
    """Source ids as the tokenizer gives them (what the translation pipeline feeds the model); target ids + <eos>,
    `max_target_length` tokens at most with it."""
    src = tokenizer([s for s, _ in pairs], truncation=True, max_length=max_source_length)["input_ids"]
    tgt = tokenizer([t for _, t in pairs], truncation=True, max_length=max_target_length - 1)["input_ids"]
    eos = tokenizer.eos_token_id
    return Dataset.from_dict({"input_ids": src, "labels": [ids + [eos] for ids in tgt]})


__all__ = [
    "DATASETS", "data_files", "joint_bpe_tokenizer", "load_pairs", "official_tokenized_references", "read_lines",
    "tokenize_pairs", "toy_pairs",
]  # fmt: skip

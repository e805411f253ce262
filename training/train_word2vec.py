"""Train word2vec (skip-gram / CBOW, negative sampling / hierarchical softmax) with hf-seq's fast trainer.

    python training/train_word2vec.py configs/word2vec_timemachine.yaml            # embedded Time Machine demo
    python training/train_word2vec.py configs/word2vec_wikitext2_sg.yaml           # WikiText-2 + evaluations
    python training/train_word2vec.py configs/word2vec_timemachine.yaml --smoke    # seconds; used by the tests
    python training/train_word2vec.py CONFIG --set training.epochs=1 --set model.architecture=cbow

This is the main way to train (`hf_seq.models.word2vec.training_word2vec.train_word2vec`): per epoch the sub-sampling and dynamic
windows are drawn with numpy, then on a CPU word2vec.c's per-pair SGD runs compiled (numba, `training.backend:
compiled`, Hogwild threads), on a CUDA GPU as the same per-pair SGD in a Triton kernel run by thousands of Hogwild
warps (`training.backend: triton`), elsewhere as batched sparse torch updates (`training.backend: torch`); the
learning rate decays linearly as in the original. The tqdm bar shows words/s and the loss
really optimised (mean per pair of -log sigmoid(pos) - sum log sigmoid(-noise), or the Huffman-path loss).
`Word2VecForPreTraining.forward` gives the same loss for `Trainer` (see `word2vec_pair_dataset`).

The YAML has four sections: `model` (Word2VecConfig fields), `data` (DataArguments), `training`
(Word2VecTrainingArguments) and `output` (OutputArguments). Writes to output_dir: the model (save_pretrained, with
its tokenizer and remote code), vectors.txt (word2vec C text format), word_map.png (PCA of the chosen words) and
results.json (per-epoch loss and words/s, evaluations when the word-eval files exist).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass, field

import torch
import yaml
from transformers import HfArgumentParser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hf_seq.models.word2vec import Word2VecForPreTraining, Word2VecKeyedVectors  # noqa: E402
from hf_seq.models.word2vec.training_word2vec import (  # noqa: E402
    Word2VecTrainingArguments,
    prepare_remote_code,
    prepare_word2vec,
    train_word2vec,
)
from hf_seq.plotting import plot_word_map  # noqa: E402
from hf_seq.training.experiment import check_types, read_yaml  # noqa: E402

EMBEDDED_CORPUS = os.path.join(ROOT, "hf_seq", "data", "timemachine.txt")
MODEL_FIELDS = ("architecture", "cbow_mean", "objective", "negative", "ns_exponent", "window", "sample", "vector_size")


@dataclass
class DataArguments:
    corpus: str = field(default=EMBEDDED_CORPUS, metadata={"help": "text file, one sentence/paragraph per line"})
    lowercase: bool = field(default=True, metadata={"help": "lower-case before counting"})
    letters_only: bool = field(default=False, metadata={"help": "replace non-letters by spaces (d2l's Time Machine)"})
    min_count: int = field(default=5, metadata={"help": "drop words seen fewer times"})
    max_vocab_size: int | None = field(default=None, metadata={"help": "keep only the most frequent words"})
    max_lines: int | None = field(default=None, metadata={"help": "read only the first lines (quick runs)"})


@dataclass
class OutputArguments:
    output_dir: str = field(default="runs/word2vec_timemachine")
    plot_words: list[str] = field(default_factory=list, metadata={"help": "words drawn in word_map.png"})
    neighbours_of: list[str] = field(default_factory=list, metadata={"help": "print these words' nearest words"})
    analogies: str | None = field(default=None, metadata={"help": "questions-words.txt to evaluate on"})
    word_pairs: list[str] = field(default_factory=list, metadata={"help": "word-similarity files (Spearman)"})


def load_config(path: str, overrides: list[str]) -> dict:
    raw = read_yaml(path)  # a missing file or bad YAML syntax is refused naming the file
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    for section, cls in (("data", DataArguments), ("training", Word2VecTrainingArguments), ("output", OutputArguments)):
        check_types(section, raw.get(section) or {}, cls, path)
    unknown = set(raw) - {"model", "data", "training", "output"}
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)}; expected model, data, training, output")
    return raw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="YAML experiment file")
    parser.add_argument("--set", action="append", default=[], help="override, e.g. training.epochs=1")
    parser.add_argument("--smoke", action="store_true", help="tiny run (first 300 lines, 1 epoch) for tests")
    cli = parser.parse_args(argv)
    raw = load_config(cli.config, cli.set)
    model_kwargs = dict(raw.get("model") or {})
    bad = set(model_kwargs) - set(MODEL_FIELDS)
    if bad:
        raise ValueError(f"unknown model fields {sorted(bad)}; allowed: {MODEL_FIELDS}")
    (data_args,) = HfArgumentParser(DataArguments).parse_dict(raw.get("data") or {})
    (train_args,) = HfArgumentParser(Word2VecTrainingArguments).parse_dict(raw.get("training") or {})
    (out_args,) = HfArgumentParser(OutputArguments).parse_dict(raw.get("output") or {})
    if cli.smoke:
        data_args.max_lines, data_args.min_count, train_args.epochs = 300, 2, 1

    # 1. one counting pass: vocabulary, counts, encoded corpus
    t0 = time.perf_counter()
    with open(data_args.corpus, encoding="utf-8") as f:
        lines = [line for _, line in zip(range(data_args.max_lines or 10**12), f)]
    if data_args.letters_only:
        lines = [re.sub("[^A-Za-z]+", " ", line) for line in lines]
    tokenizer, config, corpus = prepare_word2vec(
        lines,
        min_count=data_args.min_count,
        lowercase=data_args.lowercase,
        max_vocab_size=data_args.max_vocab_size,
        **model_kwargs,
    )
    prep_seconds = time.perf_counter() - t0
    print(f"vocabulary {config.vocab_size} words, corpus {corpus.raw_words} words ({len(corpus)} in vocabulary)")

    # 2. train (the seed draws the initial vectors too, so a run is reproducible from its YAML)
    torch.manual_seed(train_args.seed)
    model = Word2VecForPreTraining(config)
    t0 = time.perf_counter()
    history = train_word2vec(model, corpus, train_args)
    train_seconds = time.perf_counter() - t0
    for h in history:
        print(f"epoch {h['epoch']}: loss {h['loss']:.4f}  {h['words_per_s']:,.0f} words/s")

    # 3. save: the pre-training model (continue training with from_pretrained), with tokenizer and remote code
    os.makedirs(out_args.output_dir, exist_ok=True)
    prepare_remote_code(model)
    model.save_pretrained(out_args.output_dir)
    tokenizer.save_pretrained(out_args.output_dir)
    vectors = Word2VecKeyedVectors.from_model(model, tokenizer)
    vectors.save_word2vec_format(os.path.join(out_args.output_dir, "vectors.txt"))

    # 4. look at it: neighbours, PCA map, evaluations
    results = {
        "config": cli.config,
        "model": {k: getattr(config, k) for k in MODEL_FIELDS},
        "data": asdict(data_args),
        "training": asdict(train_args),
        "vocab_size": config.vocab_size,
        "raw_words": corpus.raw_words,
        "prepare_seconds": round(prep_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "history": history,
        "smoke": cli.smoke,
    }
    neighbours = {}
    for word in out_args.neighbours_of:
        if word in vectors:
            neighbours[word] = [w for w, _ in vectors.most_similar(word, topn=5)]
            print(f"{word}: {', '.join(neighbours[word])}")
    results["neighbours"] = neighbours
    if out_args.plot_words:
        png = os.path.join(out_args.output_dir, "word_map.png")
        results["plotted_words"] = plot_word_map(vectors, out_args.plot_words, png)
        print(f"wrote {png}")
    if out_args.analogies and os.path.exists(out_args.analogies):
        a = vectors.evaluate_word_analogies(out_args.analogies)
        results["analogies"] = {k: a[k] for k in ("semantic", "syntactic", "total", "total_questions", "oov_ratio")}
        print(f"analogies: {results['analogies']}")
    for path in out_args.word_pairs:
        if os.path.exists(path):
            results.setdefault("word_pairs", {})[os.path.basename(path)] = vectors.evaluate_word_pairs(path)
    with open(os.path.join(out_args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()

"""word2vec (`task: word2vec`): skip-gram / CBOW with negative sampling / hierarchical softmax, trained by hf-seq's
fast trainer (`hf_seq.models.word2vec.training_word2vec.train_word2vec`: word2vec.c's per-pair SGD compiled with
numba on CPU, a Triton kernel on a CUDA GPU, batched sparse torch updates elsewhere; linear learning-rate decay).

    hf-seq train word2vec_timemachine              # the embedded Time Machine: ~10 s
    hf-seq train word2vec_wikitext2_sg             # WikiText-2 + analogy and word-similarity evaluations
    hf-seq train word2vec_polarity_vectors         # the classifier's vectors (classify_* builds them on first use)
    hf-seq train word2vec_timemachine --smoke      # seconds

Sections: `model` (Word2VecConfig fields), `data` (the corpus files and what to look at afterwards: `plot_words`,
`neighbours_of`, `analogies`, `word_pairs`), `training` (`Word2VecTrainingArguments` + `output_dir`).

The run folder holds the pre-training model (`AutoModelForPreTraining`; continue training with `from_pretrained`) with
its tokenizer and remote code for every head (AutoModel vectors, fill-mask), `vectors.txt` (word2vec C text format,
what `model.word_vectors` of a classifier reads), `word_map.png` (PCA of `plot_words`) and `eval_results.json`
(per-epoch loss and words/s, neighbours, evaluations).
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers.utils import logging

from ..data import embedded_corpus_path
from ..models.word2vec import Word2VecConfig, Word2VecForPreTraining, Word2VecKeyedVectors
from ..models.word2vec.training_word2vec import (
    Word2VecTrainingArguments,
    prepare_remote_code,
    prepare_word2vec,
    resolve_backend,
    train_word2vec,
)
from .experiment import DATA_ENV, ConfigError, Experiment, TaskSpec, data_root, resolve_path
from .run_folder import write_run_folder

logger = logging.get_logger(__name__)

MODEL_FIELDS = ("architecture", "cbow_mean", "objective", "negative", "ns_exponent", "window", "sample", "vector_size")


@dataclass
class DataArguments:
    corpus: list[str] | None = field(
        default=None, metadata={"help": "text files, one sentence/paragraph per line; default: embedded Time Machine"}
    )
    polarity_dir: str | None = field(
        default=None,
        metadata={"help": "add the train + dev snippets (never test) of the text-classification runner's fixed "
                          "sentence-polarity split (its default split) as unlabelled text"},
    )
    skip_headings: bool = field(default=False, metadata={"help": "drop WikiText section headings ('= Title =')"})
    lowercase: bool = field(default=True, metadata={"help": "lower-case before counting"})
    letters_only: bool = field(default=False, metadata={"help": "replace non-letters by spaces (d2l's Time Machine)"})
    min_count: int = field(default=5, metadata={"help": "drop words seen fewer times"})
    max_vocab_size: int | None = field(default=None, metadata={"help": "keep only the most frequent words"})
    max_lines: int | None = field(default=None, metadata={"help": "read only the first lines of each file"})
    plot_words: list[str] = field(default_factory=list, metadata={"help": "words drawn in word_map.png"})
    neighbours_of: list[str] = field(default_factory=list, metadata={"help": "record these words' nearest words"})
    analogies: str | None = field(default=None, metadata={"help": "questions-words.txt to evaluate on"})
    word_pairs: list[str] = field(default_factory=list, metadata={"help": "word-similarity files (Spearman)"})
    results_file: str | None = field(default=None, metadata={"help": "a copy of eval_results.json (benchmarks)"})


@dataclass
class Word2VecRunArguments(Word2VecTrainingArguments):
    """`Word2VecTrainingArguments` + where the run folder goes (the one key every experiment's training has)."""

    output_dir: str = field(default="runs/word2vec", metadata={"help": "the run folder"})


def model_keys(model: dict) -> set[str]:
    return set(MODEL_FIELDS)


def _resolve(exp: Experiment, key: str, value: str, optional_in_smoke: bool) -> str | None:
    """A data path resolved (`$HF_SEQ_DATA`, the experiment's folder); None when a smoke run lacks the data folder."""
    needs_root = DATA_ENV in value
    base = Path(exp.path).resolve().parent if exp.path else None
    if exp.smoke and optional_in_smoke and needs_root and data_root() is None:
        return None
    try:
        path = resolve_path(value, base)
    except ConfigError as e:
        raise ConfigError(f"{exp.path}: section 'data': {key}: {e}") from None
    if not os.path.exists(path):
        if exp.smoke and optional_in_smoke and needs_root:
            return None
        raise ConfigError(f"{exp.path}: section 'data': {key}={value!r}: {path} does not exist")
    return path


def validate(exp: Experiment) -> None:
    data, where = exp.data, exp.path
    # the model section builds a config now (a placeholder vocabulary): a bad value fails before the corpus is read
    try:
        Word2VecConfig(vocab_size=8, min_count=data.min_count, **exp.model)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: section 'model': {e}") from None
    try:
        resolve_backend(exp.training)
    except ValueError as e:
        raise ConfigError(f"{where}: section 'training': {e}") from None
    # data paths: a smoke run without the data folder falls back to the embedded Time Machine (it checks the code)
    if isinstance(data.corpus, str):
        data.corpus = [data.corpus]
    if data.corpus:
        found = [_resolve(exp, "corpus", c, optional_in_smoke=True) for c in data.corpus]
        data.corpus = [c for c in found if c is not None] or None
        if data.corpus is None:
            logger.warning("smoke run: the corpus files are not available, training on the embedded Time Machine")
    if data.polarity_dir:
        data.polarity_dir = _resolve(exp, "polarity_dir", data.polarity_dir, optional_in_smoke=True)
        if data.polarity_dir is not None:
            from .classification import POLARITY_FILES

            missing = [f for f in POLARITY_FILES if not os.path.isfile(os.path.join(data.polarity_dir, f))]
            if missing:
                raise ConfigError(f"{where}: section 'data': polarity_dir={data.polarity_dir!r} lacks "
                                  f"{', '.join(missing)}")
    if data.plot_words:
        try:
            import matplotlib  # noqa: F401
        except ImportError:  # a picture is a bonus: say so now, not after training
            logger.warning("%s: data.plot_words needs matplotlib (pip install 'hf-seq[plots]'): no word_map.png", where)
            data.plot_words = []
    if data.analogies:
        data.analogies = _resolve(exp, "analogies", data.analogies, optional_in_smoke=True)
    if isinstance(data.word_pairs, str):
        data.word_pairs = [data.word_pairs]
    data.word_pairs = [p for p in (_resolve(exp, "word_pairs", w, optional_in_smoke=True) for w in data.word_pairs)
                       if p is not None]


SPEC = TaskSpec(
    data=DataArguments,
    training=Word2VecRunArguments,
    model_keys=model_keys,
    smoke={"data": {"max_lines": 300, "min_count": 2}, "training": {"epochs": 1, "workers": 1, "progress_bar": False}},
    validate=validate,
)


def read_lines(data: DataArguments) -> tuple[list[str], list[str]]:
    """The training lines of every corpus file (+ the polarity snippets), and the names of the sources read."""
    files = data.corpus or [embedded_corpus_path("timemachine.txt")]
    lines, sources = [], []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            part = [line for _, line in zip(range(data.max_lines or 10**12), f)]
        if data.skip_headings:
            part = [line for line in part if not line.lstrip().startswith("=")]
        lines += part
        sources.append(path)
    if data.polarity_dir:
        from .classification import DataArguments as PolarityData
        from .classification import read_polarity

        splits = read_polarity(PolarityData(data_dir=data.polarity_dir))
        part = splits["train"]["text"] + splits["dev"]["text"]  # never the test part
        lines += part[: data.max_lines or None]
        sources.append(f"{data.polarity_dir} (train + dev snippets of the default split)")
    if data.letters_only:
        lines = [re.sub("[^A-Za-z]+", " ", line) for line in lines]
    return lines, sources


def run(exp: Experiment) -> dict:
    from .checkpointing import check_fingerprint, write_fingerprint

    data, args = exp.data, exp.training
    fingerprint = exp.fingerprint()
    if not exp.overwrite:
        check_fingerprint(args.output_dir, fingerprint)  # never overwrite another experiment's vectors

    # 1. one counting pass: vocabulary, counts, encoded corpus
    t0 = time.perf_counter()
    lines, sources = read_lines(data)
    tokenizer, config, corpus = prepare_word2vec(lines, min_count=data.min_count, lowercase=data.lowercase,
                                                 max_vocab_size=data.max_vocab_size, **exp.model)
    prep_seconds = time.perf_counter() - t0
    logger.info("vocabulary %d words, corpus %d words (%d in vocabulary)", config.vocab_size, corpus.raw_words,
                len(corpus))

    # 2. train (the seed draws the initial vectors too, so a run is reproducible from its experiment file)
    torch.manual_seed(args.seed)
    model = Word2VecForPreTraining(config)
    t0 = time.perf_counter()
    history = train_word2vec(model, corpus, args)
    train_seconds = time.perf_counter() - t0
    for h in history:
        logger.info("epoch %d: loss %.4f  %s words/s", h["epoch"], h["loss"], f"{h['words_per_s']:,.0f}")

    # 3. look at it: neighbours, evaluations
    vectors = Word2VecKeyedVectors.from_model(model, tokenizer)
    training = {k: v for k, v in asdict(args).items() if k != "output_dir"}
    results = {
        "model": {k: getattr(config, k) for k in MODEL_FIELDS}, "corpus": sources,
        "data": {k: v for k, v in asdict(data).items() if k != "results_file"}, "training": training,
        "vocab_size": config.vocab_size, "raw_words": corpus.raw_words, "prepare_seconds": round(prep_seconds, 3),
        "train_seconds": round(train_seconds, 3), "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(), "history": history, "smoke": exp.smoke,
    }
    results["neighbours"] = {w: [n for n, _ in vectors.most_similar(w, topn=5)] for w in data.neighbours_of
                             if w in vectors}
    for word, near in results["neighbours"].items():
        logger.info("%s: %s", word, ", ".join(near))
    plotted = [w for w in data.plot_words if w in vectors]
    pictures = {}
    if len(plotted) >= 2:
        from ..plotting import plot_word_map

        results["plotted_words"] = plotted
        pictures["word_map.png"] = lambda path: plot_word_map(vectors, plotted, path)
    if data.analogies:
        a = vectors.evaluate_word_analogies(data.analogies)
        results["analogies"] = {k: a[k] for k in ("semantic", "syntactic", "total", "total_questions", "oov_ratio")}
    for path in data.word_pairs:
        results.setdefault("word_pairs", {})[os.path.basename(path)] = vectors.evaluate_word_pairs(path)

    # 4. the run folder: the pre-training model with remote code for every head, vectors.txt, word_map.png
    prepare_remote_code(model)
    log_history = [{"step": h["epoch"] + 1, "loss": h["loss"]} for h in history]  # one point per epoch
    write_run_folder(args.output_dir, model=model, tokenizer=tokenizer, auto_class="AutoModelForPreTraining",
                     results=results, experiment=exp, log_history=log_history,
                     curve_title=f"{exp.name}: loss per epoch (x: epoch)", pictures=pictures,
                     results_file=data.results_file)
    vectors.save_word2vec_format(os.path.join(args.output_dir, "vectors.txt"))
    write_fingerprint(args.output_dir, fingerprint)  # a classifier reuses these vectors only for this experiment
    return results


def summary(results: dict) -> str:
    last = results["history"][-1]
    lines = [f"{results['vocab_size']} words x {results['model']['vector_size']} dims; last epoch loss "
             f"{last['loss']:.4f} at {last['words_per_s']:,.0f} words/s ({results['train_seconds']:.0f} s)"]
    if "analogies" in results:
        lines.append(f"analogies: {results['analogies']['total']:.4f} of {results['analogies']['total_questions']}")
    for name, entry in results.get("word_pairs", {}).items():
        lines.append(f"{name}: Spearman {entry['spearman']:.4f} over {entry['pairs']} pairs")
    lines += [f"{w}: {', '.join(n)}" for w, n in results.get("neighbours", {}).items()]
    return "\n".join(lines)


__all__ = ["SPEC", "DataArguments", "Word2VecRunArguments", "read_lines", "run", "summary"]

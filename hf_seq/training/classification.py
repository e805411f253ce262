"""Sentence classification (`task: text-classification`): an RNN | GRU | LSTM encoder (deep, bidirectional) pooled
into a classifier, trained with `Trainer` on Pang & Lee's sentence polarity.

    hf-seq train classify_polarity_bilstm              # builds its word vectors first (once), then the BiLSTM
    hf-seq train classify_polarity_bilstm --smoke      # seconds, written under runs/smoke/

Data: sentence polarity v1.0 (rt-polarity.pos / rt-polarity.neg, one snippet a line). It has no official split: a
fixed seeded `1 - test_fraction` / `test_fraction` split, and `dev_fraction` of the training part held out to pick
the best epoch, so the test part is read once, at the end. Metrics: accuracy and macro F1 (scikit-learn's
`average="macro"`, computed here).

`model.word_vectors` initialises the embedding (Collobert et al. 2011; Kim 2014) from either
- `experiment:NAME` — a word2vec experiment (a shipped name such as `word2vec_polarity_vectors`, or a YAML path) that
  this runner trains first when its output folder holds no `vectors.txt` yet, and reuses afterwards; or
- a word2vec / GloVe text file.

This module also holds what the tagger (`hf_seq.training.tagging`) shares: the `model:` section of a recurrent
classifier, the word vectors and the data folder with its smoke fallback.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.utils import logging

from ..models.recurrent import GRUConfig, LSTMConfig, RNNConfig
from ..tokenization import build_word_level_tokenizer
from .experiment import (
    DATA_ENV,
    ConfigError,
    Experiment,
    TaskSpec,
    data_root,
    find_experiment,
    load_experiment,
    resolve_path,
    resume_checkpoint,
    run_experiment,
)
from .run_folder import write_run_folder
from .trainer import RunClock, TrainingClock

logger = logging.get_logger(__name__)

ARCHITECTURES = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig}
MODEL_EXTRAS = {"architecture", "word_vectors", "freeze_embeddings"}
# set by the runner from the data, never by the experiment file
RUNNER_SET = {"vocab_size", "pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "num_labels",
              "id2label", "label2id", "feature_vocab_size", "feature_names"}
VECTORS_EXPERIMENT = "experiment:"  # `word_vectors: experiment:NAME` names a word2vec experiment that builds them
VECTORS_FILE = "vectors.txt"  # what the word2vec runner writes into its run folder
LABELS = ["negative", "positive"]
POLARITY_FILES = ("rt-polarity.neg", "rt-polarity.pos")  # label 0, label 1
SMOKE_MODEL = {"hidden_size": 16, "embedding_size": 16, "num_hidden_layers": 1}


# --------------------------------------------------------------------------------------------------------------------
# 1. the `model:` section of a recurrent classifier (shared with tagging)
# --------------------------------------------------------------------------------------------------------------------
def model_keys(model: dict) -> set[str]:
    """The `model:` keys: the architecture's config fields + architecture / word_vectors / freeze_embeddings.

    An unknown architecture is let through here so that `validate_model` refuses it naming the file."""
    config_cls = ARCHITECTURES.get(model.get("architecture", "lstm"), LSTMConfig)
    keys = {f for f in config_cls.__dataclass_fields__ if not f.startswith("_")} - RUNNER_SET
    if config_cls is RNNConfig:
        keys.add("nonlinearity")
    return keys | MODEL_EXTRAS


def build_config(model: dict, vocab_size: int, pad: int, bos: int, eos: int, **extra):
    """The model section as a config of its architecture (`extra`: labels, feature vocabulary)."""
    kwargs = {k: v for k, v in model.items() if k not in MODEL_EXTRAS}
    return ARCHITECTURES[model.get("architecture", "lstm")](
        vocab_size=vocab_size, pad_token_id=pad, bos_token_id=bos, eos_token_id=eos, **kwargs, **extra
    )


def embedding_size(model: dict) -> int:
    config = build_config(model, vocab_size=8, pad=0, bos=1, eos=2)
    return config.embedding_size


def smoke_model(model: dict) -> dict:
    """A tiny model; a vectors FILE is dropped (its width is the full model's), a vectors experiment is kept and runs
    in its smoke form at the tiny width."""
    model = {**model, **SMOKE_MODEL}
    if model.get("word_vectors") and not str(model["word_vectors"]).startswith(VECTORS_EXPERIMENT):
        model["word_vectors"] = None
        model["freeze_embeddings"] = False
    return model


def validate_model(exp: Experiment, metrics: tuple[str, ...], **placeholder) -> Experiment | None:
    """Everything about `model:` and the metric choice that can be checked before data is read; returns the word
    vectors' experiment when `word_vectors` names one."""
    where = exp.path
    arch = exp.model.get("architecture", "lstm")
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{where}: section 'model': architecture={arch!r} is not one of {sorted(ARCHITECTURES)}")
    # a config with a placeholder vocabulary: an impossible combination fails now, not after the data is read
    build_config(exp.model, vocab_size=8, pad=0, bos=1, eos=2, **placeholder)
    if exp.model.get("freeze_embeddings") and not exp.model.get("word_vectors"):
        raise ConfigError(f"{where}: section 'model': freeze_embeddings=true would freeze a random embedding; set "
                          "model.word_vectors (a vectors file or experiment:NAME) or freeze_embeddings: false")
    best = exp.training.metric_for_best_model
    if best is not None:
        name = best[len("eval_"):] if best.startswith("eval_") else best
        if name not in (*metrics, "loss"):
            raise ConfigError(f"{where}: section 'training': metric_for_best_model={best!r} is not a metric this task "
                              f"computes; choose one of {', '.join((*metrics, 'loss'))}")
    return check_word_vectors(exp)


# --------------------------------------------------------------------------------------------------------------------
# 2. word vectors: a file, or a word2vec experiment built on first use
# --------------------------------------------------------------------------------------------------------------------
def _base_dir(exp: Experiment) -> Path | None:
    return Path(exp.path).resolve().parent if exp.path else None


def vectors_experiment(exp: Experiment) -> Experiment | None:
    """The word2vec experiment named by `model.word_vectors: experiment:NAME`, resolved and validated (None for a file).

    Its output folder is its own `training.output_dir` (shared by every classifier that names it, so the vectors are
    built once); with `--smoke` it runs in its smoke form at the smoke model's width, inside this run's scratch
    folder (`<output_dir>/word_vectors`)."""
    ref = exp.model.get("word_vectors")
    if not ref or not str(ref).startswith(VECTORS_EXPERIMENT):
        return None
    target = str(ref)[len(VECTORS_EXPERIMENT):].strip()
    base = _base_dir(exp)
    if base is not None and (base / target).is_file():
        target = str(base / target)
    where = f"{exp.path}: section 'model': word_vectors={ref!r}"
    try:
        find_experiment(target)
    except FileNotFoundError as e:
        raise ConfigError(f"{where}: {e}") from None
    overrides, output_dir = [], None
    if exp.smoke:
        overrides = [f"model.vector_size={embedding_size(exp.model)}"]
        output_dir = os.path.join(exp.output_dir, "word_vectors")
    try:
        vec = load_experiment(target, overrides=overrides, smoke=exp.smoke, output_dir=output_dir)
    except (ConfigError, FileNotFoundError) as e:
        raise ConfigError(f"{where}: {e}") from e
    if vec.task != "word2vec":
        raise ConfigError(f"{where}: {vec.path} is a {vec.task!r} experiment; word vectors come from task: word2vec")
    return vec


def check_word_vectors(exp: Experiment) -> Experiment | None:
    """The vectors must have the embedding's width; a file must exist; a vectors folder built by another experiment
    is refused (before any training)."""
    ref = exp.model.get("word_vectors")
    if not ref:
        return None
    where = f"{exp.path}: section 'model': word_vectors"
    dim = embedding_size(exp.model)
    vec = vectors_experiment(exp)
    if vec is not None:
        width = vec.model.get("vector_size", 100)
        if width != dim:
            raise ConfigError(f"{where} builds {width}-dimensional vectors ({vec.path}: model.vector_size) but the "
                              f"embedding is {dim} wide (model.embedding_size): make them equal")
        _stale_vectors(vec, where)
        return vec
    path = resolve_path(str(ref), _base_dir(exp))
    exp.model["word_vectors"] = path
    if not os.path.isfile(path):
        raise ConfigError(f"{where}={ref!r}: no such file. Name a word2vec experiment that builds it "
                          f"(word_vectors: {VECTORS_EXPERIMENT}word2vec_polarity_vectors) or give a vectors file")
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    width = int(first[1]) if len(first) == 2 and all(p.isdigit() for p in first) else len(first) - 1
    if width != dim:
        raise ConfigError(f"{where}={path!r} holds {width}-dimensional vectors but the embedding is {dim} wide "
                          "(model.embedding_size)")
    return None


def _stale_vectors(vec: Experiment, where: str) -> None:
    """Refuse vectors in the experiment's folder that another configuration built (they would be reused silently)."""
    from .checkpointing import fingerprint_differences, read_fingerprint

    if not os.path.isfile(os.path.join(vec.output_dir, VECTORS_FILE)):
        return
    stored = read_fingerprint(vec.output_dir)
    diff = fingerprint_differences(stored, vec.fingerprint()) if stored is not None else {}
    if diff:
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:4])
        raise ConfigError(f"{where}: {vec.output_dir} holds vectors built by a different version of {vec.name} "
                          f"({shown}); delete that folder to rebuild them")


def prepare_word_vectors(exp: Experiment) -> tuple[str | None, dict]:
    """The vectors file to load (building it first when `word_vectors` names an experiment and its folder has none)
    and what to record about it."""
    ref = exp.model.get("word_vectors")
    if not ref:
        return None, {}
    vec = vectors_experiment(exp)
    if vec is None:
        return ref, {"file": ref}
    path = os.path.join(vec.output_dir, VECTORS_FILE)
    built = not os.path.isfile(path)
    if built:
        logger.info("word vectors: training %s into %s first", vec.name, vec.output_dir)
        run_experiment(vec)
    else:
        logger.info("word vectors: reusing %s", path)
    return path, {"experiment": vec.name, "file": os.path.abspath(path), "built_by_this_run": built}


def load_word_vectors(model, tokenizer, exp: Experiment) -> dict:
    """Copy the word vectors into the model's embedding; returns the record for the results."""
    from ..embeddings import load_pretrained_embeddings

    path, record = prepare_word_vectors(exp)
    if path is None:
        return {}
    found = load_pretrained_embeddings(model, tokenizer, path, freeze=bool(exp.model.get("freeze_embeddings")))
    logger.info("word vectors: %d of %d vocabulary words found in %s", found, len(tokenizer) - 4, path)
    return {**record, "found": found}


# --------------------------------------------------------------------------------------------------------------------
# 3. the data folder, and the toy data a smoke run falls back to without $HF_SEQ_DATA
# --------------------------------------------------------------------------------------------------------------------
def resolve_data_dir(exp: Experiment, files: tuple[str, ...]) -> None:
    """Resolve `data.data_dir` and check that it holds `files`. A smoke run whose data folder is under a missing
    `$HF_SEQ_DATA` falls back to generated toy data (`data.data_dir` becomes None): a smoke run checks the code."""
    data, where = exp.data, exp.path
    value = data.data_dir
    needs_root = isinstance(value, str) and DATA_ENV in value
    if exp.smoke and needs_root and (data_root() is None or not os.path.isdir(resolve_path(value, None))):
        logger.warning("smoke run: %s is not available, training on generated toy data", value)
        data.data_dir = None
        return
    try:
        data.data_dir = resolve_path(value, _base_dir(exp))
    except ConfigError as e:
        raise ConfigError(f"{where}: section 'data': data_dir: {e}") from None
    missing = [f for f in files if not os.path.isfile(os.path.join(data.data_dir, f))]
    if missing:
        raise ConfigError(f"{where}: section 'data': data_dir={data.data_dir!r} lacks {', '.join(missing)}")


TOY_NOUNS = ["film", "story", "cast", "plot", "music", "ending", "script", "actor"]
TOY_VERBS = ["saw", "liked", "told", "made", "found"]


def toy_polarity(n: int = 120, seed: int = 0) -> dict[str, list[str]]:
    """Generated snippets, half positive, half negative (smoke runs without the real data)."""
    rng = random.Random(seed)
    words = {1: ["good", "great", "moving", "fine"], 0: ["bad", "awful", "dull", "weak"]}
    out = {name: [] for name in POLARITY_FILES}
    for i in range(n):
        label = i % 2
        out[POLARITY_FILES[label]].append(f"the {rng.choice(TOY_NOUNS)} was {rng.choice(words[label])} .")
    return out


# --------------------------------------------------------------------------------------------------------------------
# 4. the polarity task
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class DataArguments:
    data_dir: str | None = field(default="$HF_SEQ_DATA/sentence-polarity",
                                 metadata={"help": "folder with rt-polarity.pos / rt-polarity.neg"})
    test_fraction: float = 0.1
    dev_fraction: float = field(default=0.1, metadata={"help": "of the training part, to pick the best epoch"})
    split_seed: int = 0
    lowercase: bool = True
    min_frequency: int = 1
    max_length: int = 128
    max_samples: int | None = field(default=None, metadata={"help": "cap on snippets read (smoke runs)"})
    results_file: str | None = field(default=None, metadata={"help": "a copy of eval_results.json (benchmarks)"})


def read_polarity(data: DataArguments) -> dict[str, dict[str, list]]:
    """{"train", "dev", "test"} -> {"text", "label"}: the fixed seeded split (toy data when `data_dir` is None)."""
    texts, labels = [], []
    toy = toy_polarity() if data.data_dir is None else None
    for label, name in enumerate(POLARITY_FILES):
        if toy is not None:
            lines = toy[name]
        else:
            with open(os.path.join(data.data_dir, name), encoding="utf-8", errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
        texts += lines
        labels += [label] * len(lines)
    order = list(range(len(texts)))
    random.Random(data.split_seed).shuffle(order)
    if data.max_samples:
        order = order[: data.max_samples]
    n_test = round(len(order) * data.test_fraction)
    test, train = order[:n_test], order[n_test:]
    n_dev = round(len(train) * data.dev_fraction)
    dev, train = train[:n_dev], train[n_dev:]

    def pick(idx):
        return {"text": [texts[i] for i in idx], "label": [labels[i] for i in idx]}

    return {"train": pick(train), "dev": pick(dev), "test": pick(test)}


def check_fractions(exp: Experiment, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(exp.data, name)
        if not 0 <= value < 1:
            raise ConfigError(f"{exp.path}: section 'data': {name}={value} must be in [0, 1)")


def validate(exp: Experiment) -> None:
    if exp.model.get("use_crf"):
        raise ConfigError(f"{exp.path}: section 'model': use_crf is a tagger's output layer (task: "
                          "token-classification); a sentence classifier has one label per sentence")
    check_fractions(exp, ("test_fraction", "dev_fraction"))
    vec = validate_model(exp, ("accuracy", "f1"), num_labels=len(LABELS))
    resolve_data_dir(exp, POLARITY_FILES)
    if vec is not None and getattr(vec.data, "polarity_dir", None):
        # the vectors saw the train+dev snippets of the default split; another split would put test snippets in them
        default = DataArguments()
        for name in ("test_fraction", "dev_fraction", "split_seed"):
            if getattr(exp.data, name) != getattr(default, name):
                raise ConfigError(
                    f"{exp.path}: section 'data': {name}={getattr(exp.data, name)} differs from the split the word "
                    f"vectors of {vec.name} were trained on ({name}={getattr(default, name)}): the vectors would have "
                    "seen test snippets. Keep the default split or use vectors without data.polarity_dir")


SPEC = TaskSpec(
    data=DataArguments,
    training=TrainingArguments,
    model_keys=model_keys,
    smoke={
        "data": {"max_samples": 200},
        "training": {"max_steps": 6, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16,
                     "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
                     "logging_steps": 2},
    },
    smoke_model=smoke_model,
    validate=validate,
)


def compute_metrics(eval_pred) -> dict:
    """Accuracy and macro F1 (the mean over classes of 2TP / (2TP + FP + FN), as scikit-learn's `average="macro"`)."""
    logits, labels = eval_pred
    pred = np.argmax(logits, axis=-1)
    f1 = []
    for c in range(len(LABELS)):
        tp, fp, fn = np.sum((pred == c) & (labels == c)), np.sum((pred == c) & (labels != c)), np.sum(
            (pred != c) & (labels == c))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"accuracy": float(np.mean(pred == labels)), "f1": float(np.mean(f1))}


def start_run(exp: Experiment) -> tuple[str | None, RunClock]:
    """What the classification and tagging runs do first: seed, find the checkpoint to resume from (None: start
    afresh), start the clock of the run's cost."""
    set_seed(exp.training.seed)
    return resume_checkpoint(exp), RunClock()


def run(exp: Experiment) -> dict:
    from datasets import Dataset

    data, args = exp.data, exp.training
    resume, run_clock = start_run(exp)

    # 1. data, split, tokenizer (vocabulary from the training part only)
    splits = read_polarity(data)
    tokenizer = build_word_level_tokenizer(splits["train"]["text"], lowercase=data.lowercase,
                                           min_frequency=data.min_frequency, model_max_length=data.max_length)
    datasets = {
        name: Dataset.from_dict(split).map(
            lambda batch: tokenizer(batch["text"], truncation=True, max_length=data.max_length),
            batched=True, remove_columns=["text"],
        )
        for name, split in splits.items()
    }

    # 2. model (+ word vectors, built first when they name an experiment)
    config = build_config(exp.model, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id,
                          tokenizer.eos_token_id, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                          label2id={v: i for i, v in enumerate(LABELS)})
    model = AutoModelForSequenceClassification.from_config(config)
    vectors = load_word_vectors(model, tokenizer, exp)
    n_params = sum(p.numel() for p in model.parameters())
    sizes = {k: len(v) for k, v in datasets.items()}
    logger.info("%s: %.2fM parameters, vocabulary %d, train/dev/test %s", type(model).__name__, n_params / 1e6,
                len(tokenizer), sizes)

    # 3. train, picking the best epoch on dev
    clock = TrainingClock()
    trainer = Trainer(model=model, args=args, train_dataset=datasets["train"], eval_dataset=datasets["dev"],
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
                      callbacks=[clock])
    train_output = trainer.train(resume_from_checkpoint=resume)
    train_seconds = clock.elapsed()  # across resumes

    # 4. evaluate the chosen model on dev and, once, on test
    dev = trainer.evaluate(datasets["dev"], metric_key_prefix="dev")
    test = trainer.evaluate(datasets["test"], metric_key_prefix="test")
    results = {
        "task": "sentence-polarity (Pang & Lee 2005), binary",
        "data": data.data_dir or "toy snippets (smoke fallback: no sentence-polarity data)",
        "split": f"fixed seeded split (seed {data.split_seed}): {1 - data.test_fraction:.0%} train / "
                 f"{data.test_fraction:.0%} test; {data.dev_fraction:.0%} of train held out as dev for model selection",
        "sizes": sizes, "smoke": exp.smoke, "architecture": type(model).__name__, "model": dict(exp.model),
        "parameters": n_params, "vocabulary": len(tokenizer), "word_vectors": vectors,
        "word_vectors_found": vectors.get("found"),
        "dev_accuracy": dev["dev_accuracy"], "dev_f1": dev["dev_f1"],
        "test_accuracy": test["test_accuracy"], "test_f1": test["test_f1"],
        "epochs": trainer.state.epoch, "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_loss": train_output.training_loss, "train_seconds": round(train_seconds, 1),
        **run_clock.seconds(),
    }

    # 5. the Hub-ready run folder
    write_run_folder(args.output_dir, model=model, tokenizer=tokenizer,
                     auto_class="AutoModelForSequenceClassification", results=results, experiment=exp,
                     log_history=trainer.state.log_history, curve_title=f"{exp.name}: training loss",
                     results_file=data.results_file)
    return results


def summary(results: dict) -> str:
    return (f"dev accuracy {results['dev_accuracy']:.4f}, test accuracy {results['test_accuracy']:.4f}, test macro F1 "
            f"{results['test_f1']:.4f} ({results['train_seconds']:.0f} s of training)")


__all__ = ["SPEC", "DataArguments", "read_polarity", "run", "summary"]

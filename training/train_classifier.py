#!/usr/bin/env python
"""Train a recurrent sentence classifier (RNN | GRU | LSTM, deep / bidirectional) on sentence polarity, with `Trainer`.

    python training/train_classifier.py configs/classify_polarity_bilstm.yaml
    python training/train_classifier.py configs/classify_polarity_bilstm.yaml --smoke     # seconds, for tests

Data: Pang & Lee's sentence polarity v1.0 (rt-polarity.pos / rt-polarity.neg, one snippet a line). It has no official
split; this script uses a fixed seeded 90/10 train/test split, and holds out `dev_fraction` of the training part to
pick the best epoch, so the test part is read once, at the end. Metrics: accuracy and macro F1 (scikit-learn).

Writes to `training.output_dir` a Hub-ready folder (config, safetensors, tokenizer, remote code) and
`eval_results.json`; `data.results_file` gets a copy of the results.
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, set_seed

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from classification_common import build_model, parse_experiment, save_run  # noqa: E402

import hf_seq  # noqa: E402,F401  (registers the Auto classes)
from hf_seq.tokenization import build_word_level_tokenizer  # noqa: E402

LABELS = ["negative", "positive"]


@dataclass
class DataArguments:
    data_dir: str = field(default="../shared/data/sentence-polarity", metadata={"help": "rt-polarity.pos/.neg"})
    test_fraction: float = 0.1
    dev_fraction: float = field(default=0.1, metadata={"help": "of the training part, to pick the best epoch"})
    split_seed: int = 0
    lowercase: bool = True
    min_frequency: int = 1
    max_length: int = 128
    max_samples: int | None = field(default=None, metadata={"help": "cap on snippets read (smoke runs)"})
    results_file: str | None = None


SMOKE = {
    "model": {"hidden_size": 16, "embedding_size": 16, "num_hidden_layers": 1, "word_vectors": None},
    "data": {"max_samples": 200},
    "training": {"max_steps": 6, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16,
                 "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False, "logging_steps": 2},
}


def read_polarity(data: DataArguments):
    texts, labels = [], []
    for label, name in ((0, "rt-polarity.neg"), (1, "rt-polarity.pos")):
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
    pick = lambda idx: {"text": [texts[i] for i in idx], "label": [labels[i] for i in idx]}  # noqa: E731
    return {"train": pick(train), "dev": pick(dev), "test": pick(test)}


def compute_metrics(eval_pred):
    logits, labels = eval_pred
    pred = np.argmax(logits, axis=-1)
    return {"accuracy": accuracy_score(labels, pred), "f1": f1_score(labels, pred, average="macro")}


def main(argv=None):
    opts, model_kw, data, args = parse_experiment(__doc__, DataArguments, SMOKE, argv)
    set_seed(args.seed)
    started = time.time()

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

    # 2. model (+ optional word vectors)
    model, found = build_model(AutoModelForSequenceClassification, model_kw, tokenizer, num_labels=len(LABELS),
                               id2label=dict(enumerate(LABELS)), label2id={v: i for i, v in enumerate(LABELS)})
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{type(model).__name__}: {n_params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}, "
          f"train/dev/test {[len(datasets[k]) for k in ('train', 'dev', 'test')]}")

    # 3. train, picking the best epoch on dev
    trainer = Trainer(model=model, args=args, train_dataset=datasets["train"], eval_dataset=datasets["dev"],
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics)
    train_output = trainer.train()
    train_seconds = time.time() - started

    # 4. evaluate the chosen model on dev and, once, on test
    dev = trainer.evaluate(datasets["dev"], metric_key_prefix="dev")
    test = trainer.evaluate(datasets["test"], metric_key_prefix="test")
    results = {
        "task": "sentence-polarity (Pang & Lee 2005), binary",
        "split": f"fixed seeded split (seed {data.split_seed}): {1 - data.test_fraction:.0%} train / "
                 f"{data.test_fraction:.0%} test; {data.dev_fraction:.0%} of train held out as dev for model selection",
        "sizes": {k: len(v) for k, v in datasets.items()},
        "command": "python training/train_classifier.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "config_file": opts.config, "smoke": opts.smoke, "architecture": type(model).__name__,
        "model": {k: v for k, v in model_kw.items()}, "parameters": n_params, "vocabulary": len(tokenizer),
        "word_vectors_found": found,
        "dev_accuracy": dev["dev_accuracy"], "dev_f1": dev["dev_f1"],
        "test_accuracy": test["test_accuracy"], "test_f1": test["test_f1"],
        "epochs": trainer.state.epoch, "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_loss": train_output.training_loss, "wall_seconds": round(time.time() - started, 1),
        "cpu_seconds": round(time.process_time(), 1),  # the machine may be shared: CPU time says what the run cost
        "train_seconds": round(train_seconds, 1),
    }
    print({k: results[k] for k in ("dev_accuracy", "test_accuracy", "test_f1", "wall_seconds")})

    # 5. save a Hub-ready folder with remote code, results and model card
    save_run(trainer, tokenizer, "AutoModelForSequenceClassification", results, data.results_file)
    return results


if __name__ == "__main__":
    main()

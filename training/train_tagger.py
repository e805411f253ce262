#!/usr/bin/env python
"""Train a recurrent tagger (RNN | GRU | LSTM, deep / bidirectional) on CoNLL-2000 chunking, with `Trainer`.

    python training/train_tagger.py configs/tag_conll2000_bilstm_pos.yaml      # words + POS tags
    python training/train_tagger.py configs/tag_conll2000_bilstm.yaml          # words only (pipeline-ready)
    python training/train_tagger.py configs/tag_conll2000_bilstm.yaml --smoke  # seconds, for tests

Data: CoNLL-2000 (Tjong Kim Sang & Buchholz 2000), train.txt / test.txt as given ("WORD POS CHUNK" per line, IOB2
chunk tags). `dev_fraction` of the training sentences (seeded) is held out to pick the best epoch; test is read once.
With `data.use_pos: true` the gold POS tags of the data set enter as a second embedding (`feature_ids`), as in the
shared task. Metric: chunk-level precision / recall / F1 by seqeval (conlleval-compatible), plus token accuracy.
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import Dataset
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification, Trainer, set_seed

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from classification_common import build_model, parse_experiment, save_run  # noqa: E402

import hf_seq  # noqa: E402,F401  (registers the Auto classes)
from hf_seq.tokenization import build_word_level_tokenizer  # noqa: E402

UNKNOWN_FEATURE = "<unk>"


@dataclass
class DataArguments:
    data_dir: str = field(default="../shared/data/conll2000", metadata={"help": "train.txt and test.txt"})
    dev_fraction: float = field(default=0.05, metadata={"help": "of the training sentences, to pick the best epoch"})
    split_seed: int = 0
    use_pos: bool = field(default=False, metadata={"help": "feed the POS column as a second embedding"})
    lowercase: bool = True
    min_frequency: int = field(default=2, metadata={"help": "rarer training words become <unk>, so <unk> is learned"})
    max_samples: int | None = field(default=None, metadata={"help": "cap on sentences read per file (smoke runs)"})
    results_file: str | None = None


SMOKE = {
    "model": {"hidden_size": 16, "embedding_size": 16, "num_hidden_layers": 1, "word_vectors": None},
    "data": {"max_samples": 60, "min_frequency": 1},
    "training": {"max_steps": 6, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16,
                 "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False, "logging_steps": 2},
}


def read_conll(path: str, max_samples: int | None = None):
    """Sentences as {"words", "pos", "tags"} lists; blank lines separate sentences."""
    sentences, current = [], {"words": [], "pos": [], "tags": []}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if not parts:
                if current["words"]:
                    sentences.append(current)
                    current = {"words": [], "pos": [], "tags": []}
                    if max_samples and len(sentences) >= max_samples:
                        return sentences
                continue
            if len(parts) != 3:
                raise ValueError(f"{path}: expected 'WORD POS CHUNK', got {line.strip()!r}.")
            for key, value in zip(("words", "pos", "tags"), parts):
                current[key].append(value)
    if current["words"]:
        sentences.append(current)
    return sentences


def columns(sentences):
    return {key: [s[key] for s in sentences] for key in ("words", "pos", "tags")}


class FeatureCollator(DataCollatorForTokenClassification):
    """Pads `feature_ids` like the input ids (the tokenizer's `pad` does not know that column)."""

    def __call__(self, features):
        feature_ids = [f.pop("feature_ids") for f in features] if "feature_ids" in features[0] else None
        batch = super().__call__(features)
        if feature_ids is not None:
            T = batch["input_ids"].shape[1]
            padded = torch.zeros((len(feature_ids), T), dtype=torch.long)
            for i, ids in enumerate(feature_ids):
                if self.tokenizer.padding_side == "left":
                    padded[i, T - len(ids) :] = torch.tensor(ids)
                else:
                    padded[i, : len(ids)] = torch.tensor(ids)
            batch["feature_ids"] = padded
        return batch


def viterbi_f1(trainer, model, dataset, label_list) -> float:
    """Chunk F1 of the CRF's Viterbi paths (`model.decode`) on a tokenized split."""
    y_true, y_pred = [], []
    model.eval()
    for batch in trainer.get_eval_dataloader(dataset):
        labels = batch.pop("labels")
        inputs = {k: batch[k].to(model.device) for k in ("input_ids", "attention_mask", "feature_ids") if k in batch}
        paths = model.decode(**inputs).cpu()
        for p_row, l_row in zip(paths, labels):
            keep = l_row != -100
            y_true.append([label_list[i] for i in l_row[keep].tolist()])
            y_pred.append([label_list[i] for i in p_row[keep].tolist()])
    return float(f1_score(y_true, y_pred))


def main(argv=None):
    opts, model_kw, data, args = parse_experiment(__doc__, DataArguments, SMOKE, argv)
    set_seed(args.seed)
    started = time.time()

    # 1. data: given train/test, a seeded dev part of train; tokenizer, tags and POS vocabularies from train only
    train = read_conll(os.path.join(data.data_dir, "train.txt"), data.max_samples)
    test = read_conll(os.path.join(data.data_dir, "test.txt"), data.max_samples)
    random.Random(data.split_seed).shuffle(train)
    n_dev = round(len(train) * data.dev_fraction)
    splits = {"train": columns(train[n_dev:]), "dev": columns(train[:n_dev]), "test": columns(test)}
    label_list = sorted({t for s in train for t in s["tags"]}, key=lambda t: (t != "O", t[2:], t[:2]))
    label2id = {t: i for i, t in enumerate(label_list)}
    pos_list = [UNKNOWN_FEATURE] + sorted({p for s in train for p in s["pos"]})
    pos2id = {p: i for i, p in enumerate(pos_list)}
    tokenizer = build_word_level_tokenizer((" ".join(w) for w in splits["train"]["words"]), lowercase=data.lowercase,
                                           min_frequency=data.min_frequency)

    def encode(batch):
        enc = tokenizer(batch["words"], is_split_into_words=True)
        enc["labels"], feats = [], []
        for i, (tags, pos) in enumerate(zip(batch["tags"], batch["pos"])):
            word_ids = enc.word_ids(i)
            # the first piece of each word carries its tag; later pieces (none for a word-level vocabulary) get -100
            enc["labels"].append([-100 if w is None or w == previous else label2id.get(tags[w], -100)
                                  for w, previous in zip(word_ids, [None] + word_ids[:-1])])
            feats.append([0 if w is None else pos2id.get(pos[w], 0) for w in word_ids])
        if data.use_pos:
            enc["feature_ids"] = feats
        return enc

    datasets = {name: Dataset.from_dict(split).map(encode, batched=True, remove_columns=["words", "pos", "tags"])
                for name, split in splits.items()}

    # 2. model (+ POS embedding, + optional word vectors)
    extra = {"feature_vocab_size": len(pos_list), "feature_names": pos_list} if data.use_pos else {}
    model, found = build_model(AutoModelForTokenClassification, model_kw, tokenizer, num_labels=len(label_list),
                               id2label=dict(enumerate(label_list)), label2id=label2id, **extra)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{type(model).__name__}: {n_params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}, "
          f"{len(label_list)} tags, sentences train/dev/test {[len(datasets[k]) for k in ('train', 'dev', 'test')]}")

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        pred = np.argmax(logits, axis=-1)
        y_true, y_pred = [], []
        for p_row, l_row in zip(pred, labels):
            keep = l_row != -100
            y_true.append([label_list[i] for i in l_row[keep]])
            y_pred.append([label_list[i] for i in p_row[keep]])
        return {"f1": f1_score(y_true, y_pred), "precision": precision_score(y_true, y_pred),
                "recall": recall_score(y_true, y_pred), "accuracy": accuracy_score(y_true, y_pred)}

    # 3. train, picking the best epoch on dev chunk F1
    trainer = Trainer(model=model, args=args, train_dataset=datasets["train"], eval_dataset=datasets["dev"],
                      data_collator=FeatureCollator(tokenizer), compute_metrics=compute_metrics)
    train_output = trainer.train()
    train_seconds = time.time() - started

    # 4. evaluate the chosen model on dev and, once, on test
    dev = trainer.evaluate(datasets["dev"], metric_key_prefix="dev")
    test = trainer.evaluate(datasets["test"], metric_key_prefix="test")
    viterbi = {}
    if getattr(model, "crf", None) is not None:
        # the Trainer's metrics above decode each token by its CRF marginal; Viterbi decodes the whole chain
        for name in ("dev", "test"):
            viterbi[f"{name}_f1_viterbi"] = viterbi_f1(trainer, model, datasets[name], label_list)
    results = {
        "task": "CoNLL-2000 chunking, chunk-level F1 (seqeval, IOB2)",
        "split": f"train.txt minus a seeded {data.dev_fraction:.0%} dev part (seed {data.split_seed}) / test.txt",
        "features": "words + gold POS tags (second embedding)" if data.use_pos else "words only",
        "sizes": {k: len(v) for k, v in datasets.items()},
        "command": "python training/train_tagger.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "config_file": opts.config, "smoke": opts.smoke, "architecture": type(model).__name__,
        "model": dict(model_kw), "parameters": n_params, "vocabulary": len(tokenizer), "word_vectors_found": found,
        **{f"dev_{k}": dev[f"dev_{k}"] for k in ("f1", "precision", "recall", "accuracy")},
        **{f"test_{k}": test[f"test_{k}"] for k in ("f1", "precision", "recall", "accuracy")},
        **viterbi,
        "epochs": trainer.state.epoch, "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_loss": train_output.training_loss, "wall_seconds": round(time.time() - started, 1),
        "cpu_seconds": round(time.process_time(), 1),  # the machine may be shared: CPU time says what the run cost
        "train_seconds": round(train_seconds, 1),
    }
    print({k: results[k] for k in ("dev_f1", "test_f1", "test_accuracy", "wall_seconds", *viterbi)})

    # 5. save a Hub-ready folder with remote code, results and model card
    save_run(trainer, tokenizer, "AutoModelForTokenClassification", results, data.results_file)
    return results


if __name__ == "__main__":
    main()

"""Tagging (`task: token-classification`): an RNN | GRU | LSTM tagger (deep, bidirectional, optionally with a
linear-chain CRF) trained with `Trainer` on CoNLL-2000 chunking.

    hf-seq train tag_conll2000_bilstm              # words only: runs in pipeline("token-classification")
    hf-seq train tag_conll2000_bilstm_pos          # words + gold POS tags (a second input, `feature_ids`)
    hf-seq train tag_conll2000_bilstm_crf          # + a CRF output layer (Huang et al. 2015)
    hf-seq train tag_conll2000_bilstm --smoke      # seconds, written under runs/smoke/

Data: CoNLL-2000 (Tjong Kim Sang & Buchholz 2000), train.txt / test.txt as given ("WORD POS CHUNK" per line, IOB2
chunk tags), read by `hf_seq.evaluation.read_conll`. `dev_fraction` of the training sentences (seeded) is held out to
pick the best epoch; test is read once. With `data.use_pos: true` the gold POS tags enter as a second embedding
(`feature_ids`), as in the shared task: such a model needs `feature_ids` at inference, so the stock
token-classification pipeline (which passes only the tokenizer's output) cannot run it; the run folder records this
(`config.feature_vocab_size`, `eval_results.json`'s `inputs`). Metric: chunk-level precision / recall / F1 by seqeval
(conlleval-compatible), plus token accuracy; with a CRF also the F1 of Viterbi decoding.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import (
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging

from ..evaluation import read_conll
from ..tokenization import build_word_level_tokenizer
from .classification import (
    TOY_NOUNS,
    TOY_VERBS,
    build_config,
    check_fractions,
    load_word_vectors,
    model_keys,
    resolve_data_dir,
    smoke_model,
    start_run,
    validate_model,
)
from .experiment import ConfigError, Experiment, TaskSpec
from .run_folder import write_run_folder
from .trainer import TrainingClock

logger = logging.get_logger(__name__)

UNKNOWN_FEATURE = "<unk>"
CONLL_FILES = ("train.txt", "test.txt")
CONLL_COLUMNS = ("words", "pos", "tags")


@dataclass
class DataArguments:
    data_dir: str | None = field(default="$HF_SEQ_DATA/conll2000", metadata={"help": "train.txt and test.txt"})
    dev_fraction: float = field(default=0.05, metadata={"help": "of the training sentences, to pick the best epoch"})
    split_seed: int = 0
    use_pos: bool = field(default=False, metadata={"help": "feed the POS column as a second embedding"})
    lowercase: bool = True
    min_frequency: int = field(default=2, metadata={"help": "rarer training words become <unk>, so <unk> is learned"})
    max_samples: int | None = field(default=None, metadata={"help": "cap on sentences read per file (smoke runs)"})
    results_file: str | None = field(default=None, metadata={"help": "a copy of eval_results.json (benchmarks)"})


def validate(exp: Experiment) -> None:
    try:
        import seqeval  # noqa: F401  (chunk F1 is this task's metric: missing, fail now rather than after training)
    except ImportError:
        raise ConfigError(f"{exp.path}: task token-classification scores chunks with seqeval, which is not installed: "
                          "pip install 'hf-seq[metrics]'") from None
    check_fractions(exp, ("dev_fraction",))
    placeholder = {"feature_vocab_size": 3} if exp.data.use_pos else {}
    validate_model(exp, ("f1", "precision", "recall", "accuracy"), num_labels=3, **placeholder)
    resolve_data_dir(exp, CONLL_FILES)


SPEC = TaskSpec(
    data=DataArguments,
    training=TrainingArguments,
    model_keys=model_keys,
    smoke={
        "data": {"max_samples": 60, "min_frequency": 1},
        "training": {"max_steps": 6, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16,
                     "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
                     "logging_steps": 2},
    },
    smoke_model=smoke_model,
    validate=validate,
)


def toy_chunks(n: int, seed: int) -> list[dict]:
    """Generated "the NOUN VERB the NOUN ." sentences with POS and IOB2 chunk tags (smoke runs without CoNLL-2000)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        nouns = [rng.choice(TOY_NOUNS), rng.choice(TOY_NOUNS)]
        out.append({"words": ["the", nouns[0], rng.choice(TOY_VERBS), "the", nouns[1], "."],
                    "pos": ["DT", "NN", "VBD", "DT", "NN", "."],
                    "tags": ["B-NP", "I-NP", "B-VP", "B-NP", "I-NP", "O"]})
    return out


def read_splits(data: DataArguments) -> dict[str, list[dict]]:
    """Given train/test, a seeded dev part of train."""
    if data.data_dir is None:
        train, test = toy_chunks(60, seed=0), toy_chunks(20, seed=1)
    else:
        train, test = (read_conll(os.path.join(data.data_dir, name), CONLL_COLUMNS, data.max_samples)
                       for name in CONLL_FILES)
    random.Random(data.split_seed).shuffle(train)
    n_dev = round(len(train) * data.dev_fraction)
    return {"train": train[n_dev:], "dev": train[:n_dev], "test": test}


def columns(sentences: list[dict]) -> dict[str, list]:
    return {key: [s[key] for s in sentences] for key in CONLL_COLUMNS}


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


def chunk_scores(y_true: list[list[str]], y_pred: list[list[str]]) -> dict:
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {"f1": float(f1_score(y_true, y_pred)), "precision": float(precision_score(y_true, y_pred)),
            "recall": float(recall_score(y_true, y_pred)), "accuracy": float(accuracy_score(y_true, y_pred))}


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
    return chunk_scores(y_true, y_pred)["f1"]


def run(exp: Experiment) -> dict:
    from datasets import Dataset

    data, args = exp.data, exp.training
    resume, run_clock = start_run(exp)

    # 1. data; tokenizer, tags and POS vocabularies from the training part only
    splits = read_splits(data)
    train = splits["train"]
    label_list = sorted({t for s in train for t in s["tags"]}, key=lambda t: (t != "O", t[2:], t[:2]))
    label2id = {t: i for i, t in enumerate(label_list)}
    pos_list = [UNKNOWN_FEATURE] + sorted({p for s in train for p in s["pos"]})
    pos2id = {p: i for i, p in enumerate(pos_list)}
    tokenizer = build_word_level_tokenizer((" ".join(s["words"]) for s in train), lowercase=data.lowercase,
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

    datasets = {name: Dataset.from_dict(columns(split)).map(encode, batched=True, remove_columns=list(CONLL_COLUMNS))
                for name, split in splits.items()}

    # 2. model (+ POS embedding, + word vectors, built first when they name an experiment)
    extra = {"feature_vocab_size": len(pos_list), "feature_names": pos_list} if data.use_pos else {}
    config = build_config(exp.model, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id,
                          tokenizer.eos_token_id, num_labels=len(label_list), id2label=dict(enumerate(label_list)),
                          label2id=label2id, **extra)
    model = AutoModelForTokenClassification.from_config(config)
    vectors = load_word_vectors(model, tokenizer, exp)
    n_params = sum(p.numel() for p in model.parameters())
    sizes = {k: len(v) for k, v in datasets.items()}
    logger.info("%s: %.2fM parameters, vocabulary %d, %d tags, sentences train/dev/test %s", type(model).__name__,
                n_params / 1e6, len(tokenizer), len(label_list), sizes)

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        pred = np.argmax(logits, axis=-1)
        y_true, y_pred = [], []
        for p_row, l_row in zip(pred, labels):
            keep = l_row != -100
            y_true.append([label_list[i] for i in l_row[keep]])
            y_pred.append([label_list[i] for i in p_row[keep]])
        return chunk_scores(y_true, y_pred)

    # 3. train, picking the best epoch on dev chunk F1
    clock = TrainingClock()
    trainer = Trainer(model=model, args=args, train_dataset=datasets["train"], eval_dataset=datasets["dev"],
                      data_collator=FeatureCollator(tokenizer), compute_metrics=compute_metrics, callbacks=[clock])
    train_output = trainer.train(resume_from_checkpoint=resume)
    train_seconds = clock.elapsed()  # across resumes

    # 4. evaluate the chosen model on dev and, once, on test
    dev = trainer.evaluate(datasets["dev"], metric_key_prefix="dev") if sizes["dev"] else {}
    test = trainer.evaluate(datasets["test"], metric_key_prefix="test")
    viterbi = {}
    if getattr(model, "crf", None) is not None:
        # the Trainer's metrics above decode each token by its CRF marginal; Viterbi decodes the whole chain
        for name in ("dev", "test") if sizes["dev"] else ("test",):
            viterbi[f"{name}_f1_viterbi"] = viterbi_f1(trainer, model, datasets[name], label_list)
    results = {
        "task": "CoNLL-2000 chunking, chunk-level F1 (seqeval, IOB2)",
        "data": data.data_dir or "toy sentences (smoke fallback: no CoNLL-2000 data)",
        "split": f"train.txt minus a seeded {data.dev_fraction:.0%} dev part (seed {data.split_seed}) / test.txt",
        "features": "words + gold POS tags (second embedding)" if data.use_pos else "words only",
        # what inference needs: a feature model cannot run in pipeline("token-classification")
        "inputs": ["input_ids", "attention_mask", "feature_ids"] if data.use_pos else ["input_ids", "attention_mask"],
        "pipeline_compatible": not data.use_pos,
        "sizes": sizes, "smoke": exp.smoke, "architecture": type(model).__name__, "model": dict(exp.model),
        "parameters": n_params, "vocabulary": len(tokenizer), "word_vectors": vectors,
        "word_vectors_found": vectors.get("found"),
        **{f"dev_{k}": dev[f"dev_{k}"] for k in ("f1", "precision", "recall", "accuracy") if f"dev_{k}" in dev},
        **{f"test_{k}": test[f"test_{k}"] for k in ("f1", "precision", "recall", "accuracy")},
        **viterbi,
        "epochs": trainer.state.epoch, "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_loss": train_output.training_loss, "train_seconds": round(train_seconds, 1),
        **run_clock.seconds(),
    }

    # 5. the Hub-ready run folder
    write_run_folder(args.output_dir, model=model, tokenizer=tokenizer, auto_class="AutoModelForTokenClassification",
                     results=results, experiment=exp, log_history=trainer.state.log_history,
                     curve_title=f"{exp.name}: training loss", results_file=data.results_file)
    return results


def summary(results: dict) -> str:
    line = (f"test chunk F1 {results['test_f1']:.4f}, token accuracy {results['test_accuracy']:.4f} "
            f"({results['train_seconds']:.0f} s of training)")
    if "test_f1_viterbi" in results:
        line += f"; Viterbi F1 {results['test_f1_viterbi']:.4f}"
    if not results.get("pipeline_compatible", True):
        line += "\nthis tagger reads POS features (feature_ids): call the model directly, not pipeline()"
    return line


__all__ = ["SPEC", "DataArguments", "FeatureCollator", "read_splits", "run", "summary"]

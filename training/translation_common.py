"""What the two translation scripts (`train_seq2seq.py`: RNN encoder-decoder, `train_transformer.py`: Transformer)
share: the data sets and their splits, the joint BPE tokenizer, the experiment file, the `Seq2SeqTrainer` set-up and
the test report (in-order decoding, sacreBLEU with signatures, BLEU by source length, hypotheses file, heatmap).

Each script keeps its own `DataArguments` (defaults differ: the RNN demo is the embedded Tatoeba en->fr, the
Transformer's default is Multi30k de->en); the functions below read only the fields both have, plus the optional
`tatoeba-en-fr` fields.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections.abc import Callable

import numpy as np
import torch
import yaml
from datasets import Dataset
from transformers import (
    DataCollatorForSeq2Seq,
    GenerationConfig,
    HfArgumentParser,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)

import hf_seq
from hf_seq.seq2seq_utils import bleu_by_source_length, bleu_report, translate
from hf_seq.tokenization import build_bpe_tokenizer
from hf_seq.training.experiment import check_types, read_yaml
from hf_seq.training.trainer import TrainingClock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(REPO), "shared", "data")
EMBEDDED_TATOEBA = os.path.join(os.path.dirname(os.path.abspath(hf_seq.__file__)), "data", "tatoeba_en_fr.tsv")
SECTIONS = ("model", "data", "training")


# ------------------------------------------------------------------------------------------------------------- data
def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def toy_pairs(n: int, seed: int, vocab: int, lengths: tuple[int, int]) -> list[tuple[str, str]]:
    """A synthetic 'language pair': target = source words renamed by a fixed dictionary, in reverse order."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    rename = {w: f"v{(7 * i + 3) % vocab}" for i, w in enumerate(words)}
    pairs = []
    for _ in range(n):
        src = [rng.choice(words) for _ in range(rng.randint(*lengths))]
        pairs.append((" ".join(src), " ".join(rename[w] for w in reversed(src))))
    return pairs


def load_pairs(args, seed: int, toy: dict) -> dict[str, list[tuple[str, str]]]:
    """Sentence pairs (source, target) for train / validation / test.

    `toy` = {"n": ..., "train": ..., "validation": ..., "vocab": ..., "lengths": (min, max)} sizes the synthetic
    set. Tatoeba (embedded) holds out `tatoeba_heldout` pairs each for test and validation after a seeded shuffle, the
    same split for both families so they compare."""
    datasets = ["multi30k", "tatoeba", "toy"] + (["tatoeba-en-fr"] if hasattr(args, "tatoeba_test_size") else [])
    if args.dataset == "toy":
        pairs = toy_pairs(toy["n"], seed, toy["vocab"], toy["lengths"])
        cut = toy["train"] + toy["validation"]
        splits = {"train": pairs[: toy["train"]], "validation": pairs[toy["train"] : cut], "test": pairs[cut:]}
    elif args.dataset == "tatoeba":
        rows = [line.split("\t") for line in read_lines(EMBEDDED_TATOEBA) if line]
        pairs = [(en, fr) if args.source_lang == "en" else (fr, en) for en, fr in rows]
        random.Random(seed).shuffle(pairs)
        n = args.tatoeba_heldout
        splits = {"test": pairs[:n], "validation": pairs[n : 2 * n], "train": pairs[2 * n :]}
    elif args.dataset == "multi30k":
        root = os.path.join(args.data_dir, "multi30k")
        if not os.path.isdir(root):
            raise FileNotFoundError(f"Multi30k not found in {root}; set data.data_dir.")
        s, t = args.source_lang, args.target_lang
        splits = {
            name: list(zip(read_lines(f"{root}/{stem}.{s}"), read_lines(f"{root}/{stem}.{t}")))
            for name, stem in (("train", "train"), ("validation", "val"), ("test", "test_2016_flickr"))
        }
    elif args.dataset == "tatoeba-en-fr" and "tatoeba-en-fr" in datasets:
        path = os.path.join(args.data_dir, "fra-eng", "fra.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Tatoeba en-fr not found at {path}; set data.data_dir.")
        pairs = []
        for line in read_lines(path):
            en, fr = line.split("\t")[:2]
            if len(en.split()) <= args.tatoeba_max_words and len(fr.split()) <= args.tatoeba_max_words:
                pairs.append((en, fr) if args.source_lang == "en" else (fr, en))
        random.Random(seed).shuffle(pairs)
        n_test = args.tatoeba_test_size
        splits = {"test": pairs[:n_test], "validation": pairs[n_test : 2 * n_test], "train": pairs[2 * n_test :]}
    else:
        raise ValueError(f"data.dataset must be one of {datasets}, got {args.dataset!r}.")
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_test_samples}
    return {k: v[: limits[k]] if limits[k] else v for k, v in splits.items()}


def joint_bpe_tokenizer(pairs: dict, args):
    """A byte-level BPE vocabulary trained with `tokenizers` on both sides of the training pairs."""
    return build_bpe_tokenizer(
        (text for pair in pairs["train"] for text in pair),
        vocab_size=args.bpe_vocab_size,
        min_frequency=args.bpe_min_frequency,
        model_max_length=args.max_source_length,
    )


def tokenize_pairs(pairs, tokenizer, args) -> Dataset:
    """Source ids as the tokenizer gives them (what the translation pipeline feeds the model); target ids + <eos>."""
    src = tokenizer([s for s, _ in pairs], truncation=True, max_length=args.max_source_length)["input_ids"]
    tgt = tokenizer([t for _, t in pairs], truncation=True, max_length=args.max_target_length - 1)["input_ids"]
    eos = tokenizer.eos_token_id
    return Dataset.from_dict({"input_ids": src, "labels": [ids + [eos] for ids in tgt]})


# -------------------------------------------------------------------------------------------------- experiment file
def load_config_file(path: str, data_cls, model_keys: set[str]) -> dict:
    """The YAML experiment file, checked: known sections, known model keys, well-typed data/training values."""
    raw = read_yaml(path)  # a missing file, bad YAML syntax or a non-mapping is refused naming the file
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)}; expected {', '.join(SECTIONS)}.")
    check_model_keys(raw, path, model_keys)
    check_types("data", raw.get("data") or {}, data_cls, path)
    check_types("training", raw.get("training") or {}, Seq2SeqTrainingArguments, path)
    return raw


def check_model_keys(raw: dict, path: str, allowed: set[str]) -> None:
    bad = set(raw.get("model") or {}) - allowed
    if bad:
        raise ValueError(f"{path}: unknown model keys {sorted(bad)}; allowed: {sorted(allowed)}.")


def config_keys(config_cls) -> set[str]:
    """A config class's fields and its `attribute_map` aliases (the Transformer's paper names)."""
    return {f.name for f in dataclasses.fields(config_cls)} | set(getattr(config_cls, "attribute_map", {}))


def apply_override(raw: dict, override: str) -> None:
    """`section.key=value` (value parsed as YAML) into the experiment dict."""
    key, sep, value = override.partition("=")
    section, dot, name = key.partition(".")
    if not sep or not dot or section not in SECTIONS:
        raise SystemExit(f"override {override!r} must look like section.key=value with section in {SECTIONS}")
    raw.setdefault(section, {})[name] = yaml.safe_load(value)


def parse_arguments(raw: dict, data_cls):
    return HfArgumentParser((data_cls, Seq2SeqTrainingArguments)).parse_dict(
        {**(raw.get("data") or {}), **(raw.get("training") or {})}, allow_extra_keys=False
    )


# ------------------------------------------------------------------------------------------------ training and test
def generation_config_for(config, data_args) -> GenerationConfig:
    """The generation settings saved with the model: the test decoding's, nothing that Seq2SeqTrainer leaks."""
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        num_beams=data_args.test_num_beams,
        length_penalty=data_args.test_length_penalty,
        max_new_tokens=data_args.max_target_length,
    )


def build_trainer(model, tokenizer, datasets: dict, data_args, training_args) -> Seq2SeqTrainer:
    """Teacher forcing (DataCollatorForSeq2Seq builds the decoder inputs with
    `prepare_decoder_input_ids_from_labels`); validation BLEU when `predict_with_generate` and an eval strategy ask."""

    def compute_metrics(eval_pred):
        preds, labels = eval_pred
        preds = np.where(preds < 0, tokenizer.pad_token_id, preds)
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        hyps = [h.strip() for h in tokenizer.batch_decode(preds, skip_special_tokens=True)]
        refs = [r.strip() for r in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        return {"bleu": bleu_report(hyps, refs, data_args.target_lang)["bleu"]}

    budget = data_args.max_train_minutes
    return Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=datasets["train"],
        eval_dataset=datasets["validation"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        compute_metrics=compute_metrics if training_args.predict_with_generate else None,
        callbacks=[TrainingClock(budget)],
    )


def official_tokenized_references(data_args) -> list[str] | None:
    """Multi30k's own tokenized lower-cased test references, when the whole test set is scored."""
    path = os.path.join(data_args.data_dir, "multi30k", "tok", f"test_2016_flickr.lc.norm.tok.{data_args.target_lang}")
    if data_args.dataset == "multi30k" and not data_args.max_test_samples and os.path.isfile(path):
        return read_lines(path)
    return None


def test_report(model, tokenizer, test_pairs, data_args, training_args,
                heatmap: Callable[[str, str], dict] | None = None) -> dict:
    """Decode the test set in order, score it with sacreBLEU (overall and by source length), write
    `test_hypotheses.txt`, and draw one attention heatmap with `heatmap(source, path)` when given."""
    start = time.time()
    sources, refs = [s for s, _ in test_pairs], [t for _, t in test_pairs]
    hyps = translate(
        model, tokenizer, sources, training_args.per_device_eval_batch_size,
        num_beams=data_args.test_num_beams, max_new_tokens=data_args.max_target_length,
        length_penalty=data_args.test_length_penalty,
    )
    seconds = time.time() - start
    scores = bleu_report(hyps, refs, data_args.target_lang, official_tokenized_references(data_args))
    buckets = bleu_by_source_length([len(s.split()) for s in sources], hyps, refs)
    with open(os.path.join(training_args.output_dir, "test_hypotheses.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(hyps) + "\n")
    heat = None
    if heatmap is not None:
        heat = heatmap(sources[data_args.heatmap_sentence], training_args.output_dir)
    return {
        "test_pairs": len(test_pairs),
        "test_num_beams": data_args.test_num_beams,
        "test_seconds": round(seconds, 1),
        **{f"test_{k}": v for k, v in scores.items()},
        "test_bleu_by_source_length": buckets,
        "heatmap": heat,
        "sample_translations": [
            {"source": s, "reference": r, "hypothesis": h} for s, r, h in list(zip(sources, refs, hyps))[:5]
        ],
    }


DECODING_GRID = {"num_beams": (1, 4, 8), "length_penalty": (0.6, 1.0, 1.4)}


def tune_decoding(model, tokenizer, validation_pairs, data_args, training_args, grid: dict = DECODING_GRID) -> dict:
    """Choose the beam size and length penalty with the best BLEU on the validation pairs (never the test set);
    sets `data_args.test_num_beams` / `test_length_penalty` and returns the whole grid with the choice."""
    sources, refs = [s for s, _ in validation_pairs], [t for _, t in validation_pairs]
    rows = []
    for beams in grid["num_beams"]:
        for penalty in grid["length_penalty"] if beams > 1 else (1.0,):  # the penalty only ranks beam hypotheses
            hyps = translate(model, tokenizer, sources, training_args.per_device_eval_batch_size, num_beams=beams,
                             max_new_tokens=data_args.max_target_length, length_penalty=penalty)
            rows.append({"num_beams": beams, "length_penalty": penalty,
                         "validation_bleu": bleu_report(hyps, refs, data_args.target_lang)["bleu"]})
            print(json.dumps(rows[-1]), flush=True)
    best = max(rows, key=lambda r: r["validation_bleu"])
    data_args.test_num_beams, data_args.test_length_penalty = best["num_beams"], best["length_penalty"]
    return {"validation_pairs": len(validation_pairs), "grid": rows, "chosen": best}


def rescore(model_cls, data_args, training_args, pairs, heatmap_for=None, tune: bool = False) -> dict:
    """`--eval-only`: decode the test set again with the run's saved `model/` and update its results.json.
    `heatmap_for(model, tokenizer, data_args)` gives the `heatmap` argument of `test_report`. `tune`
    (`--tune-decoding`): first choose beam size and length penalty on the validation set (`tune_decoding`), decode
    the test set with them and save them as the model's generation config."""
    from transformers import AutoTokenizer

    model_dir = os.path.join(training_args.output_dir, "model")
    model = model_cls.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    results_path = os.path.join(training_args.output_dir, "results.json")
    results = {}
    if os.path.isfile(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    if tune:
        if not pairs.get("validation"):
            raise SystemExit("--tune-decoding needs validation pairs (data.max_eval_samples > 0)")
        results["decoding_tuned_on_validation"] = tune_decoding(model, tokenizer, pairs["validation"], data_args,
                                                                training_args)
        model.generation_config.num_beams = data_args.test_num_beams
        model.generation_config.length_penalty = data_args.test_length_penalty
        model.generation_config.save_pretrained(model_dir)
    heatmap = heatmap_for(model, tokenizer, data_args) if heatmap_for else None
    results.update(test_report(model, tokenizer, pairs["test"], data_args, training_args, heatmap))
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    print(json.dumps({k: v for k, v in results.items() if k in ("test_bleu", "test_chrf", "test_bleu_tok_lc")}))
    return results


def training_record(trainer, train_result, train_seconds: float, train_cpu_seconds: float) -> dict:
    """Steps, epochs, timings and logged losses of a finished `trainer.train()`."""
    log = trainer.state.log_history
    losses = [e["loss"] for e in log if "loss" in e]
    return {
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0, 2),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),  # < wall time when other processes share the cores
        "train_loss_first_logged": losses[0] if losses else None,
        "train_loss_last_logged": losses[-1] if losses else None,
        "train_loss_mean": round(train_result.training_loss, 4),
        "eval_history": [
            {k: e[k] for k in e if k in ("step", "epoch", "elapsed_seconds", "eval_loss", "eval_bleu")} for e in log if "eval_loss" in e
        ],
        "threads": torch.get_num_threads(),
    }

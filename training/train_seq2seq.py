"""Train the RNN encoder-decoder (with or without attention) for translation with `Seq2SeqTrainer`.

    OMP_NUM_THREADS=1 python training/train_seq2seq.py configs/seq2seq_tatoeba_bahdanau.yaml   # embedded en->fr demo
    OMP_NUM_THREADS=1 python training/train_seq2seq.py configs/seq2seq_multi30k_bahdanau_cpu.yaml
    python training/train_seq2seq.py configs/seq2seq_tatoeba_bahdanau.yaml --smoke              # seconds; the tests

A YAML config has three sections: `model` (RNNSeq2SeqConfig fields), `data` (DataArguments below) and `training`
(`Seq2SeqTrainingArguments`); unknown keys are errors. Extra `section.key=value` arguments (and `--output_dir DIR`)
override the file; `--smoke` shrinks any file to a seconds-long run.
The tokenizer is a joint byte-level BPE trained with the `tokenizers` library on both sides of the training set.

Outputs in `training.output_dir`: `model/` (model + tokenizer + the hf-seq translation pipeline, loadable with
`pipeline(model=..., trust_remote_code=True)`), `results.json` (sacreBLEU BLEU / chrF with signatures on detokenized
output, tokenized lower-cased BLEU, BLEU by source-length bucket, timings), `test_hypotheses.txt` and, with
attention, `attention.png`.
"""

import dataclasses
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field

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
    TrainerCallback,
    set_seed,
)

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_seq.pipelines import save_translation_pipeline
from hf_seq.seq2seq_utils import bleu_by_source_length, bleu_report, translation_attention_heatmap
from hf_seq.tokenization import build_bpe_tokenizer
from hf_seq.yaml_config import check_types, read_yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(REPO), "shared", "data")
EMBEDDED_TATOEBA = os.path.join(os.path.dirname(os.path.abspath(hf_seq.__file__)), "data", "tatoeba_en_fr.tsv")


@dataclass
class DataArguments:
    dataset: str = field(
        default="tatoeba", metadata={"help": "tatoeba (embedded en-fr subset) | multi30k | toy (synthetic, no files)"}
    )
    data_dir: str = field(default=DEFAULT_DATA_DIR, metadata={"help": "folder holding multi30k/"})
    source_lang: str = "en"
    target_lang: str = "fr"
    tatoeba_heldout: int = field(default=500, metadata={"help": "validation and test sentences each (tatoeba)"})
    max_train_samples: int | None = None
    max_eval_samples: int | None = 200
    max_test_samples: int | None = None
    bpe_vocab_size: int = 8000
    bpe_min_frequency: int = 2
    max_source_length: int = 64
    max_target_length: int = 64
    test_num_beams: int = field(default=1, metadata={"help": "1 = greedy, as the published Multi30k GRU numbers"})
    test_length_penalty: float = 1.0
    heatmap_sentence: int = 0
    max_train_minutes: float | None = field(default=None, metadata={"help": "wall-clock budget of the training loop"})


class TimeBudgetCallback(TrainerCallback):
    """Stop training once `minutes` of wall time have passed."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        if time.time() - self.start > self.seconds:
            control.should_training_stop = True


def _read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _toy_pairs(n, seed):
    """Synthetic pair: target = source words renamed by a fixed dictionary, in reverse order."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(20)]
    rename = {w: f"v{(7 * i + 3) % 20}" for i, w in enumerate(words)}
    pairs = []
    for _ in range(n):
        src = [rng.choice(words) for _ in range(rng.randint(2, 6))]
        pairs.append((" ".join(src), " ".join(rename[w] for w in reversed(src))))
    return pairs


def load_pairs(args: DataArguments, seed: int) -> dict:
    if args.dataset == "toy":
        pairs = _toy_pairs(700, seed)
        splits = {"train": pairs[:600], "validation": pairs[600:650], "test": pairs[650:]}
    elif args.dataset == "tatoeba":
        rows = [line.split("\t") for line in _read_lines(EMBEDDED_TATOEBA) if line]
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
            name: list(zip(_read_lines(f"{root}/{stem}.{s}"), _read_lines(f"{root}/{stem}.{t}")))
            for name, stem in (("train", "train"), ("validation", "val"), ("test", "test_2016_flickr"))
        }
    else:
        raise ValueError(f"data.dataset must be 'tatoeba', 'multi30k' or 'toy', got {args.dataset!r}.")
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_test_samples}
    return {k: v[: limits[k]] if limits[k] else v for k, v in splits.items()}


def tokenize_pairs(pairs, tokenizer, args: DataArguments) -> Dataset:
    """Source ids exactly as the translation pipeline will feed them; target ids + <eos>."""
    src = tokenizer([s for s, _ in pairs], truncation=True, max_length=args.max_source_length)["input_ids"]
    tgt = tokenizer([t for _, t in pairs], truncation=True, max_length=args.max_target_length - 1)["input_ids"]
    return Dataset.from_dict({"input_ids": src, "labels": [ids + [tokenizer.eos_token_id] for ids in tgt]})


def load_config_file(path: str) -> dict:
    raw = read_yaml(path)  # a missing file or bad YAML syntax is refused naming the file
    check_types("data", raw.get("data") or {}, DataArguments, path)
    check_types("training", raw.get("training") or {}, Seq2SeqTrainingArguments, path)
    unknown = set(raw) - {"model", "data", "training"}
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)}; expected model, data, training.")
    check_model_keys(raw, path)
    return raw


def check_model_keys(raw: dict, path: str):
    allowed = {f.name for f in dataclasses.fields(RNNSeq2SeqConfig)}
    bad = set(raw.get("model") or {}) - allowed
    if bad:
        raise ValueError(f"{path}: unknown model keys {sorted(bad)}; allowed: {sorted(allowed)}.")


def generation_config_for(config: RNNSeq2SeqConfig, data_args: DataArguments) -> GenerationConfig:
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        num_beams=data_args.test_num_beams,
        length_penalty=data_args.test_length_penalty,
        max_new_tokens=data_args.max_target_length,
    )


# --smoke: any experiment file shrunk to seconds (tiny model, 300 embedded Tatoeba pairs, 15 steps); used by the tests
SMOKE = {
    "model": {"hidden_size": 32, "encoder_embedding_size": 16, "decoder_embedding_size": 16, "attention_size": 32,
              "encoder_layers": 1, "decoder_layers": 1, "dropout": 0.0},
    "data": {"max_train_samples": 300, "max_eval_samples": 20, "max_test_samples": 40, "bpe_vocab_size": 300,
             "max_source_length": 24, "max_target_length": 24, "max_train_minutes": None, "test_num_beams": 2},
    "training": {"max_steps": 15, "logging_steps": 5, "per_device_train_batch_size": 32, "eval_strategy": "no",
                 "save_strategy": "no", "report_to": "none", "use_cpu": True, "disable_tqdm": True},
}
USAGE = "usage: train_seq2seq.py CONFIG.yaml [--smoke] [--output_dir DIR] [section.key=value ...]"


def parse_argv(argv: list[str]) -> tuple[dict, bool]:
    if not argv or argv[0].startswith("-"):
        raise SystemExit(USAGE)
    raw = load_config_file(argv[0])
    smoke, rest, overrides = False, list(argv[1:]), []
    while rest:
        arg = rest.pop(0)
        if arg == "--smoke":
            smoke = True
        elif arg == "--output_dir" and rest:
            overrides.append(("training", "output_dir", rest.pop(0)))
        elif arg.startswith("--output_dir="):
            overrides.append(("training", "output_dir", arg.split("=", 1)[1]))
        elif "=" in arg and arg.split(".", 1)[0] in ("model", "data", "training") and "." in arg.split("=", 1)[0]:
            key, _, value = arg.partition("=")
            section, _, name = key.partition(".")
            overrides.append((section, name, yaml.safe_load(value)))
        else:
            raise SystemExit(f"unknown argument {arg!r}\n{USAGE}")
    if smoke:
        for section, values in SMOKE.items():
            raw.setdefault(section, {}).update(values)
        if raw["data"].get("dataset", "tatoeba") == "multi30k":  # always available: the embedded pairs
            raw["data"].update(dataset="tatoeba", source_lang="en", target_lang="fr")
        raw["model"].pop("bridge", None) if raw["model"].get("bridge") == "copy" else None
    for section, name, value in overrides:
        raw.setdefault(section, {})[name] = value
    check_model_keys(raw, argv[0])
    return raw, smoke


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    raw, smoke = parse_argv(argv)
    data_args, training_args = HfArgumentParser((DataArguments, Seq2SeqTrainingArguments)).parse_dict(
        {**(raw.get("data") or {}), **(raw.get("training") or {})}, allow_extra_keys=False
    )
    set_seed(training_args.seed)
    os.makedirs(training_args.output_dir, exist_ok=True)

    # 1. data and a joint byte-level BPE vocabulary over both sides of the training set
    pairs = load_pairs(data_args, training_args.seed)
    tokenizer = build_bpe_tokenizer(
        (text for pair in pairs["train"] for text in pair),
        vocab_size=data_args.bpe_vocab_size,
        min_frequency=data_args.bpe_min_frequency,
        model_max_length=data_args.max_source_length,
    )
    datasets = {name: tokenize_pairs(p, tokenizer, data_args) for name, p in pairs.items()}

    # 2. model
    config = RNNSeq2SeqConfig(
        **(raw.get("model") or {}),
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    model = RNNSeq2SeqForConditionalGeneration(config)
    model.generation_config = generation_config_for(config, data_args)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{data_args.dataset} {data_args.source_lang}->{data_args.target_lang}: {len(pairs['train'])} train pairs, "
        f"BPE vocab {len(tokenizer)}, attention={config.attention}, {n_params / 1e6:.2f}M params"
    )

    def compute_metrics(eval_pred):
        preds, labels = eval_pred
        preds = np.where(preds < 0, tokenizer.pad_token_id, preds)
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        hyps = [h.strip() for h in tokenizer.batch_decode(preds, skip_special_tokens=True)]
        refs = [r.strip() for r in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        return {"bleu": bleu_report(hyps, refs, data_args.target_lang)["bleu"]}

    # 3. train (teacher forcing; DataCollatorForSeq2Seq builds decoder inputs with prepare_decoder_input_ids_from_labels)
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=datasets["train"],
        eval_dataset=datasets["validation"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        compute_metrics=compute_metrics if training_args.predict_with_generate else None,
        callbacks=[TimeBudgetCallback(data_args.max_train_minutes)] if data_args.max_train_minutes else None,
    )
    start, cpu_start = time.time(), time.process_time()
    train_result = trainer.train()
    train_seconds, train_cpu_seconds = time.time() - start, time.process_time() - cpu_start

    # 4. test: decode, score detokenized text with sacreBLEU, and by source-length bucket
    model.eval()
    start = time.time()
    prediction = trainer.predict(
        datasets["test"], num_beams=data_args.test_num_beams, max_new_tokens=data_args.max_target_length,
        length_penalty=data_args.test_length_penalty,
    )
    test_seconds = time.time() - start
    preds = np.where(prediction.predictions < 0, tokenizer.pad_token_id, prediction.predictions)
    hyps = [h.strip() for h in tokenizer.batch_decode(preds, skip_special_tokens=True)]
    sources, refs = [s for s, _ in pairs["test"]], [t for _, t in pairs["test"]]
    tok_refs = None
    tok_path = os.path.join(data_args.data_dir, "multi30k", "tok", f"test_2016_flickr.lc.norm.tok.{data_args.target_lang}")
    if data_args.dataset == "multi30k" and not data_args.max_test_samples and os.path.isfile(tok_path):
        tok_refs = _read_lines(tok_path)  # the official tokenized lower-cased references
    scores = bleu_report(hyps, refs, data_args.target_lang, tok_refs)
    buckets = bleu_by_source_length([len(s.split()) for s in sources], hyps, refs)
    with open(os.path.join(training_args.output_dir, "test_hypotheses.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(hyps) + "\n")

    # 5. save model + tokenizer + pipeline; Seq2SeqTrainer wrote every default generation setting: reset ours
    model.generation_config = generation_config_for(config, data_args)
    model.config.use_cache = True  # Trainer turned it off for training
    model_dir = os.path.join(training_args.output_dir, "model")
    save_translation_pipeline(model, tokenizer, model_dir)

    # 6. attention heatmap of one test sentence
    heat = None
    if config.attention != "none":
        heat = translation_attention_heatmap(
            model, tokenizer, sources[data_args.heatmap_sentence],
            os.path.join(training_args.output_dir, "attention.png"),
            max_new_tokens=data_args.max_target_length, title=f"{config.attention} attention",
        )

    log = trainer.state.log_history
    train_losses = [e["loss"] for e in log if "loss" in e]
    results = {
        "config_file": argv[0],
        "overrides": argv[1:],
        "smoke": smoke,
        "dataset": data_args.dataset,
        "direction": f"{data_args.source_lang}->{data_args.target_lang}",
        "tokenizer": f"joint byte-level BPE ({len(tokenizer)} tokens, tokenizers library)",
        "train_pairs": len(pairs["train"]),
        "test_pairs": len(pairs["test"]),
        "parameters": n_params,
        "model": {k: getattr(config, k) for k in (
            "cell_type", "attention", "attention_score", "input_feeding", "bidirectional_encoder", "encoder_layers",
            "decoder_layers", "hidden_size", "encoder_embedding_size", "decoder_embedding_size", "dropout",
            "share_encoder_decoder_embeddings", "tie_word_embeddings")},
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0, 2),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        "train_loss_first_logged": train_losses[0] if train_losses else None,
        "train_loss_last_logged": train_losses[-1] if train_losses else None,
        "train_loss_mean": round(train_result.training_loss, 4),
        "test_num_beams": data_args.test_num_beams,
        "test_seconds": round(test_seconds, 1),
        "threads": torch.get_num_threads(),
        **{f"test_{k}": v for k, v in scores.items()},
        "test_bleu_by_source_length": buckets,
        "heatmap": heat,
        "sample_translations": [
            {"source": s, "reference": r, "hypothesis": h} for s, r, h in list(zip(sources, refs, hyps))[:5]
        ],
    }
    with open(os.path.join(training_args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    print(json.dumps({k: results[k] for k in results if k in ("test_bleu", "test_chrf", "test_bleu_tok_lc", "steps", "epochs", "train_seconds")}))
    return results


if __name__ == "__main__":
    main()

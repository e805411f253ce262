"""Train the Transformer (Vaswani et al. 2017) for translation with `Seq2SeqTrainer`.

    OMP_NUM_THREADS=1 python training/train_transformer.py configs/transformer_multi30k_cpu.yaml
    python training/train_transformer.py configs/transformer_smoke.yaml      # seconds; used by the tests

A YAML config has three sections: `model` (TransformerConfig fields, paper names allowed), `data` (DataArguments
below) and `training` (`Seq2SeqTrainingArguments`). Unknown keys are errors. The paper's recipe maps onto
TrainingArguments: label_smoothing_factor 0.1, lr_scheduler_type "inverse_sqrt" with warmup_steps, Adam
beta2 0.98 / eps 1e-9.

Outputs in `training.output_dir`: `model/` (model + joint BPE tokenizer + the hf-seq translation pipeline, loadable
with `pipeline(model=..., trust_remote_code=True)`), `results.json` (sacreBLEU BLEU / chrF with signatures, tokenized
lower-cased BLEU, timings), `test_hypotheses.txt` and `cross_attention.png`.
"""

import dataclasses
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import sacrebleu
import torch
import yaml
from datasets import Dataset
from transformers import (
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    GenerationConfig,
    HfArgumentParser,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    TrainerCallback,
    set_seed,
)

import hf_seq  # registers the Auto classes; its folder holds the embedded Tatoeba pairs
from hf_seq.models.transformer import TransformerConfig, TransformerForConditionalGeneration
from hf_seq.pipelines import save_translation_pipeline
from hf_seq.tokenization import build_bpe_tokenizer
from hf_seq.transformer_utils import cross_attention_heatmap
from hf_seq.yaml_config import check_types, read_yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(REPO), "shared", "data")
EMBEDDED_TATOEBA = os.path.join(os.path.dirname(os.path.abspath(hf_seq.__file__)), "data", "tatoeba_en_fr.tsv")


@dataclass
class DataArguments:
    dataset: str = field(
        default="multi30k",
        metadata={
            "help": "multi30k | tatoeba (the 6,000 pairs embedded in hf_seq/data) | tatoeba-en-fr (all of "
            "fra-eng/fra.txt) | toy (synthetic, no files)"
        },
    )
    data_dir: str = field(default=DEFAULT_DATA_DIR, metadata={"help": "folder holding multi30k/ and fra-eng/"})
    source_lang: str = "de"
    target_lang: str = "en"
    max_train_samples: int | None = None
    max_eval_samples: int | None = field(default=500, metadata={"help": "validation sentences scored during training"})
    max_test_samples: int | None = None
    tatoeba_heldout: int = field(default=500, metadata={"help": "validation and test pairs each (tatoeba)"})
    tatoeba_test_size: int = field(default=1000, metadata={"help": "validation and test pairs each (tatoeba-en-fr)"})
    tatoeba_max_words: int = field(default=12, metadata={"help": "keep Tatoeba pairs up to this many words per side"})
    bpe_vocab_size: int = 8000
    bpe_min_frequency: int = 2
    max_source_length: int = 64
    max_target_length: int = 64
    test_num_beams: int = 4
    test_length_penalty: float = 1.0
    heatmap_sentence: int = field(default=0, metadata={"help": "index of the test sentence drawn in the heatmap"})
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "wall-clock budget of the training loop (CPU runs); stops after that step"}
    )


class TimeBudgetCallback(TrainerCallback):
    """Stop training once `minutes` of wall time have passed (the inverse-sqrt schedule needs no total step count)."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        if time.time() - self.start > self.seconds:
            control.should_training_stop = True


# ---------------------------------------------------------------------------------------------------------------------
def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _toy_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """A synthetic 'language pair': target = source words renamed by a fixed dictionary, in reverse order."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(30)]
    rename = {w: f"v{(7 * i + 3) % 30}" for i, w in enumerate(words)}
    pairs = []
    for _ in range(n):
        src = [rng.choice(words) for _ in range(rng.randint(3, 8))]
        pairs.append((" ".join(src), " ".join(rename[w] for w in reversed(src))))
    return pairs


def load_pairs(args: DataArguments, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Sentence pairs (source, target) for train / validation / test."""
    if args.dataset == "toy":
        pairs = _toy_pairs(1200, seed)
        splits = {"train": pairs[:1000], "validation": pairs[1000:1100], "test": pairs[1100:]}
    elif args.dataset == "tatoeba":  # same split as training/train_seq2seq.py, so the two families compare
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
    elif args.dataset == "tatoeba-en-fr":
        path = os.path.join(args.data_dir, "fra-eng", "fra.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Tatoeba en-fr not found at {path}; set data.data_dir.")
        pairs = []
        for line in _read_lines(path):
            en, fr = line.split("\t")[:2]
            if len(en.split()) <= args.tatoeba_max_words and len(fr.split()) <= args.tatoeba_max_words:
                pairs.append((en, fr) if args.source_lang == "en" else (fr, en))
        random.Random(seed).shuffle(pairs)
        n_test = args.tatoeba_test_size
        splits = {"test": pairs[:n_test], "validation": pairs[n_test : 2 * n_test], "train": pairs[2 * n_test :]}
    else:
        raise ValueError(f"data.dataset must be 'multi30k', 'tatoeba', 'tatoeba-en-fr' or 'toy', got {args.dataset!r}.")
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_test_samples}
    return {k: v[: limits[k]] if limits[k] else v for k, v in splits.items()}


def tokenize_pairs(pairs, tokenizer, args: DataArguments) -> Dataset:
    """Source ids as the tokenizer gives them (what the translation pipeline feeds the model); target ids + <eos>."""
    src = tokenizer([s for s, _ in pairs], truncation=True, max_length=args.max_source_length)["input_ids"]
    tgt = tokenizer([t for _, t in pairs], truncation=True, max_length=args.max_target_length - 1)["input_ids"]
    eos = tokenizer.eos_token_id
    return Dataset.from_dict({"input_ids": src, "labels": [ids + [eos] for ids in tgt]})


# ---------------------------------------------------------------------------------------------------------------------
def bleu_report(hypotheses: list[str], references: list[str], target_lang: str, tokenized_refs: list[str] | None):
    """sacreBLEU BLEU and chrF on detokenized text (with signatures), plus the tokenized lower-cased BLEU that
    Multi30k papers report (multi-bleu.perl on Moses-tokenized lower-cased text)."""
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    report = {
        "bleu": round(bleu.corpus_score(hypotheses, [references]).score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf": round(chrf.corpus_score(hypotheses, [references]).score, 2),
        "chrf_signature": str(chrf.get_signature()),
    }
    try:
        from sacremoses import MosesPunctNormalizer, MosesTokenizer
    except ImportError:  # fallback: sacreBLEU's own 13a tokenizer, lower-cased
        lc = sacrebleu.metrics.BLEU(lowercase=True)
        report["bleu_lc"] = round(lc.corpus_score(hypotheses, [references]).score, 2)
        report["bleu_lc_signature"] = str(lc.get_signature())
        return report
    # Moses normalize + lower-case + tokenize: reproduces multi30k's tok/*.lc.norm.tok files exactly (1000/1000 lines)
    norm, tok = MosesPunctNormalizer(target_lang), MosesTokenizer(target_lang)

    def moses(text):
        return tok.tokenize(norm.normalize(text.lower()), escape=True, return_str=True)

    refs = tokenized_refs if tokenized_refs is not None else [moses(r) for r in references]
    tok_bleu = sacrebleu.metrics.BLEU(tokenize="none", force=True)
    report["bleu_tok_lc"] = round(tok_bleu.corpus_score([moses(h) for h in hypotheses], [refs]).score, 2)
    report["bleu_tok_lc_signature"] = str(tok_bleu.get_signature()) + " (moses norm+tok, lower-cased)"
    return report


def load_config_file(path: str) -> dict:
    raw = read_yaml(path)  # a missing file, bad YAML syntax or a non-mapping is refused naming the file
    unknown = set(raw) - {"model", "data", "training"}
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)}; expected model, data, training.")
    allowed_model = {f.name for f in dataclasses.fields(TransformerConfig)} | set(TransformerConfig.attribute_map)
    bad = set(raw.get("model") or {}) - allowed_model
    if bad:
        raise ValueError(f"{path}: unknown model keys {sorted(bad)}.")
    check_types("data", raw.get("data") or {}, DataArguments, path)
    check_types("training", raw.get("training") or {}, Seq2SeqTrainingArguments, path)
    return raw


def build_model(model_overrides: dict, tokenizer, data_args: DataArguments) -> TransformerForConditionalGeneration:
    config = TransformerConfig(
        **model_overrides,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    if max(data_args.max_source_length, data_args.max_target_length) > config.max_position_embeddings:
        raise ValueError("data.max_source_length / max_target_length exceed model.max_position_embeddings.")
    model = TransformerForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        num_beams=data_args.test_num_beams,
        length_penalty=data_args.test_length_penalty,
        max_new_tokens=data_args.max_target_length,
    )
    return model


@torch.no_grad()
def translate(model, tokenizer, sentences: list[str], batch_size: int, **generate_kwargs) -> list[str]:
    """Batched generation over length-sorted sentences (less padding), returned in the input order.

    (Not `Seq2SeqTrainer.predict`: with `train_sampling_strategy="group_by_length"` transformers 5.24 also
    length-groups the evaluation sampler, so predictions come back permuted.)"""
    model.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = [""] * len(sentences)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([sentences[i] for i in idx], return_tensors="pt", padding=True, truncation=True)
        generated = model.generate(**enc.to(model.device), **generate_kwargs)
        for i, text in zip(idx, tokenizer.batch_decode(generated, skip_special_tokens=True)):
            out[i] = text.strip()
    return out


def test_report(model, tokenizer, test_pairs, data_args: DataArguments, training_args) -> dict:
    """Beam-search translations of the test set, sacreBLEU scores, hypotheses file and the attention heatmap."""
    start = time.time()
    hyps = translate(
        model,
        tokenizer,
        [s for s, _ in test_pairs],
        training_args.per_device_eval_batch_size,
        num_beams=data_args.test_num_beams,
        max_new_tokens=data_args.max_target_length,
        length_penalty=data_args.test_length_penalty,
    )
    seconds = time.time() - start
    refs = [t for _, t in test_pairs]
    tok_refs = None
    tok_path = os.path.join(
        data_args.data_dir, "multi30k", "tok", f"test_2016_flickr.lc.norm.tok.{data_args.target_lang}"
    )
    if data_args.dataset == "multi30k" and not data_args.max_test_samples and os.path.isfile(tok_path):
        tok_refs = _read_lines(tok_path)  # the official tokenized references
    scores = bleu_report(hyps, refs, data_args.target_lang, tok_refs)
    with open(os.path.join(training_args.output_dir, "test_hypotheses.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(hyps) + "\n")
    heat = cross_attention_heatmap(
        model,
        tokenizer,
        test_pairs[data_args.heatmap_sentence][0],
        os.path.join(training_args.output_dir, "cross_attention.png"),
        num_beams=data_args.test_num_beams,
    )
    return {
        "test_pairs": len(test_pairs),
        "test_num_beams": data_args.test_num_beams,
        "test_seconds": round(seconds, 1),
        **{f"test_{k}": v for k, v in scores.items()},
        "heatmap": heat,
        "sample_translations": [
            {"source": s, "reference": r, "hypothesis": h} for (s, r), h in list(zip(test_pairs, hyps))[:5]
        ],
    }


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    eval_only = "--eval-only" in argv  # re-score the saved model of a finished run
    argv = [a for a in argv if a != "--eval-only"]
    if not argv or argv[0].startswith("-"):
        raise SystemExit("usage: train_transformer.py CONFIG.yaml [--eval-only] [section.key=value ...]")
    raw = load_config_file(argv[0])
    for override in argv[1:]:  # section.key=value, value parsed as YAML
        key, _, value = override.partition("=")
        section, _, name = key.partition(".")
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    data_args, training_args = HfArgumentParser((DataArguments, Seq2SeqTrainingArguments)).parse_dict(
        {**(raw.get("data") or {}), **(raw.get("training") or {})}, allow_extra_keys=False
    )
    set_seed(training_args.seed)
    os.makedirs(training_args.output_dir, exist_ok=True)

    # 1. data and a joint BPE vocabulary (§5.1) trained on both sides of the training set
    pairs = load_pairs(data_args, training_args.seed)
    if eval_only:
        model_dir = os.path.join(training_args.output_dir, "model")
        model = TransformerForConditionalGeneration.from_pretrained(model_dir)
        results_path = os.path.join(training_args.output_dir, "results.json")
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
        results.update(
            test_report(model, AutoTokenizer.from_pretrained(model_dir), pairs["test"], data_args, training_args)
        )
        with open(results_path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, ensure_ascii=False)
        print(json.dumps({k: v for k, v in results.items() if k.startswith("test_")}))
        return results
    tokenizer = build_bpe_tokenizer(
        (text for pair in pairs["train"] for text in pair),
        vocab_size=data_args.bpe_vocab_size,
        min_frequency=data_args.bpe_min_frequency,
        model_max_length=data_args.max_source_length,
    )
    datasets = {name: tokenize_pairs(p, tokenizer, data_args) for name, p in pairs.items()}

    # 2. model
    model = build_model(raw.get("model") or {}, tokenizer, data_args)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{data_args.dataset}: {len(pairs['train'])} train pairs, vocab {len(tokenizer)}, {n_params / 1e6:.2f}M params"
    )

    def compute_metrics(eval_pred):
        preds, labels = eval_pred
        preds = np.where(preds < 0, tokenizer.pad_token_id, preds)
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        hyps = [h.strip() for h in tokenizer.batch_decode(preds, skip_special_tokens=True)]
        refs = [r.strip() for r in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        return {"bleu": sacrebleu.corpus_bleu(hyps, [refs]).score}

    # 3. train
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

    # 4. save model + tokenizer + translation pipeline; generation settings reset to ours (Seq2SeqTrainer fills in
    # every default otherwise, HF-NOTES)
    model.generation_config = build_model(raw.get("model") or {}, tokenizer, data_args).generation_config
    save_translation_pipeline(model, tokenizer, os.path.join(training_args.output_dir, "model"))

    # 5. test with beam search, scored with sacreBLEU; one encoder-decoder attention heatmap
    test = test_report(model, tokenizer, pairs["test"], data_args, training_args)

    log = trainer.state.log_history
    train_losses = [e["loss"] for e in log if "loss" in e]
    results = {
        "config_file": argv[0],
        "overrides": argv[1:],
        "dataset": data_args.dataset,
        "direction": f"{data_args.source_lang}->{data_args.target_lang}",
        "train_pairs": len(pairs["train"]),
        "test_pairs": len(pairs["test"]),
        "vocab_size": len(tokenizer),
        "parameters": n_params,
        "model": {
            k: getattr(model.config, k)
            for k in ("d_model", "d_ff", "num_heads", "encoder_layers", "decoder_layers", "dropout", "norm_first")
        },
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0, 2),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),  # < wall time when other processes share the cores
        "train_loss_first_logged": train_losses[0] if train_losses else None,
        "train_loss_last_logged": train_losses[-1] if train_losses else None,
        "train_loss_mean": round(train_result.training_loss, 4),
        "eval_history": [
            {k: e[k] for k in e if k in ("step", "eval_loss", "eval_bleu")} for e in log if "eval_loss" in e
        ],
        "threads": torch.get_num_threads(),
        **test,
    }
    with open(os.path.join(training_args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    print(json.dumps({k: results[k] for k in results if k.startswith("test_") or k in ("steps", "train_seconds")}))
    return results


if __name__ == "__main__":
    main()

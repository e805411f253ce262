#!/usr/bin/env python
"""Train a language model (RNN | GRU | LSTM | Transformer decoder) from a YAML experiment file, with `Trainer`.

    python training/train_lm.py configs/lstm_timemachine.yaml            # the default demo (minutes on 2 CPU cores)
    python training/train_lm.py configs/lstm_ptb_small.yaml --smoke      # a few steps on a tiny model, for tests
    python training/train_lm.py configs/transformer_lm_ptb.yaml          # the Transformer decoder on the same data

The architecture is one line of the file (`model.architecture`); the data, tokenizer and evaluation are shared, so
the models compare on equal terms. Recurrent models are evaluated over each contiguous stream with the state carried
(Zaremba et al.'s protocol); the Transformer, which has no state, with a sliding window of `data.block_size` tokens
moved `data.eval_stride` at a time, so every token is predicted once with at least `block_size - eval_stride` tokens
of context.

Sections of the YAML file: `model` (architecture + any field of its config), `data` (DataArguments below),
`training` (any `TrainingArguments` field), `generate` (GenerateArguments below). Writes to `training.output_dir` a
Hub-ready folder: config + safetensors + tokenizer + generation config + remote code, plus `eval_results.json`
(validation/test perplexity), `sample.txt` and `training_curve.png`. An interrupted run resumes from its last
checkpoint when started again with the same output_dir.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Trainer,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

import hf_seq
from hf_seq.data import contiguous_stream_blocks, group_into_blocks, load_text_splits, stream, tokenize_lines
from hf_seq.evaluation import evaluate_perplexity, windowed_perplexity
from hf_seq.hub import write_model_card
from hf_seq.models.recurrent import GRUConfig, LSTMConfig, RNNConfig
from hf_seq.models.transformer import TransformerConfig
from hf_seq.plotting import plot_training_curve
from hf_seq.tokenization import build_bpe_tokenizer, build_char_level_tokenizer, build_word_level_tokenizer
from hf_seq.training.checkpointing import checkpoint_to_resume
from hf_seq.training.experiment import ConfigError, check_keys, check_types, parse_sections
from hf_seq.training.trainer import (
    EpochDecayCallback,
    StatefulLMTrainer,
    TrainingClock,
)

ARCHITECTURES = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig, "transformer": TransformerConfig}
# a decoder-only Transformer: no encoder, no source embedding to share
DECODER_ONLY = {"is_encoder_decoder": False, "encoder_layers": 0, "share_embeddings": False}


def model_keys(arch: str) -> set[str]:
    """The `model:` keys an architecture accepts: its config's fields (and, for the Transformer, the paper's names)."""
    config_cls = ARCHITECTURES[arch]
    keys = {f for f in config_cls.__dataclass_fields__ if not f.startswith("_")}
    keys |= set(getattr(config_cls, "attribute_map", {}))
    if arch == "rnn":
        keys.add("nonlinearity")
    return keys - set(DECODER_ONLY if arch == "transformer" else ())


@dataclass
class DataArguments:
    train_files: list[str] | None = field(default=None, metadata={"help": "text files; default: embedded Time Machine"})
    validation_files: list[str] | None = None
    test_files: list[str] | None = None
    dataset_name: str | None = field(default=None, metadata={"help": "a Hub dataset name instead of files"})
    dataset_config: str | None = None
    tokenizer: str = field(default="word", metadata={"help": "word | char | bpe | path of a saved tokenizer"})
    vocab_size: int | None = None
    min_frequency: int = 1
    lowercase: bool = False
    split_punctuation: bool = False
    line_separator: str = field(default="eos", metadata={"help": "eos | space | none"})
    block_size: int = field(default=35, metadata={"help": "tokens per training sequence (the BPTT length)"})
    stateful_bptt: bool = field(
        default=False, metadata={"help": "carry the hidden state across consecutive batches (Zaremba et al. 2014)"}
    )
    max_train_tokens: int | None = field(default=None, metadata={"help": "cap the training stream (smoke runs)"})
    max_eval_tokens: int | None = None
    eval_batch_size: int = 10
    eval_stride: int | None = field(
        default=None, metadata={"help": "Transformer only: sliding-window step of the evaluation (default block_size // 2)"}
    )
    lr_decay: float | None = field(
        default=None,
        metadata={"help": "Zaremba et al.'s schedule: multiply the learning rate by this at the start of every epoch "
                          "after lr_decay_start_epoch (needs training.lr_scheduler_type: constant)"},
    )
    lr_decay_start_epoch: int = field(default=4, metadata={"help": "epochs trained at the full learning rate"})
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "wall-clock budget of the training loop (per process; see next)"}
    )
    lr_decay_over_budget: bool = field(
        default=False,
        metadata={"help": "the learning rate falls linearly to zero at the end of max_train_minutes (wall clock, "
                          "counted across resumes); needs training.lr_scheduler_type constant[_with_warmup]"},
    )


@dataclass
class GenerateArguments:
    prompt: str = "the time traveller"
    max_new_tokens: int = 60
    do_sample: bool = True
    temperature: float = 0.8
    top_k: int = 0
    num_beams: int = 1
    seed: int = 0


SMOKE = {
    "model": {"hidden_size": 16, "embedding_size": 16, "num_hidden_layers": 1},
    "model_transformer": {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2, "decoder_layers": 1},
    "data": {"max_train_tokens": 2000, "max_eval_tokens": 500, "block_size": 16},
    "training": {"max_steps": 3, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4,
                 "eval_strategy": "no", "save_strategy": "no", "logging_steps": 1},
    "generate": {"max_new_tokens": 5},
}


def parse(config_path: str, smoke: bool = False, output_dir: str | None = None):
    parsed, free = parse_sections(
        config_path, {"data": DataArguments, "generate": GenerateArguments}, {"model": None, "training": None}
    )
    data, gen, model_kw, train_kw = parsed["data"], parsed["generate"], free["model"], free["training"]
    arch = model_kw.pop("architecture", "lstm")
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{config_path}: model.architecture {arch!r} is not one of {sorted(ARCHITECTURES)}")
    check_keys("model", model_kw, sorted(model_keys(arch)), config_path)
    if arch == "transformer" and data.stateful_bptt:
        raise ConfigError(
            f"{config_path}: data.stateful_bptt carries a recurrent state across batches; the Transformer has none "
            "(set stateful_bptt: false, or choose a recurrent architecture)"
        )
    if data.lr_decay is not None and not 0 < data.lr_decay <= 1:
        raise ConfigError(f"{config_path}: data.lr_decay ({data.lr_decay}) must be in (0, 1]")
    if data.lr_decay is not None and train_kw.get("lr_scheduler_type", "linear") != "constant":
        raise ConfigError(f"{config_path}: data.lr_decay sets the learning rate per epoch; it needs "
                          f"training.lr_scheduler_type: constant, got {train_kw.get('lr_scheduler_type', 'linear')!r}")
    if data.lr_decay_over_budget and (data.max_train_minutes is None or train_kw.get(
            "lr_scheduler_type", "linear") not in ("constant", "constant_with_warmup")):
        raise ConfigError(f"{config_path}: data.lr_decay_over_budget needs data.max_train_minutes and "
                          "training.lr_scheduler_type constant or constant_with_warmup (the clock does the decay), got "
                          f"{data.max_train_minutes} and {train_kw.get('lr_scheduler_type', 'linear')!r}")
    if data.eval_stride is not None and not 0 < data.eval_stride <= data.block_size:
        raise ConfigError(f"{config_path}: data.eval_stride ({data.eval_stride}) must be in (0, block_size={data.block_size}]")
    if smoke:
        model_kw.update(SMOKE["model_transformer" if arch == "transformer" else "model"])
        for k, v in SMOKE["data"].items():
            setattr(data, k, v)
        train_kw.update(SMOKE["training"])
        gen.max_new_tokens = SMOKE["generate"]["max_new_tokens"]
    if output_dir:
        train_kw["output_dir"] = output_dir
    train_kw.setdefault("report_to", "none")
    check_types("training", train_kw, TrainingArguments, config_path)
    try:
        training_args = TrainingArguments(**train_kw)
    except TypeError as e:
        raise ConfigError(f"{config_path}: section 'training': {e}") from e
    return arch, model_kw, data, training_args, gen


def build_tokenizer(data: DataArguments, raw):
    if data.tokenizer not in ("word", "char", "bpe"):
        return AutoTokenizer.from_pretrained(data.tokenizer)
    lines = (t for t in raw["train"]["text"] if t.strip())
    common = dict(lowercase=data.lowercase, padding_side="left")
    if data.tokenizer == "char":
        return build_char_level_tokenizer(lines, min_frequency=data.min_frequency, **common)
    if data.tokenizer == "bpe":
        return build_bpe_tokenizer(lines, vocab_size=data.vocab_size or 8000, **common)
    return build_word_level_tokenizer(lines, vocab_size=data.vocab_size, min_frequency=data.min_frequency,
                                      split_punctuation=data.split_punctuation, **common)


def main(argv=None):
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("config", help="YAML experiment file (see configs/)")
    cli.add_argument("--smoke", action="store_true", help="tiny model, a few steps: checks the pipeline end to end")
    cli.add_argument("--output_dir", help="override training.output_dir")
    opts = cli.parse_args(argv)
    arch, model_kw, data, args, gen = parse(opts.config, opts.smoke, opts.output_dir)
    set_seed(args.seed)
    started = time.time()

    # 1. data and tokenizer
    raw = load_text_splits(data.train_files, data.validation_files, data.test_files, data.dataset_name,
                           data.dataset_config)
    tokenizer = build_tokenizer(data, raw)
    tokenized = tokenize_lines(raw, tokenizer, data.line_separator)
    streams = {split: stream(tokenized[split]) for split in tokenized}
    if data.max_train_tokens:
        streams["train"] = streams["train"][: data.max_train_tokens]
    if data.max_eval_tokens:
        for split in ("validation", "test"):
            streams[split] = streams[split][: data.max_eval_tokens]

    # 2. model
    extra = {}
    if arch == "transformer":
        extra = dict(DECODER_ONLY, decoder_start_token_id=tokenizer.bos_token_id)
        model_kw.setdefault("max_position_embeddings", max(data.block_size, 512))  # room to generate past a block
    config = ARCHITECTURES[arch](
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, **model_kw, **extra,
    )
    model = AutoModelForCausalLM.from_config(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{type(model).__name__}: {n_params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}, "
          f"{len(streams['train'])} training tokens")

    # 3. train
    if data.stateful_bptt:
        args.label_names = ["target_ids"]
        train_ds = contiguous_stream_blocks(streams["train"], args.per_device_train_batch_size, data.block_size)
        eval_ds = contiguous_stream_blocks(streams["validation"], args.per_device_eval_batch_size, data.block_size)
        trainer_cls = StatefulLMTrainer
    else:
        train_ds = group_into_blocks(streams["train"], data.block_size).shuffle(seed=args.seed)
        eval_ds = group_into_blocks(streams["validation"], data.block_size)
        trainer_cls = Trainer
    callbacks = [TrainingClock(data.max_train_minutes, decay_lr=data.lr_decay_over_budget)]
    if data.lr_decay:
        callbacks.append(EpochDecayCallback(data.lr_decay, data.lr_decay_start_epoch))
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          data_collator=default_data_collator, callbacks=callbacks)
    # an interrupted run picks up where it stopped; a checkpoint cut short by a crash mid-save is skipped
    trainer.train(resume_from_checkpoint=checkpoint_to_resume(args))
    train_seconds = time.time() - started

    # 4. evaluate: perplexity over each contiguous stream, state carried (Zaremba et al.'s protocol); the stateless
    #    Transformer with a sliding window instead
    results = {"architecture": arch, "parameters": n_params, "train_seconds": round(train_seconds, 1),
               "stateful_bptt": data.stateful_bptt, "train_tokens": int(len(streams["train"])),
               "config_file": opts.config, "train_files": data.train_files or "timemachine (embedded)"}
    stride = data.eval_stride or max(1, data.block_size // 2)
    if arch == "transformer":
        results["evaluation"] = f"sliding window of {data.block_size} tokens, stride {stride}"
    else:
        results["evaluation"] = "contiguous stream, state carried"
    for split in ("validation", "test"):
        if arch == "transformer":
            r = windowed_perplexity(model, streams[split], window=data.block_size, stride=stride,
                                    batch_size=args.per_device_eval_batch_size)
        else:
            r = evaluate_perplexity(model, streams[split], batch_size=data.eval_batch_size, bptt=data.block_size)
        results[f"{split}_loss"], results[f"{split}_perplexity"] = r["loss"], r["perplexity"]
    results["epochs"] = trainer.state.epoch
    results["torch_threads"] = torch.get_num_threads()
    results["eval_history_protocol"] = (
        f"state carried ({args.per_device_eval_batch_size} sub-streams x {data.block_size})" if data.stateful_bptt
        else f"independent blocks of {data.block_size} tokens")
    results["eval_history"] = [
        {"epoch": round(e["epoch"], 3), "validation_perplexity": round(math.exp(e["eval_loss"]), 2),
         **({"elapsed_seconds": e["elapsed_seconds"]} if "elapsed_seconds" in e else {})}
        for e in trainer.state.log_history if "eval_loss" in e
    ]

    # 5. sample
    sampling = dict(temperature=gen.temperature, top_k=gen.top_k) if gen.do_sample else {}
    model.generation_config.update(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                   eos_token_id=tokenizer.eos_token_id, max_new_tokens=gen.max_new_tokens,
                                   do_sample=gen.do_sample, num_beams=gen.num_beams, **sampling)
    set_seed(gen.seed)
    prompt = tokenizer(gen.prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    model.eval()
    with torch.no_grad():
        out = model.generate(**prompt)
    sample = tokenizer.decode(out[0], skip_special_tokens=True)

    # 6. save a Hub-ready folder: weights, tokenizer, generation config, remote code, results
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class("AutoModelForCausalLM")
    model.config.use_cache = True
    trainer.save_model(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    with open(os.path.join(args.output_dir, "eval_results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.output_dir, "sample.txt"), "w") as f:
        f.write(sample + "\n")
    if trainer.state.log_history and any("loss" in e for e in trainer.state.log_history):
        plot_training_curve(trainer.state.log_history, os.path.join(args.output_dir, "training_curve.png"),
                            title=f"{'Transformer decoder' if arch == 'transformer' else arch.upper()} LM")
    # the model card, rendered from eval_results.json (hf-seq publish re-renders it with the real repo id)
    repo_id = args.hub_model_id or f"YOUR_NAME/{os.path.basename(os.path.abspath(args.output_dir))}"
    write_model_card(args.output_dir, repo_id=repo_id, model=model)
    print(json.dumps(results, indent=2))
    print(f"validation perplexity {results['validation_perplexity']:.2f}, test perplexity "
          f"{results['test_perplexity']:.2f} ({train_seconds:.0f} s)")
    print(f"sample: {sample}")
    print(f"saved to {args.output_dir}")
    if args.push_to_hub:  # the complete folder (card, remote code, clean generation config) replaces Trainer's push
        from hf_seq.hub import publish

        publish(args.output_dir, args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
                token=args.hub_token, private=bool(args.hub_private_repo))
    return results


if __name__ == "__main__":
    hf_seq.register_auto_classes()
    try:
        main()
    except (ConfigError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")

"""Language modelling (`task: language-modeling`): RNN | GRU | LSTM | Transformer decoder, trained with `Trainer`.

    hf-seq train lstm_timemachine                 # the default demo (minutes on 2 CPU cores)
    hf-seq train lstm_ptb_small --smoke           # a few steps on a tiny model, written under runs/smoke/
    hf-seq train transformer_lm_ptb               # the Transformer decoder on the same data

The architecture is one line of the experiment (`model.architecture`); the data, tokenizer and evaluation are
shared, so the models compare on equal terms. Recurrent models are evaluated over each contiguous stream with the
state carried (Zaremba et al.'s protocol); the Transformer, which has no state, with a sliding window of
`data.block_size` tokens moved `data.eval_stride` at a time, so every token is predicted once with at least
`block_size - eval_stride` tokens of context.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedConfig,
    Trainer,
    TrainingArguments,
    default_data_collator,
    set_seed,
)
from transformers.utils import logging

from ..data import contiguous_stream_blocks, group_into_blocks, load_text_splits, stream, tokenize_lines
from ..evaluation import evaluate_perplexity, windowed_perplexity
from ..models.recurrent import GRUConfig, LSTMConfig, RNNConfig
from ..models.transformer import TransformerDecoderConfig
from ..tokenization import build_bpe_tokenizer, build_char_level_tokenizer, build_word_level_tokenizer
from .experiment import ConfigError, Experiment, TaskSpec, fingerprint_callback, resolve_path, resume_checkpoint
from .run_folder import write_run_folder
from .trainer import EpochDecayCallback, StatefulLMTrainer, TrainingClock

logger = logging.get_logger(__name__)

ARCHITECTURES = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig, "transformer": TransformerDecoderConfig}
# a decoder-only Transformer: no encoder, no source embedding to share
DECODER_ONLY = {"is_encoder_decoder": False, "encoder_layers": 0, "share_embeddings": False}
TOKENIZERS = ("word", "char", "bpe")


@dataclass
class DataArguments:
    RANGES = {"lr_decay_start_epoch": (0, True)}  # noqa: RUF012  (a class attribute, not a field)

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


def model_keys(model: dict) -> set[str]:
    """The `model:` keys an architecture accepts: its config's fields (and, for the Transformer, the paper's names)."""
    arch = model.get("architecture", "lstm")
    if arch not in ARCHITECTURES:
        raise ConfigError(f"model.architecture {arch!r} is not one of {sorted(ARCHITECTURES)}")
    config_cls = ARCHITECTURES[arch]
    # the architecture's own config fields (not PreTrainedConfig's bookkeeping) and its paper-name aliases
    base = {f.name for f in dataclasses.fields(PreTrainedConfig) if f.init}
    keys = {f.name for f in dataclasses.fields(config_cls) if f.init} - base
    keys |= set(getattr(config_cls, "attribute_map", {}))
    if arch == "rnn":
        keys.add("nonlinearity")
    keys -= set(DECODER_ONLY if arch == "transformer" else ()) | {"vocab_size", "pad_token_id", "bos_token_id",
                                                                  "eos_token_id", "decoder_start_token_id"}
    return keys | {"architecture", "word_vectors", "freeze_embeddings"}


EMBEDDING_KEYS = ("word_vectors", "freeze_embeddings")  # not config fields: how the input embedding is initialised


def build_config(model: dict, vocab_size: int, pad: int, bos: int, eos: int, block_size: int):
    model = {k: v for k, v in model.items() if k not in EMBEDDING_KEYS}
    arch = model.pop("architecture", "lstm")
    extra = {}
    if arch == "transformer":
        extra = dict(DECODER_ONLY, decoder_start_token_id=bos)
        model.setdefault("max_position_embeddings", max(block_size, 512))  # room to generate past a block
    return ARCHITECTURES[arch](vocab_size=vocab_size, pad_token_id=pad, bos_token_id=bos, eos_token_id=eos,
                               **model, **extra)


def validate(exp: Experiment) -> None:
    data, train, where = exp.data, exp.training, exp.path
    arch = exp.model.get("architecture", "lstm")
    if arch == "transformer" and data.stateful_bptt:
        raise ConfigError(f"{where}: data.stateful_bptt carries a recurrent state across batches; the Transformer has "
                          "none (set stateful_bptt: false, or choose a recurrent architecture)")
    if data.lr_decay is not None and not 0 < data.lr_decay <= 1:
        raise ConfigError(f"{where}: data.lr_decay ({data.lr_decay}) must be in (0, 1]")
    scheduler = str(getattr(train.lr_scheduler_type, "value", train.lr_scheduler_type))
    if data.lr_decay is not None and scheduler != "constant":
        raise ConfigError(f"{where}: data.lr_decay sets the learning rate per epoch; it needs "
                          f"training.lr_scheduler_type: constant, got {scheduler!r}")
    if data.lr_decay_over_budget and (data.max_train_minutes is None
                                      or scheduler not in ("constant", "constant_with_warmup")):
        raise ConfigError(f"{where}: data.lr_decay_over_budget needs data.max_train_minutes and "
                          "training.lr_scheduler_type constant or constant_with_warmup (the clock does the decay), got "
                          f"{data.max_train_minutes} and {scheduler!r}")
    if data.eval_stride is not None and not 0 < data.eval_stride <= data.block_size:
        raise ConfigError(f"{where}: data.eval_stride ({data.eval_stride}) must be in (0, block_size={data.block_size}]")
    if data.line_separator not in ("eos", "space", "none"):
        raise ConfigError(f"{where}: data.line_separator {data.line_separator!r} is not one of eos, space, none")
    if data.tokenizer not in TOKENIZERS:
        data.tokenizer = resolve_path(data.tokenizer, None)
        if not os.path.isdir(data.tokenizer):
            raise ConfigError(f"{where}: section 'data': tokenizer {data.tokenizer!r} is neither word, char, bpe nor "
                              "a folder holding a saved tokenizer")
    vectors = exp.model.get("word_vectors")
    if vectors and not os.path.exists(vectors):
        raise ConfigError(f"{where}: section 'model': word_vectors: {vectors} does not exist")
    if data.stateful_bptt:
        train.label_names = ["target_ids"]  # StatefulLMTrainer's batches; set before the run's fingerprint is taken
    for key in ("train_files", "validation_files", "test_files"):
        for path in getattr(data, key) or []:
            if not os.path.isfile(path):
                raise ConfigError(f"{where}: section 'data': {key}: {path} does not exist (data paths written "
                                  "$HF_SEQ_DATA/... need HF_SEQ_DATA=/path/to/data, or give the file's path)")
    # the model section builds a config now (a placeholder vocabulary): an impossible config fails before training
    build_config(exp.model, vocab_size=8, pad=0, bos=1, eos=2, block_size=data.block_size)
    # generation settings are checked by GenerationConfig itself, also before training
    from transformers import GenerationConfig

    gen = exp.generate
    sampling = dict(temperature=gen.temperature, top_k=gen.top_k) if gen.do_sample else {}
    GenerationConfig(max_new_tokens=gen.max_new_tokens, do_sample=gen.do_sample, num_beams=gen.num_beams,
                     **sampling).validate(strict=True)


# --smoke also shrinks the model; the keys depend on the architecture
SMOKE_MODEL = {"recurrent": {"hidden_size": 16, "embedding_size": 16, "num_hidden_layers": 1},
               "transformer": {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,
                               "decoder_layers": 1}}


def smoke_model(model: dict) -> dict:
    kind = "transformer" if model.get("architecture") == "transformer" else "recurrent"
    drop = {"d_model", "d_ff", "num_heads", "N", "embedding_size"} if kind == "transformer" else set()
    return {**{k: v for k, v in model.items() if k not in drop}, **SMOKE_MODEL[kind]}


SPEC = TaskSpec(
    data=DataArguments,
    training=TrainingArguments,
    generate=GenerateArguments,
    model_keys=model_keys,
    path_fields=("train_files", "validation_files", "test_files"),
    model_path_fields=("word_vectors",),
    smoke={
        "data": {"max_train_tokens": 2000, "max_eval_tokens": 500, "block_size": 16, "max_train_minutes": None,
                 "lr_decay_over_budget": False},
        "training": {"max_steps": 3, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4,
                     "eval_strategy": "no", "save_strategy": "no", "logging_steps": 1},
        "generate": {"max_new_tokens": 5},
    },
    smoke_model=smoke_model,
    validate=validate,
)
def build_tokenizer(data: DataArguments, raw):
    if data.tokenizer not in TOKENIZERS:
        return AutoTokenizer.from_pretrained(data.tokenizer)
    lines = (t for t in raw["train"]["text"] if t.strip())
    common = dict(lowercase=data.lowercase, padding_side="left")
    if data.tokenizer == "char":
        return build_char_level_tokenizer(lines, min_frequency=data.min_frequency, **common)
    if data.tokenizer == "bpe":
        return build_bpe_tokenizer(lines, vocab_size=data.vocab_size or 8000, **common)
    return build_word_level_tokenizer(lines, vocab_size=data.vocab_size, min_frequency=data.min_frequency,
                                      split_punctuation=data.split_punctuation, **common)


def run(exp: Experiment) -> dict:
    data, args, gen = exp.data, exp.training, exp.generate
    arch = exp.model.get("architecture", "lstm")
    model_kw = exp.model
    set_seed(args.seed)
    resume = resume_checkpoint(exp)

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
    config = build_config(model_kw, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id,
                          tokenizer.eos_token_id, data.block_size)
    model = AutoModelForCausalLM.from_config(config)
    word_vectors = None
    if model_kw.get("word_vectors"):  # pre-trained input embeddings (word2vec / GloVe / fastText text, or a folder)
        from ..embeddings import load_embeddings_for_side

        word_vectors = load_embeddings_for_side(model, tokenizer, model_kw["word_vectors"], side="input",
                                                freeze=bool(model_kw.get("freeze_embeddings", False)))
        logger.info("word vectors: %s of %s tokens found in %s", word_vectors["found"], word_vectors["total"],
                    model_kw["word_vectors"])
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("%s: %.2fM parameters, vocabulary %d, %d training tokens", type(model).__name__, n_params / 1e6,
                   len(tokenizer), len(streams["train"]))

    # 3. train
    if data.stateful_bptt:
        train_ds = contiguous_stream_blocks(streams["train"], args.per_device_train_batch_size, data.block_size)
        eval_ds = contiguous_stream_blocks(streams["validation"], args.per_device_eval_batch_size, data.block_size)
        trainer_cls = StatefulLMTrainer
    else:
        train_ds = group_into_blocks(streams["train"], data.block_size).shuffle(seed=args.seed)
        eval_ds = group_into_blocks(streams["validation"], data.block_size)
        trainer_cls = Trainer
    clock = TrainingClock(data.max_train_minutes, decay_lr=data.lr_decay_over_budget)
    callbacks = [clock, fingerprint_callback(exp)]
    if data.lr_decay:
        callbacks.append(EpochDecayCallback(data.lr_decay, data.lr_decay_start_epoch))
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          data_collator=default_data_collator, callbacks=callbacks)
    # an interrupted run picks up where it stopped; a checkpoint cut short by a crash mid-save is skipped
    trainer.train(resume_from_checkpoint=resume)
    train_seconds = clock.elapsed()  # across resumes

    # 4. evaluate: perplexity over each contiguous stream, state carried (Zaremba et al.'s protocol); the stateless
    #    Transformer with a sliding window instead
    results = {"architecture": arch, "parameters": n_params, "train_seconds": round(train_seconds, 1),
               "stateful_bptt": data.stateful_bptt, "train_tokens": int(len(streams["train"])),
               "train_files": data.train_files or "timemachine (embedded)",
               **({"word_vectors": word_vectors} if word_vectors else {})}
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
    results["sample"] = sample

    # 6. the Hub-ready run folder
    write_run_folder(args.output_dir, model=model, tokenizer=tokenizer, auto_class="AutoModelForCausalLM",
                     results=results, experiment=exp, log_history=trainer.state.log_history, sample=sample,
                     curve_title=f"{'Transformer decoder' if arch == 'transformer' else arch.upper()} LM")
    if args.push_to_hub:  # the complete folder (card, remote code, clean generation config) replaces Trainer's push
        from ..hub import publish

        publish(args.output_dir, args.hub_model_id or exp.name, token=args.hub_token,
                private=bool(args.hub_private_repo))
    return results


def summary(results: dict) -> str:
    return (f"validation perplexity {results['validation_perplexity']:.2f}, test perplexity "
            f"{results['test_perplexity']:.2f} ({results['train_seconds']:.0f} s of training)\n"
            f"sample: {results['sample']}")


__all__ = ["SPEC", "DataArguments", "GenerateArguments", "run", "summary"]

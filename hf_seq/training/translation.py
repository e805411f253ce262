"""Translation (`task: translation`): the RNN encoder-decoder or the Transformer, trained with `Seq2SeqTrainer`.

    hf-seq train seq2seq_tatoeba_bahdanau          # the embedded en->fr demo (GRU + Bahdanau attention, minutes)
    hf-seq train transformer_smoke                 # seconds: 300 embedded pairs, a tiny Transformer
    hf-seq train seq2seq_multi30k_luong_cpu_1h     # Multi30k de->en (needs ${HF_SEQ_DATA}/multi30k)
    hf-seq train seq2seq_multi30k_luong_cpu_1h data.eval_only=true    # re-score a finished run's folder

`model.architecture` picks the model: `rnn` (hf_seq.models.seq2seq: `cell_type` rnn | gru | lstm, `attention` none |
bahdanau | luong) or `transformer` (hf_seq.models.transformer, Vaswani et al. 2017; the paper's names d_model, d_ff,
num_heads, N are accepted). Everything else is shared, so the families compare on equal terms: the data and its
split, the joint byte-level BPE vocabulary over both sides of the training pairs (§5.1 of the paper), teacher forcing
with `DataCollatorForSeq2Seq`, and the test report: the test set decoded in order with the saved generation settings,
scored on detokenized text with sacreBLEU (BLEU and chrF with their signatures, tokenized lower-cased BLEU), BLEU by
source-length bucket, `test_hypotheses.txt`, and one attention heatmap (`attention.png`).

The run folder is the Hub-ready model folder (`pipeline(model=RUN, trust_remote_code=True)` translates).
The Tatoeba splits (and the toy pairs) are shuffled with `data.split_seed`, which defaults to `training.seed`; fix it
(`data.split_seed=0 training.seed=1`, `... training.seed=2`) to train several seeds on the same split and vocabulary,
e.g. for an ensemble of seeds (`hf_seq.ensemble`). Multi30k's split is its files.
`data.tune_decoding: true` first chooses the beam size and length penalty on the validation pairs (never the test
set) and saves them as the model's generation settings; with `data.eval_only: true` it re-scores a finished run.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    GenerationConfig,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    set_seed,
)
from transformers.utils import logging

from ..data.translation import (
    DATASETS,
    data_files,
    joint_bpe_tokenizer,
    load_pairs,
    official_tokenized_references,
    tokenize_pairs,
)
from ..evaluation import bleu_by_source_length, bleu_report, translate
from ..models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from ..models.transformer import TransformerConfig, TransformerForConditionalGeneration
from ..plotting import plot_translation_attention
from .checkpointing import RunFingerprintCallback
from .experiment import ConfigError, Experiment, TaskSpec, resolve_path, resume_checkpoint
from .run_folder import write_run_folder
from .trainer import TrainingClock

logger = logging.get_logger(__name__)

ARCHITECTURES = {
    "rnn": (RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration),
    "transformer": (TransformerConfig, TransformerForConditionalGeneration),
}
DEFAULT_ARCHITECTURE = "rnn"
# set from the tokenizer (one joint vocabulary), never by the experiment
FROM_TOKENIZER = {"vocab_size", "target_vocab_size", "pad_token_id", "bos_token_id", "eos_token_id",
                  "decoder_start_token_id", "is_encoder_decoder", "use_cache"}
# the synthetic `toy` data set's size per architecture (what each script used)
TOY = {"rnn": {"n": 700, "train": 600, "validation": 50, "vocab": 20, "lengths": (2, 6)},
       "transformer": {"n": 1200, "train": 1000, "validation": 100, "vocab": 30, "lengths": (3, 8)}}
# the data sets split by a seeded shuffle (`data.split_seed`); multi30k ships its own train / val / test files
SHUFFLED_DATASETS = ("tatoeba", "tatoeba-en-fr", "toy")
# `data.tune_decoding`: the grid searched on the validation pairs
DECODING_GRID = {"num_beams": (1, 4, 8), "length_penalty": (0.6, 1.0, 1.4)}
HEATMAP = "attention.png"


@dataclass
class DataArguments:
    RANGES = {"tatoeba_test_size": (1, True), "tatoeba_max_words": (1, True),  # noqa: RUF012  (not a field)
              "bpe_min_frequency": (1, True), "heatmap_sentence": (0, True), "split_seed": (0, True)}

    dataset: str = field(
        default="tatoeba",
        metadata={"help": "tatoeba (the 6,000 en-fr pairs embedded in hf_seq/data) | multi30k | tatoeba-en-fr (all of "
                          "fra-eng/fra.txt) | toy (synthetic, no files)"},
    )
    data_dir: str = field(default="${HF_SEQ_DATA}", metadata={"help": "folder holding multi30k/ and fra-eng/"})
    source_lang: str = "en"
    target_lang: str = "fr"
    tatoeba_heldout: int = field(default=500, metadata={"help": "validation and test pairs each (tatoeba)"})
    tatoeba_test_size: int = field(default=1000, metadata={"help": "validation and test pairs each (tatoeba-en-fr)"})
    tatoeba_max_words: int = field(default=12, metadata={"help": "tatoeba-en-fr: pairs up to this many words a side"})
    split_seed: int | None = field(
        default=None, metadata={"help": "seed of the test / validation / train split of tatoeba and tatoeba-en-fr (and "
                                        "of the toy pairs); null: training.seed. Fix it to train several seeds on one "
                                        "split and one vocabulary (an ensemble of seeds). multi30k's split is fixed"}
    )
    max_train_samples: int | None = None
    max_eval_samples: int | None = field(default=200, metadata={"help": "validation pairs (BLEU during training, "
                                                                        "tune_decoding); null: all"})
    max_test_samples: int | None = None
    bpe_vocab_size: int = 8000
    bpe_min_frequency: int = 2
    max_source_length: int = 64
    max_target_length: int = field(default=64, metadata={"help": "target tokens with <eos>; also the test's "
                                                                 "max_new_tokens"})
    test_num_beams: int = field(default=4, metadata={"help": "beam size of the test decoding (1 = greedy)"})
    test_length_penalty: float = 1.0
    heatmap_sentence: int = field(default=0, metadata={"help": "index of the test sentence drawn in attention.png"})
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "wall-clock budget of the training loop (counted across resumes)"}
    )
    tune_decoding: bool = field(
        default=False, metadata={"help": "choose test_num_beams / test_length_penalty on the validation pairs first "
                                         "and save them as the model's generation settings"}
    )
    eval_only: bool = field(
        default=False, metadata={"help": "train nothing: decode the test set again with the run folder's model and "
                                         "update its eval_results.json"}
    )
    results_file: str | None = field(default=None, metadata={"help": "also write the results here (a benchmark's "
                                                                      "record)"})


# --------------------------------------------------------------------------------------------------------------------
# the experiment: model keys, validation, --smoke
# --------------------------------------------------------------------------------------------------------------------
def architecture(model: dict, where: str = "") -> str:
    arch = model.get("architecture", DEFAULT_ARCHITECTURE)
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{where}: section 'model': architecture {arch!r} is not one of {sorted(ARCHITECTURES)}")
    return arch


def model_keys(model: dict) -> set[str]:
    """The `model:` keys an architecture accepts: its config's own fields (and the Transformer's paper names). For
    an unknown architecture, any architecture's keys: `validate` then names the file and the architecture."""
    arch = model.get("architecture", DEFAULT_ARCHITECTURE)
    classes = [ARCHITECTURES[arch][0]] if arch in ARCHITECTURES else [c for c, _ in ARCHITECTURES.values()]
    keys = set()
    for config_cls in classes:
        keys |= set(config_cls.__annotations__) | set(getattr(config_cls, "attribute_map", {}))
    # `num_hidden_layers` aliases the decoder's layers only: ambiguous in an encoder-decoder
    return (keys - FROM_TOKENIZER - {"num_hidden_layers"}) | {"architecture"} | set(EMBEDDING_KEYS)


# pre-trained word vectors per side (not config fields: how the embeddings are initialised)
EMBEDDING_KEYS = ("encoder_word_vectors", "decoder_word_vectors", "freeze_encoder_embeddings",
                  "freeze_decoder_embeddings")


def build_config(model: dict, vocab_size: int, pad: int, bos: int, eos: int):
    model = {k: v for k, v in model.items() if k not in EMBEDDING_KEYS}
    arch = model.pop("architecture", DEFAULT_ARCHITECTURE)
    return ARCHITECTURES[arch][0](vocab_size=vocab_size, pad_token_id=pad, bos_token_id=bos, eos_token_id=eos,
                                  decoder_start_token_id=bos, **model)


def generation_config_for(config, data: DataArguments) -> GenerationConfig:
    """The generation settings saved with the model: the test decoding's, nothing that Seq2SeqTrainer leaks."""
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id, bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, num_beams=data.test_num_beams,
        length_penalty=data.test_length_penalty, max_new_tokens=data.max_target_length,
    )


def _test_split_size(data: DataArguments) -> int | None:
    """Test pairs known before the data is read (None: only the files tell)."""
    known = {"tatoeba": data.tatoeba_heldout, "tatoeba-en-fr": data.tatoeba_test_size}.get(data.dataset)
    limits = [n for n in (known, data.max_test_samples) if n]
    return min(limits) if limits else None


def validate(exp: Experiment) -> None:
    """Everything checkable before the data is read: the data set and its files, the model config (built on a
    placeholder vocabulary), the test decoding, the options that need a finished run folder."""
    data, args, where = exp.data, exp.training, exp.path or "<dict>"

    def fail(section, key, message):
        raise ConfigError(f"{where}: section '{section}': {key}{'' if message.startswith('=') else ' '}{message}")

    arch = architecture(exp.model, where)
    # 1. data
    if data.dataset not in DATASETS:
        fail("data", "dataset", f"{data.dataset!r} is not one of {', '.join(DATASETS)}")
    if data.source_lang == data.target_lang:
        fail("data", "target_lang", f"{data.target_lang!r} equals source_lang: translate between two languages")
    if data.dataset in ("tatoeba", "tatoeba-en-fr") and {data.source_lang, data.target_lang} != {"en", "fr"}:
        fail("data", "source_lang", f"/ target_lang {data.source_lang!r} -> {data.target_lang!r}: the {data.dataset} "
                                    "pairs are English-French (en -> fr or fr -> en)")
    if data.dataset in ("multi30k", "tatoeba-en-fr"):
        try:
            data.data_dir = resolve_path(data.data_dir, None)
        except ConfigError as e:
            fail("data", "data_dir", f"({data.dataset}): {e}")
        missing = [p for p in data_files(data.dataset, data.data_dir, data.source_lang, data.target_lang)
                   if not os.path.isfile(p)]
        if missing:
            fail("data", "data_dir", f"{data.data_dir!r} lacks {missing[0]} (dataset {data.dataset}, "
                                     f"{data.source_lang}->{data.target_lang})")
    if data.split_seed is not None and data.dataset not in SHUFFLED_DATASETS:
        fail("data", "split_seed", f"={data.split_seed} has no effect: the {data.dataset} splits are fixed files "
                                   f"(split_seed applies to {', '.join(SHUFFLED_DATASETS)})")
    if not math.isfinite(data.test_length_penalty):
        fail("data", "test_length_penalty", f"={data.test_length_penalty} must be a finite number")
    n_test = _test_split_size(data)
    if n_test is not None and data.heatmap_sentence >= n_test:
        fail("data", "heatmap_sentence", f"={data.heatmap_sentence} but the test set has {n_test} pairs")
    # 2. the model: a config on a placeholder vocabulary, so an impossible one fails before any training
    try:
        config = build_config(exp.model, vocab_size=64, pad=1, bos=2, eos=3)
    except (TypeError, ValueError, StrictDataclassError) as e:  # @strict raises StrictDataclassError (neither)
        raise ConfigError(f"{where}: section 'model' ({arch}): {e}") from e
    if arch == "transformer":
        longest = max(data.max_source_length, data.max_target_length)  # positions the encoder / decoder see
        if longest > config.max_position_embeddings:
            fail("model", "max_position_embeddings", f"={config.max_position_embeddings} is shorter than "
                 f"data.max_source_length / max_target_length ({longest})")
    # 3. the test decoding, checked by GenerationConfig itself
    try:
        generation_config_for(config, data).validate(strict=True)
    except ValueError as e:
        fail("data", "test_num_beams", f"/ test_length_penalty / max_target_length: {e}")
    # 4. training
    if str(args.metric_for_best_model or "").removeprefix("eval_") == "bleu" and not args.predict_with_generate:
        fail("training", "metric_for_best_model", "is bleu: validation BLEU needs predict_with_generate: true")
    if data.eval_only and not os.path.isfile(os.path.join(args.output_dir, "config.json")):
        fail("data", "eval_only", f"needs a finished run: {args.output_dir!r} holds no model (config.json)")


SMOKE_MODEL = {
    "rnn": {"hidden_size": 32, "encoder_embedding_size": 16, "decoder_embedding_size": 16, "attention_size": 32,
            "encoder_layers": 1, "decoder_layers": 1, "dropout": 0.0},
    "transformer": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "encoder_layers": 1,
                    "decoder_layers": 1, "max_position_embeddings": 32, "dropout": 0.0},
}
# the sizes SMOKE_MODEL replaces, under any of their names
SMOKE_REPLACES = {"transformer": {"d_model", "d_ff", "num_heads", "N"}, "rnn": set()}


def smoke_model(model: dict) -> dict:
    arch = model.get("architecture", DEFAULT_ARCHITECTURE)
    if arch not in ARCHITECTURES:
        return model  # model_keys reports it
    kept = {k: v for k, v in model.items() if k not in SMOKE_REPLACES[arch]}
    if arch == "rnn" and kept.get("bridge") == "copy":  # copying needs equal encoder/decoder sizes
        kept.pop("bridge")
    return {**kept, **SMOKE_MODEL[arch]}


SPEC = TaskSpec(
    data=DataArguments,
    training=Seq2SeqTrainingArguments,
    generate=None,
    model_keys=model_keys,
    model_path_fields=("encoder_word_vectors", "decoder_word_vectors"),
    # seconds on the embedded Tatoeba pairs whatever the experiment's data: 300 training pairs, 15 steps
    smoke={
        "data": {"dataset": "tatoeba", "source_lang": "en", "target_lang": "fr", "max_train_samples": 300,
                 "max_eval_samples": 20, "max_test_samples": 40, "bpe_vocab_size": 300, "max_source_length": 24,
                 "max_target_length": 24, "max_train_minutes": None, "test_num_beams": 2},
        "training": {"max_steps": 15, "logging_steps": 5, "per_device_train_batch_size": 32, "learning_rate": 3e-3,
                     "warmup_steps": 2, "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
                     "resume_from_checkpoint": None, "use_cpu": True, "disable_tqdm": True,
                     "dataloader_num_workers": 0},
    },
    smoke_model=smoke_model,
    path_fields=("data_dir",),
    validate=validate,
)


# --------------------------------------------------------------------------------------------------------------------
# training and the test report
# --------------------------------------------------------------------------------------------------------------------
def build_trainer(model, tokenizer, datasets: dict, data: DataArguments, args, callbacks) -> Seq2SeqTrainer:
    """Teacher forcing (DataCollatorForSeq2Seq builds the decoder inputs with
    `prepare_decoder_input_ids_from_labels`); validation BLEU when `predict_with_generate` and an eval strategy ask."""

    def compute_metrics(eval_pred):
        preds, labels = eval_pred
        preds = np.where(preds < 0, tokenizer.pad_token_id, preds)
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        hyps = [h.strip() for h in tokenizer.batch_decode(preds, skip_special_tokens=True)]
        refs = [r.strip() for r in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        return {"bleu": bleu_report(hyps, refs, data.target_lang)["bleu"]}

    return Seq2SeqTrainer(
        model=model, args=args, train_dataset=datasets["train"], eval_dataset=datasets["validation"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer, compute_metrics=compute_metrics if args.predict_with_generate else None,
        callbacks=callbacks,
    )


def tune_decoding(model, tokenizer, validation_pairs, data: DataArguments, batch_size: int,
                  grid: dict = DECODING_GRID) -> dict:
    """Choose the beam size and length penalty with the best BLEU on the validation pairs (never the test set);
    sets `data.test_num_beams` / `test_length_penalty` and returns the whole grid with the choice."""
    sources, refs = [s for s, _ in validation_pairs], [t for _, t in validation_pairs]
    rows = []
    for beams in grid["num_beams"]:
        for penalty in grid["length_penalty"] if beams > 1 else (1.0,):  # the penalty only ranks beam hypotheses
            hyps = translate(model, tokenizer, sources, batch_size, num_beams=beams,
                             max_new_tokens=data.max_target_length, length_penalty=penalty)
            rows.append({"num_beams": beams, "length_penalty": penalty,
                         "validation_bleu": bleu_report(hyps, refs, data.target_lang)["bleu"]})
            logger.info("decoding grid: %s", json.dumps(rows[-1]))
    best = max(rows, key=lambda r: r["validation_bleu"])
    data.test_num_beams, data.test_length_penalty = best["num_beams"], best["length_penalty"]
    model.generation_config.num_beams = best["num_beams"]
    model.generation_config.length_penalty = best["length_penalty"]
    return {"validation_pairs": len(validation_pairs), "grid": rows, "chosen": best}


def test_report(model, tokenizer, test_pairs, data: DataArguments, batch_size: int, output_dir: str) -> dict:
    """Decode the test set in input order (`translate`: with group_by_length, `Seq2SeqTrainer.predict` would permute
    it), score it with sacreBLEU overall and by source length, and write `test_hypotheses.txt`."""
    start = time.time()
    sources, refs = [s for s, _ in test_pairs], [t for _, t in test_pairs]
    hyps = translate(model, tokenizer, sources, batch_size, num_beams=data.test_num_beams,
                     max_new_tokens=data.max_target_length, length_penalty=data.test_length_penalty)
    seconds = time.time() - start
    official = official_tokenized_references(data.dataset, data.data_dir, data.target_lang, len(refs))
    scores = bleu_report(hyps, refs, data.target_lang, official)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "test_hypotheses.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(hyps) + "\n")
    return {
        "test_pairs": len(test_pairs),
        "test_num_beams": data.test_num_beams,
        "test_length_penalty": data.test_length_penalty,
        "test_seconds": round(seconds, 1),
        **{f"test_{k}": v for k, v in scores.items()},
        "test_bleu_by_source_length": bleu_by_source_length([len(s.split()) for s in sources], hyps, refs),
        "sample_translations": [
            {"source": s, "reference": r, "hypothesis": h} for s, r, h in list(zip(sources, refs, hyps))[:5]
        ],
    }


def heatmap_picture(model, tokenizer, source: str, data: DataArguments) -> dict:
    """{file name: draw(path)} for `write_run_folder`: the cross-attention (the Transformer's top layer, mean over
    heads) while translating `source` with the test decoding; nothing for an RNN without attention."""
    if getattr(model.config, "attention", None) == "none":
        return {}

    def draw(path):
        return plot_translation_attention(model, tokenizer, source, path, num_beams=data.test_num_beams,
                                          length_penalty=data.test_length_penalty,
                                          max_new_tokens=data.max_target_length)

    return {HEATMAP: draw}


def model_summary(config) -> dict:
    if isinstance(config, TransformerConfig):
        keys = ("d_model", "d_ff", "num_heads", "encoder_layers", "decoder_layers", "dropout", "norm_first",
                "max_position_embeddings")
    else:
        keys = ("cell_type", "attention", "attention_score", "input_feeding", "bidirectional_encoder", "bridge",
                "encoder_layers", "decoder_layers", "hidden_size", "encoder_embedding_size", "decoder_embedding_size",
                "attention_size", "dropout", "share_encoder_decoder_embeddings", "tie_word_embeddings")
    return {k: getattr(config, k) for k in keys}


def training_record(trainer, train_result, train_seconds: float, train_cpu_seconds: float) -> dict:
    """Steps, epochs, timings and logged losses of a finished `trainer.train()`."""
    log = trainer.state.log_history
    losses = [e["loss"] for e in log if "loss" in e]
    return {
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0, 2),
        "train_seconds": round(train_seconds, 1),  # wall time of the training loop, across resumes
        "train_cpu_seconds": round(train_cpu_seconds, 1),  # this process only; < wall time on shared cores
        "train_loss_first_logged": losses[0] if losses else None,
        "train_loss_last_logged": losses[-1] if losses else None,
        "train_loss_mean": round(train_result.training_loss, 4),
        "eval_history": [{k: e[k] for k in e if k in ("step", "epoch", "elapsed_seconds", "eval_loss", "eval_bleu")}
                         for e in log if "eval_loss" in e],
        "threads": torch.get_num_threads(),
    }


def split_seed(exp: Experiment) -> int | None:
    """The seed that splits the experiment's pairs: `data.split_seed`, else `training.seed` (None: fixed splits)."""
    if exp.data.dataset not in SHUFFLED_DATASETS:
        return None
    return exp.training.seed if exp.data.split_seed is None else exp.data.split_seed


def experiment_pairs(exp: Experiment) -> dict:
    """{"train", "validation", "test"}: the experiment's pairs, split and cut as the runner trains and tests on them."""
    data, arch = exp.data, architecture(exp.model)
    return load_pairs(
        data.dataset, source_lang=data.source_lang, target_lang=data.target_lang, data_dir=data.data_dir,
        seed=split_seed(exp), heldout=data.tatoeba_heldout,
        test_size=data.tatoeba_test_size, max_words=data.tatoeba_max_words, toy=TOY[arch],
        limits={"train": data.max_train_samples, "validation": data.max_eval_samples, "test": data.max_test_samples},
    )


def _sample(test: dict) -> str:
    first = test["sample_translations"][0]
    return f"{first['source']}\n-> {first['hypothesis']}"


def rescore(exp: Experiment, pairs: dict) -> dict:
    """`data.eval_only`: decode the test set again with the run folder's model (after `tune_decoding` when asked)
    and update the folder's results, card and generation settings."""
    data, args = exp.data, exp.training
    model = AutoModelForSeq2SeqLM.from_pretrained(args.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.output_dir)
    results_path = os.path.join(args.output_dir, "eval_results.json")
    results = {}
    if os.path.isfile(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    if data.tune_decoding:
        results["decoding_tuned_on_validation"] = tune_decoding(model, tokenizer, pairs["validation"], data,
                                                                args.per_device_eval_batch_size)
    test = test_report(model, tokenizer, pairs["test"], data, args.per_device_eval_batch_size, args.output_dir)
    results.update(test, rescored=True)
    results["heatmap"] = _heatmap_record(model, pairs, data)
    write_run_folder(args.output_dir, model=model, tokenizer=tokenizer, auto_class="AutoModelForSeq2SeqLM",
                     results=results, sample=_sample(test),
                     pictures=heatmap_picture(model, tokenizer, pairs["test"][data.heatmap_sentence][0], data),
                     results_file=data.results_file)
    return results


def _heatmap_record(model, pairs: dict, data: DataArguments) -> dict | None:
    if getattr(model.config, "attention", None) == "none":
        return None
    return {"file": HEATMAP, "test_sentence": data.heatmap_sentence, "source": pairs["test"][data.heatmap_sentence][0]}


def run(exp: Experiment) -> dict:
    data, args = exp.data, exp.training
    arch = architecture(exp.model)
    set_seed(args.seed)

    # 1. data and a joint byte-level BPE vocabulary over both sides of the training set
    resume = None if data.eval_only else resume_checkpoint(exp)  # refuses another experiment's folder
    pairs, pairs_seed = experiment_pairs(exp), split_seed(exp)
    if data.heatmap_sentence >= len(pairs["test"]):
        raise ValueError(f"data.heatmap_sentence={data.heatmap_sentence} but the test set has {len(pairs['test'])} "
                         "pairs")
    if data.eval_only:
        return rescore(exp, pairs)
    tokenizer = joint_bpe_tokenizer(pairs["train"], data.bpe_vocab_size, data.bpe_min_frequency,
                                    data.max_source_length)
    datasets = {name: tokenize_pairs(p, tokenizer, data.max_source_length, data.max_target_length)
                for name, p in pairs.items()}

    # 2. model
    config = build_config(exp.model, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id,
                          tokenizer.eos_token_id)
    model = ARCHITECTURES[arch][1](config)
    model.generation_config = generation_config_for(config, data)
    word_vectors = None
    if exp.model.get("encoder_word_vectors") or exp.model.get("decoder_word_vectors"):
        from ..embeddings import load_seq2seq_embeddings  # coverage is partial with a byte-level BPE vocabulary

        word_vectors = load_seq2seq_embeddings(
            model, tokenizer, encoder=exp.model.get("encoder_word_vectors"),
            decoder=exp.model.get("decoder_word_vectors"),
            freeze_encoder=bool(exp.model.get("freeze_encoder_embeddings", False)),
            freeze_decoder=bool(exp.model.get("freeze_decoder_embeddings", False)))
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("%s %s->%s: %d train pairs, BPE vocabulary %d, %s, %.2fM parameters", data.dataset,
                data.source_lang, data.target_lang, len(pairs["train"]), len(tokenizer), type(model).__name__,
                n_params / 1e6)

    # 3. train (teacher forcing); an interrupted run picks up where it stopped
    clock = TrainingClock(data.max_train_minutes)
    trainer = build_trainer(model, tokenizer, datasets, data, args,
                            callbacks=[clock, RunFingerprintCallback(exp.fingerprint())])
    cpu_start = time.process_time()
    train_result = trainer.train(resume_from_checkpoint=resume)
    record = training_record(trainer, train_result, clock.elapsed(), time.process_time() - cpu_start)
    record["resumed_from"] = resume
    # Seq2SeqTrainer wrote every default generation setting into the model: back to the test decoding's
    model.generation_config = generation_config_for(config, data)
    results = {
        "architecture": arch,
        "smoke": exp.smoke,
        "dataset": data.dataset,
        "direction": f"{data.source_lang}->{data.target_lang}",
        "tokenizer": f"joint byte-level BPE ({len(tokenizer)} tokens, tokenizers library)",
        "train_pairs": len(pairs["train"]),
        **({"split_seed": pairs_seed} if pairs_seed is not None else {}),
        "vocab_size": len(tokenizer),
        "parameters": n_params,
        **({"word_vectors": word_vectors} if word_vectors else {}),
        "model": model_summary(config),
        "max_train_minutes": data.max_train_minutes,
        **record,
    }
    if not trainer.is_world_process_zero():
        return results

    # 4. test: (tuned) decoding in order, sacreBLEU on detokenized text, by source-length bucket, one heatmap
    if data.tune_decoding:
        results["decoding_tuned_on_validation"] = tune_decoding(model, tokenizer, pairs["validation"], data,
                                                                args.per_device_eval_batch_size)
    test = test_report(model, tokenizer, pairs["test"], data, args.per_device_eval_batch_size, args.output_dir)
    results.update(test)
    results["heatmap"] = _heatmap_record(model, pairs, data)

    # 5. the Hub-ready run folder (model, joint tokenizer, translation pipeline, results, curves, card)
    write_run_folder(args.output_dir, model=model, tokenizer=tokenizer, auto_class="AutoModelForSeq2SeqLM",
                     results=results, experiment=exp, log_history=trainer.state.log_history, sample=_sample(test),
                     curve_title=f"{'Transformer' if arch == 'transformer' else config.cell_type.upper()} "
                                 f"{data.dataset} {data.source_lang}->{data.target_lang}",
                     pictures=heatmap_picture(model, tokenizer, pairs["test"][data.heatmap_sentence][0], data),
                     results_file=data.results_file)
    if args.push_to_hub:  # the complete folder (card, remote code, clean generation config) replaces Trainer's push
        from ..hub import publish

        publish(args.output_dir, args.hub_model_id or exp.name, token=args.hub_token,
                private=bool(args.hub_private_repo))
    return results


def summary(results: dict) -> str:
    if "test_bleu" not in results:  # a process other than the first of a distributed run: it tests nothing
        return f"trained {results.get('steps')} steps; the first process tests and writes the run folder"
    beams = results.get("test_num_beams")
    decoding = "greedy" if beams == 1 else f"beam {beams}"
    line = (f"test BLEU {results['test_bleu']:.2f}, chrF {results['test_chrf']:.2f} ({decoding}, "
            f"{results['test_pairs']} pairs of {results.get('dataset')} {results.get('direction')})")
    if results.get("train_seconds") is not None and not results.get("rescored"):
        line += f"; {results['train_seconds']:.0f} s of training, {results.get('epochs')} epochs"
    first = (results.get("sample_translations") or [{}])[0]
    if first:
        line += f"\nsample: {first['source']} -> {first['hypothesis']}"
    return line


__all__ = ["SPEC", "DataArguments", "experiment_pairs", "run", "split_seed", "summary", "tune_decoding",
           "test_report"]

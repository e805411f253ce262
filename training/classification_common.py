"""Shared plumbing of train_classifier.py and train_tagger.py: YAML sections -> dataclasses, model config, results.

A YAML experiment has three sections: `model` (`architecture` rnn|gru|lstm plus any field of its config, and
`word_vectors` / `freeze_embeddings`), `data` (the script's DataArguments) and `training` (any `TrainingArguments`
field). `--set section.key=value` overrides one value from the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time

import torch
import yaml
from transformers import TrainingArguments

from hf_seq.models.recurrent import GRUConfig, LSTMConfig, RNNConfig

ARCHITECTURES = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig}
MODEL_EXTRAS = {"architecture", "word_vectors", "freeze_embeddings", "nonlinearity"}


def _coerce(value: str):
    return yaml.safe_load(value)


def parse_experiment(description: str, data_cls, smoke_overrides: dict, argv=None):
    cli = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("config", help="YAML experiment file (see configs/)")
    cli.add_argument("--smoke", action="store_true", help="tiny model and data, a few steps: checks the script")
    cli.add_argument("--output_dir", help="override training.output_dir")
    cli.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one value")
    opts = cli.parse_args(argv)
    with open(opts.config) as f:
        raw = yaml.safe_load(f) or {}
    unknown = set(raw) - {"model", "data", "training"}
    if unknown:
        raise ValueError(f"{opts.config}: unknown sections {sorted(unknown)}; expected model, data, training.")
    sections = {name: dict(raw.get(name) or {}) for name in ("model", "data", "training")}
    if opts.smoke:
        for name, values in smoke_overrides.items():
            sections[name].update(values)
    for item in opts.set:
        key, _, value = item.partition("=")
        section, _, field = key.partition(".")
        if section not in sections or not field or not _:
            raise ValueError(f"--set expects SECTION.KEY=VALUE with SECTION in model/data/training, got {item!r}.")
        sections[section][field] = _coerce(value)
    if opts.output_dir:
        sections["training"]["output_dir"] = opts.output_dir

    allowed_model = set(LSTMConfig.__dataclass_fields__) | MODEL_EXTRAS
    bad = set(sections["model"]) - allowed_model
    if bad:
        raise ValueError(f"{opts.config}: section 'model' has unknown keys {sorted(bad)}.")
    data_fields = {f.name for f in dataclasses.fields(data_cls)}
    bad = set(sections["data"]) - data_fields
    if bad:
        raise ValueError(f"{opts.config}: section 'data' has unknown keys {sorted(bad)}; known: {sorted(data_fields)}.")
    data = data_cls(**sections["data"])
    sections["training"].setdefault("report_to", "none")
    training = TrainingArguments(**sections["training"])
    return opts, sections["model"], data, training


def build_config(model_kw: dict, tokenizer, **extra):
    model_kw = dict(model_kw)
    arch = model_kw.pop("architecture", "lstm")
    for key in ("word_vectors", "freeze_embeddings"):
        model_kw.pop(key, None)
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.architecture {arch!r} is not one of {sorted(ARCHITECTURES)}.")
    return ARCHITECTURES[arch](
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, **model_kw, **extra,
    )


def build_model(auto_cls, model_kw: dict, tokenizer, **config_kw):
    """The model of the `model` section (+ word vectors loaded into its embedding when `word_vectors` names a file).
    Returns (model, number of vocabulary words found in the vectors file, or None)."""
    from hf_seq.embeddings import load_pretrained_embeddings

    model = auto_cls.from_config(build_config(model_kw, tokenizer, **config_kw))
    found = None
    if model_kw.get("word_vectors"):
        found = load_pretrained_embeddings(model, tokenizer, model_kw["word_vectors"],
                                           freeze=bool(model_kw.get("freeze_embeddings", False)))
        print(f"word vectors: {found} of {len(tokenizer) - 4} vocabulary words found in {model_kw['word_vectors']}")
    return model, found


def save_run(trainer, tokenizer, auto_class: str, results: dict, results_file: str | None = None) -> None:
    """The Hub-ready run folder: weights + config with remote code, tokenizer, eval_results.json and the model card
    (rendered from eval_results.json; `hf-seq publish` re-renders it with the real repo id). A copy of the results
    goes to `results_file` when given."""
    from hf_seq.hub import write_model_card

    model, out = trainer.model, trainer.args.output_dir
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class(auto_class)
    trainer.save_model(out)
    tokenizer.save_pretrained(out)
    write_results(os.path.join(out, "eval_results.json"), results)
    write_model_card(out, repo_id=f"YOUR_NAME/{os.path.basename(os.path.abspath(out))}", model=model)
    if results_file:
        write_results(results_file, results)


def write_results(path: str, results: dict) -> None:
    results = dict(results)
    results["environment"] = {
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)

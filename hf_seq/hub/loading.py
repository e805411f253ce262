"""`load_checked`: `from_pretrained` that refuses a broken or mismatched folder with an error naming the file.

Measured with transformers 5.24 (tests/test_reliability_loading.py), plain `from_pretrained`:
- a truncated or corrupted `model.safetensors` raises `SafetensorError: ... incomplete metadata` without the path;
- a concrete class given another family's folder (`LSTMForCausalLM.from_pretrained(<transformer folder>)`) LOADS,
  with a warning and random weights;
- a folder holding only `pytorch_model.bin` is unpickled (weights_only) instead of refused;
- a tokenizer with more tokens than the embedding has rows is only found later, as an index error in `forward`.

`load_checked` validates first and raises `ValueError` (or `FileNotFoundError`) naming the file and the problem; weights
load only from safetensors.
"""

from __future__ import annotations

import dataclasses
import json
import os

from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel
from transformers.utils import logging

from ..training.checkpointing import safetensors_problem

logger = logging.get_logger(__name__)

_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.bin", "tf_model.h5")
# keys every transformers config.json may carry besides the config class's own fields
_ALWAYS_ALLOWED = {
    "architectures", "auto_map", "transformers_version", "model_type", "dtype", "torch_dtype", "_name_or_path",
    "custom_pipelines", "_commit_hash", "_attn_implementation_autoset",
}


class CheckpointError(ValueError):
    """A saved folder that cannot be loaded as asked: the message names the file and what is wrong with it."""


def _read_config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; {folder} is not a saved model folder")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); the file is truncated or corrupted") from e
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise CheckpointError(f"{path}: no 'model_type' key, so the model family is unknown")
    return raw


def _config_class_for(raw: dict, path: str, model_class) -> type:
    model_type = raw["model_type"]
    try:
        config_cls = type(AutoConfig.for_model(model_type))
    except ValueError as e:
        raise CheckpointError(
            f"{path}: model_type {model_type!r} is not a registered model type (saved by another library or another "
            "version of hf-seq? `import hf_seq` registers hf-seq's types)"
        ) from e
    try:  # a config class may map an older layout to another class (an old decoder-only Transformer folder)
        config_cls = type(config_cls.from_dict(dict(raw)))
        model_type = config_cls.model_type
    except (ValueError, TypeError, KeyError, StrictDataclassError):
        pass  # the checks below and the strict load name the problem
    if hasattr(model_class, "_model_mapping"):  # an Auto class
        mapping = model_class._model_mapping
        if config_cls not in mapping:
            raise CheckpointError(
                f"{path}: model_type {model_type!r} cannot be loaded as {model_class.__name__} (that Auto class has "
                f"no model for {config_cls.__name__})"
            )
    else:
        expected = model_class.config_class.model_type
        if expected != model_type:
            raise CheckpointError(
                f"{path}: model_type {model_type!r} belongs to another model family than {model_class.__name__} "
                f"(which expects {expected!r})"
            )
    return config_cls


def _unknown_keys(raw: dict, config_cls) -> list[str]:
    known = set(_ALWAYS_ALLOWED) | set(getattr(config_cls, "attribute_map", {}))
    if dataclasses.is_dataclass(config_cls):
        known |= {f.name for f in dataclasses.fields(config_cls)}
    known |= set(config_cls().to_dict())
    return sorted(set(raw) - known)


def _weight_files(folder: str) -> list[str]:
    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(single):
        return [single]
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{index}: truncated or corrupted shard index ({e})") from e
        return [os.path.join(folder, s) for s in shards]
    pickled = [name for name in _PICKLE_WEIGHTS if os.path.isfile(os.path.join(folder, name))]
    if pickled:
        raise CheckpointError(
            f"{os.path.join(folder, pickled[0])}: pickled weights are not loaded (safetensors only); convert once in "
            "a trusted environment with `model.save_pretrained(folder)` (which writes model.safetensors)"
        )
    raise FileNotFoundError(f"{single}: missing; the folder holds no weights")


def check_tokenizer_matches(model: PreTrainedModel, tokenizer, where: str = "the tokenizer") -> None:
    """Raise when `tokenizer` can produce ids the model's input embedding has no row for."""
    rows = model.get_input_embeddings().num_embeddings
    size = len(tokenizer)
    if size > rows:
        raise CheckpointError(
            f"{where}: the tokenizer has {size} tokens (ids up to {size - 1}) but the model's input embedding has "
            f"{rows} rows (config vocab_size={getattr(model.config, 'vocab_size', '?')}); they were not saved "
            "together, or call model.resize_token_embeddings(len(tokenizer))"
        )
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        tok_id, cfg_id = getattr(tokenizer, name, None), getattr(model.config, name, None)
        if tok_id is not None and cfg_id is not None and not isinstance(cfg_id, list) and tok_id != cfg_id:
            raise CheckpointError(
                f"{where}: tokenizer {name}={tok_id} but the model config says {name}={cfg_id}; the tokenizer does "
                "not belong to this model"
            )


def load_checked(
    folder: str | os.PathLike,
    model_class,
    *,
    with_tokenizer: bool = False,
    strict_config: bool = True,
    **from_pretrained_kwargs,
):
    """Validate `folder`, then `model_class.from_pretrained(folder, use_safetensors=True)`.

    Args:
        folder: a local folder written by `save_pretrained` (plus, optionally, `tokenizer.save_pretrained`).
        model_class: an Auto class (`AutoModelForCausalLM`, ...) or a concrete model class.
        with_tokenizer: also load the folder's tokenizer and return `(model, tokenizer)`.
        strict_config: refuse config.json keys the config class does not define (a config from another version).

    Raises `CheckpointError` (a `ValueError`) or `FileNotFoundError`, naming the file, for: invalid or truncated
    config.json; a model_type unknown, or of another family than `model_class`; unknown config keys; pickled weights
    only; truncated or corrupted safetensors; weights missing, unexpected or of the wrong shape for the config; a
    tokenizer larger than the embedding or with other special ids.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such model folder")
    config_path = os.path.join(folder, "config.json")

    # 1. config: valid JSON, a known model_type of the requested family, only known keys, values that validate
    raw = _read_config(folder)
    config_cls = _config_class_for(raw, config_path, model_class)
    if strict_config:
        unknown = _unknown_keys(raw, config_cls)
        if unknown:
            raise CheckpointError(
                f"{config_path}: keys {unknown} are not fields of {config_cls.__name__} (saved by another version of "
                "hf-seq?); pass strict_config=False to ignore them"
            )
    try:
        config = config_cls.from_pretrained(folder)
    except (ValueError, TypeError, StrictDataclassError) as e:  # strict config fields raise the last one
        raise CheckpointError(f"{config_path}: invalid {config_cls.__name__}: {e}") from e

    # 2. weights: safetensors only, whole files
    for path in _weight_files(folder):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: missing shard")
        problem = safetensors_problem(path)
        if problem is not None:
            raise CheckpointError(problem)

    # 3. load, refusing any key that is missing, unexpected or of the wrong shape
    from_pretrained_kwargs.setdefault("use_safetensors", True)
    try:
        model, info = model_class.from_pretrained(
            folder, config=config, output_loading_info=True, **from_pretrained_kwargs
        )
    except RuntimeError as e:
        if "mismatch" in str(e).lower():
            raise CheckpointError(
                f"{os.path.join(folder, 'model.safetensors')}: tensor shapes do not match {config_path}: {e}"
            ) from e
        raise
    bad = {k: info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(k)}
    if bad:
        details = "; ".join(f"{k.replace('_', ' ')}: {sorted(map(str, v))[:8]}" for k, v in bad.items())
        raise CheckpointError(f"{folder}: the weights do not match {config_path} ({details})")

    # 4. tokenizer saved alongside: its ids must fit the embedding
    has_tokenizer = any(
        os.path.isfile(os.path.join(folder, f)) for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")
    )
    tokenizer = None
    if has_tokenizer or with_tokenizer:
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{os.path.join(folder, 'tokenizer.json')}: cannot be loaded ({e})") from e
        check_tokenizer_matches(model, tokenizer, where=os.path.join(folder, "tokenizer.json"))
    return (model, tokenizer) if with_tokenizer else model


__all__ = ["CheckpointError", "check_tokenizer_matches", "load_checked"]

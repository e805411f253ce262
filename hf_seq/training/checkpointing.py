"""Crash-safe resumption: find the newest Trainer checkpoint that was written completely.

transformers 5.24's `Trainer._save_checkpoint` writes straight into `checkpoint-<step>/` (no temporary folder, no
rename): model weights, then optimizer / scheduler / RNG state, then `trainer_state.json` last. A process killed in
the middle leaves a half-written folder, and `transformers.trainer_utils.get_last_checkpoint` returns it anyway
because it only looks at folder names; resuming then fails (`trainer_state.json` missing, or a safetensors error that
does not name the file), every time the job is restarted.

`latest_complete_checkpoint(output_dir)` is the drop-in replacement: it walks the checkpoints newest first and
returns the first one that passes `checkpoint_problems`, logging why each newer one was skipped:

    resume = latest_complete_checkpoint(args.output_dir)   # instead of get_last_checkpoint(args.output_dir)
    trainer.train(resume_from_checkpoint=resume)
"""

from __future__ import annotations

import json
import os
import re
import struct
import zipfile

from transformers.utils import logging

logger = logging.get_logger(__name__)

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
# files Trainer writes with torch.save (zip archives since torch 1.6)
_TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt")


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Why the safetensors file at `path` is unreadable (truncated, bad header), or None when it is whole.

    Reads only the header: 8 bytes little-endian header length, the JSON header, then checks that the tensors'
    `data_offsets` cover the rest of the file exactly (what a truncated file fails).
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path}: truncated safetensors file ({size} bytes, shorter than its 8-byte header length)"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path}: truncated safetensors file (header claims {n} bytes, file has {size - 8} after it)"
            raw = f.read(n)
    except OSError as e:
        return f"{path}: cannot be read ({e})"
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"{path}: corrupted safetensors header (not valid JSON: {e})"
    if not isinstance(header, dict):
        return f"{path}: corrupted safetensors header (not a JSON object)"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            return f"{path}: corrupted safetensors header (tensor {name!r} has no valid data_offsets)"
        end = max(end, int(stop))
    if 8 + n + end != size:
        return (
            f"{path}: truncated or padded safetensors file: the header describes {8 + n + end} bytes, "
            f"the file has {size}"
        )
    return None


def torch_file_problem(path: str | os.PathLike) -> str | None:
    """Why a `torch.save` zip archive (optimizer.pt, rng_state.pth, ...) is unreadable, or None. Reads the zip's
    central directory only (a truncated archive loses it); never unpickles anything."""
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as zf:
            zf.infolist()
    except (OSError, zipfile.BadZipFile) as e:
        return f"{path}: truncated or corrupted torch file ({e})"
    return None


def checkpoint_problems(checkpoint: str | os.PathLike) -> list[str]:
    """Everything wrong with a Trainer checkpoint folder; an empty list means it can be resumed from.

    Checks: `trainer_state.json` (written last) exists, parses and names the folder's step; the weights
    (`model.safetensors` or every shard of `model.safetensors.index.json`) are whole; `config.json` parses; every
    torch file Trainer wrote (optimizer, scheduler, scaler, per-rank RNG state) is a whole archive.
    """
    checkpoint = os.fspath(checkpoint)
    problems = []
    if not os.path.isdir(checkpoint):
        return [f"{checkpoint}: not a folder"]
    files = set(os.listdir(checkpoint))

    # 1. trainer state: written after everything else, so its presence means the save reached the end
    state_path = os.path.join(checkpoint, TRAINER_STATE)
    if TRAINER_STATE not in files:
        problems.append(f"{state_path}: missing (the save was interrupted before it finished)")
    else:
        try:
            with open(state_path, encoding="utf-8") as f:
                state = json.load(f)
            match = _CHECKPOINT_RE.match(os.path.basename(os.path.normpath(checkpoint)))
            if match and state.get("global_step") != int(match.group(1)):
                problems.append(
                    f"{state_path}: global_step {state.get('global_step')} does not match the folder's step "
                    f"{match.group(1)}"
                )
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            problems.append(f"{state_path}: truncated or corrupted ({e})")

    # 2. weights: safetensors only (a pickled checkpoint is not trusted)
    index = os.path.join(checkpoint, "model.safetensors.index.json")
    if "model.safetensors" in files:
        shards = ["model.safetensors"]
    elif "model.safetensors.index.json" in files:
        try:
            with open(index, encoding="utf-8") as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            problems.append(f"{index}: truncated or corrupted ({e})")
            shards = []
    else:
        problems.append(f"{checkpoint}: no model.safetensors (or sharded index) in the checkpoint")
        shards = []
    for shard in shards:
        shard_path = os.path.join(checkpoint, shard)
        if shard not in files:
            problems.append(f"{shard_path}: missing")
        elif (problem := safetensors_problem(shard_path)) is not None:
            problems.append(problem)

    # 3. config and the torch-saved training state
    if "config.json" in files:
        try:
            with open(os.path.join(checkpoint, "config.json"), encoding="utf-8") as f:
                json.load(f)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            problems.append(f"{os.path.join(checkpoint, 'config.json')}: truncated or corrupted ({e})")
    for name in sorted(files):
        if name in _TORCH_FILES or (name.startswith("rng_state") and name.endswith(".pth")):
            if (problem := torch_file_problem(os.path.join(checkpoint, name))) is not None:
                problems.append(problem)
    return problems


def is_complete_checkpoint(checkpoint: str | os.PathLike) -> bool:
    return not checkpoint_problems(checkpoint)


def list_checkpoints(output_dir: str | os.PathLike) -> list[str]:
    """`checkpoint-<step>` folders of `output_dir`, newest (highest step) first."""
    output_dir = os.fspath(output_dir)
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = _CHECKPOINT_RE.match(name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            found.append((int(match.group(1)), os.path.join(output_dir, name)))
    return [path for _, path in sorted(found, reverse=True)]


def latest_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint in `output_dir` that was saved completely, or None when there is none.

    A drop-in replacement for `transformers.trainer_utils.get_last_checkpoint` that never returns a folder left
    half-written by a crash; every skipped folder is logged as a warning with its problems.
    """
    for checkpoint in list_checkpoints(output_dir):
        problems = checkpoint_problems(checkpoint)
        if not problems:
            return checkpoint
        logger.warning("skipping incomplete checkpoint %s: %s", checkpoint, "; ".join(problems))
    return None


def checkpoint_to_resume(args) -> str | None:
    """Where a training script resumes: `args.resume_from_checkpoint` when given (a checkpoint folder, possibly
    another run's), else the newest complete checkpoint in `args.output_dir` (a crashed run picks up where it
    stopped), else None. `args` is a `TrainingArguments`."""
    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    found = latest_complete_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
    if found:
        logger.warning("resuming from %s", found)
    return found


# ------------------------------------------------------------------------------------------------ checkpoint averaging
# not copied from the template folder: the weights (written anew) and a Trainer checkpoint's training state
_NOT_COPIED = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "config.json",
               "optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin")


def average_checkpoints(model_dir: str | os.PathLike, checkpoints: list[str | os.PathLike]):
    """The model of `model_dir` with every parameter and buffer replaced by its mean over `checkpoints`.

    Vaswani et al. (2017, §6.1) evaluate the base Transformer with "a single model obtained by averaging the last 5
    checkpoints". `model_dir` is a finished model folder (its config, generation config and class are kept); the
    checkpoints are Trainer `checkpoint-<step>` folders (or model folders) of the same architecture. Each is loaded
    with the model's own class, so tied weights are handled as in `from_pretrained`. Floating-point tensors are
    averaged in float64; integer buffers must be equal in all checkpoints.
    """
    import torch
    from transformers import AutoConfig

    from ..hub import PublishError, class_by_name

    checkpoints = [os.fspath(c) for c in checkpoints]
    if not checkpoints:
        raise ValueError("average_checkpoints needs at least one checkpoint folder, got none")
    for checkpoint in checkpoints:
        weights = os.path.join(checkpoint, "model.safetensors")
        if not os.path.isfile(weights):
            raise ValueError(f"{checkpoint!r} has no model.safetensors: expected a checkpoint or model folder")
        problem = safetensors_problem(weights)
        if problem:
            raise ValueError(problem)
    config = AutoConfig.from_pretrained(model_dir)
    for checkpoint in checkpoints:
        other = AutoConfig.from_pretrained(checkpoint)
        if (other.model_type, other.architectures) != (config.model_type, config.architectures):
            raise ValueError(
                f"{checkpoint!r} ({other.model_type}, {other.architectures}) is not a checkpoint of {model_dir!r}'s "
                f"architecture ({config.model_type}, {config.architectures})"
            )
    architecture = (getattr(config, "architectures", None) or [""])[0]
    try:
        model_class = class_by_name(architecture).model_class
    except PublishError as e:
        raise ValueError(f"{model_dir!r}: {e}") from e
    model = model_class.from_pretrained(model_dir)
    target = model.state_dict()
    sums = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in target.items() if v.is_floating_point()}
    for checkpoint in checkpoints:
        state = model_class.from_pretrained(checkpoint).state_dict()
        if state.keys() != target.keys():
            extra, missing = sorted(state.keys() - target.keys()), sorted(target.keys() - state.keys())
            raise ValueError(
                f"{checkpoint!r} is not a checkpoint of {model_dir!r}'s architecture "
                f"(unexpected {extra[:3]}, missing {missing[:3]})"
            )
        for name, value in state.items():
            if value.shape != target[name].shape:
                raise ValueError(
                    f"{checkpoint!r}: {name} has shape {tuple(value.shape)}, {model_dir!r} has "
                    f"{tuple(target[name].shape)}"
                )
            if name in sums:
                sums[name] += value.double()
            elif not torch.equal(value, target[name]):
                raise ValueError(f"{checkpoint!r}: integer tensor {name} differs from {model_dir!r}'s; cannot average")
    with torch.no_grad():
        for name, total in sums.items():
            target[name].copy_((total / len(checkpoints)).to(target[name].dtype))
    return model


def save_averaged_checkpoints(model_dir: str | os.PathLike, checkpoints: list[str | os.PathLike],
                              output_dir: str | os.PathLike) -> str:
    """`average_checkpoints` saved as a complete model folder: the averaged weights plus every other file of
    `model_dir` (tokenizer, generation config, custom pipeline code, model card; not a checkpoint's optimizer,
    scheduler, RNG or trainer state), so it loads like the original."""
    import shutil

    model_dir, output_dir = os.fspath(model_dir), os.fspath(output_dir)
    if os.path.abspath(model_dir) == os.path.abspath(output_dir):
        raise ValueError(f"output_dir must differ from model_dir ({model_dir!r}): the originals would be overwritten")
    model = average_checkpoints(model_dir, checkpoints)
    os.makedirs(output_dir, exist_ok=True)
    for name in os.listdir(model_dir):
        source = os.path.join(model_dir, name)
        if name not in _NOT_COPIED and not name.startswith("rng_state") and os.path.isfile(source):
            shutil.copy2(source, os.path.join(output_dir, name))
    model.save_pretrained(output_dir)
    logger.info("averaged %d checkpoints into %s", len(checkpoints), output_dir)
    return output_dir


__all__ = [
    "checkpoint_to_resume",
    "average_checkpoints",
    "checkpoint_problems",
    "is_complete_checkpoint",
    "latest_complete_checkpoint",
    "list_checkpoints",
    "safetensors_problem",
    "save_averaged_checkpoints",
    "torch_file_problem",
]

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

A run also refuses to resume someone else's checkpoint: `checkpoint_to_resume(args, fingerprint=experiment_dict)`
compares the resolved experiment (minus what may change on resume: `VOLATILE_KEYS`) with the one recorded in the
output folder and in the checkpoint (`run_fingerprint.json`, written by `RunFingerprintCallback` on every save) and
raises `RunMismatchError` naming the differing keys.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import zipfile
from typing import Any

from transformers import TrainerCallback
from transformers.utils import logging

from ..io_utils import atomic_folder, write_json_atomic

logger = logging.get_logger(__name__)

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
# files Trainer writes with torch.save (zip archives since torch 1.6)
_TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt")
# StatefulLMTrainer's carried recurrent state, written before trainer_state.json (hf_seq/training/trainer.py)
CARRIED_STATE = "carried_state.safetensors"
FINGERPRINT = "run_fingerprint.json"
# what `save_averaged_checkpoints` writes into its output folder (provenance, and the mark of a folder it may replace)
AVERAGE_RECORD = "averaged_checkpoints.json"


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

    # 4. hf-seq's own files: the carried recurrent state of a stateful run, the run fingerprint
    if CARRIED_STATE in files and (problem := safetensors_problem(os.path.join(checkpoint, CARRIED_STATE))):
        problems.append(problem)
    if FINGERPRINT in files:
        try:
            read_fingerprint(checkpoint)
        except ValueError as e:
            problems.append(str(e))
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


# ---------------------------------------------------------------------------------------------------- run fingerprint
# Fields that may change when a run is resumed (matched by name at any depth of the fingerprint): where it writes,
# how often it logs / evaluates / saves, how it reports, how many loader workers, the wall-clock budget, the device.
VOLATILE_KEYS = frozenset({
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "logging_dir", "logging_steps",
    "logging_strategy", "logging_first_step", "logging_nan_inf_filter", "log_level", "log_level_replica",
    "eval_steps", "eval_strategy", "eval_delay", "eval_on_start", "save_steps", "save_strategy", "save_total_limit",
    "save_on_each_node", "dataloader_num_workers", "dataloader_prefetch_factor", "dataloader_persistent_workers",
    "dataloader_pin_memory", "report_to", "run_name", "project", "trackio_space_id", "disable_tqdm", "push_to_hub",
    "hub_model_id", "hub_token", "hub_private_repo", "hub_strategy", "hub_always_push", "hub_revision",
    "max_train_minutes", "results_file", "use_cpu",
})  # fmt: skip


class RunMismatchError(ValueError):
    """The output folder (or the checkpoint to resume) belongs to a run with another configuration."""


def strip_volatile(config: dict, volatile=VOLATILE_KEYS) -> dict:
    """`config` without the keys that may change on resume (`VOLATILE_KEYS`, at any depth)."""
    if isinstance(config, dict):
        return {k: strip_volatile(v, volatile) for k, v in config.items() if k not in volatile}
    if isinstance(config, (list, tuple)):
        return [strip_volatile(v, volatile) for v in config]
    return config


def _as_fingerprint(fingerprint: dict) -> dict:
    if not isinstance(fingerprint, dict):
        raise TypeError(f"a run fingerprint is a dict (the resolved experiment), got {type(fingerprint).__name__}")
    try:  # a JSON round trip: tuples become lists, as they come back from the file
        return json.loads(json.dumps(strip_volatile(fingerprint), sort_keys=True, allow_nan=True))
    except (TypeError, ValueError) as e:
        raise TypeError(f"a run fingerprint must be JSON-serialisable: {e}") from e


def write_fingerprint(folder: str | os.PathLike, fingerprint: dict) -> str:
    """Write `fingerprint` (minus `VOLATILE_KEYS`) to `<folder>/run_fingerprint.json` atomically; `folder` is a run's
    output folder or one of its checkpoints (created if missing). Returns the file's path."""
    path = os.path.join(os.fspath(folder), FINGERPRINT)
    write_json_atomic(path, _as_fingerprint(fingerprint), indent=1, sort_keys=True)
    return path


def read_fingerprint(folder: str | os.PathLike) -> dict | None:
    """The fingerprint stored in `folder` (None when there is none); ValueError naming the file if it is corrupt."""
    path = os.path.join(os.fspath(folder), FINGERPRINT)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: truncated or corrupted run fingerprint ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a run fingerprint is a JSON object, got {type(data).__name__}")
    return data


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d:
        out = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


_ABSENT = object()


def fingerprint_differences(stored: dict, current: dict) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (stored value, current value)} for every key whose value differs (a missing key is `_ABSENT`)."""
    a, b = _flatten(_as_fingerprint(stored)), _flatten(_as_fingerprint(current))

    def same(x, y):  # through JSON text, so that NaN equals NaN
        return x is y or (x is not _ABSENT and y is not _ABSENT and json.dumps(x) == json.dumps(y))

    return {k: (a.get(k, _ABSENT), b.get(k, _ABSENT)) for k in sorted(a.keys() | b.keys())
            if not same(a.get(k, _ABSENT), b.get(k, _ABSENT))}


def _stored_fingerprint(path: str) -> tuple[dict | None, str | None]:
    """(fingerprint, file) recorded for `path`: its own file; for a checkpoint without one (killed between its
    trainer_state.json and the fingerprint), its run folder's; for a run folder without one, its newest checkpoint's."""
    own = read_fingerprint(path)
    if own is not None:
        return own, os.path.join(path, FINGERPRINT)
    if _CHECKPOINT_RE.match(os.path.basename(os.path.normpath(path))):
        parent = os.path.dirname(os.path.normpath(path))
        found = read_fingerprint(parent)
        return (found, os.path.join(parent, FINGERPRINT)) if found is not None else (None, None)
    for checkpoint in list_checkpoints(path):
        found = read_fingerprint(checkpoint)
        if found is not None:
            return found, os.path.join(checkpoint, FINGERPRINT)
    return None, None


def _show(value) -> str:
    return "<absent>" if value is _ABSENT else json.dumps(value)[:80]


def check_fingerprint(output_dir: str | os.PathLike, fingerprint: dict) -> None:
    """Refuse to continue in `output_dir` (a run folder or a checkpoint) when the fingerprint recorded there differs
    from `fingerprint`: raises `RunMismatchError` naming every differing key with both values. Nothing recorded
    (a new folder, or a run from before fingerprints) passes."""
    output_dir = os.fspath(output_dir)
    if not os.path.isdir(output_dir):
        return
    stored, where = _stored_fingerprint(output_dir)
    if stored is None:
        return
    diff = fingerprint_differences(stored, fingerprint)
    if not diff:
        return
    shown = "; ".join(f"{k}: {_show(old)} there, {_show(new)} now" for k, (old, new) in list(diff.items())[:12])
    more = f" (and {len(diff) - 12} more)" if len(diff) > 12 else ""
    raise RunMismatchError(
        f"{output_dir} holds a run with another configuration ({where}); {len(diff)} setting(s) differ: {shown}{more}. "
        "Resuming it would continue that run's weights under this configuration. Start afresh in this folder with "
        "--overwrite_output_dir (its checkpoints are deleted), or give this run a new output folder "
        "(training.output_dir / --output_dir)."
    )


class RunFingerprintCallback(TrainerCallback):
    """Write the run fingerprint into the output folder when training begins and into every checkpoint folder when
    it is saved (Trainer calls `on_save` right after the checkpoint's trainer_state.json)."""

    def __init__(self, fingerprint: dict):
        self.fingerprint = _as_fingerprint(fingerprint)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_fingerprint(args.output_dir, self.fingerprint)

    def on_save(self, args, state, control, **kwargs):
        checkpoint = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if state.is_world_process_zero and os.path.isdir(checkpoint):
            write_fingerprint(checkpoint, self.fingerprint)


def clear_checkpoints(output_dir: str | os.PathLike) -> list[str]:
    """Delete `output_dir`'s `checkpoint-<step>` folders and run fingerprint (what `--overwrite_output_dir` means
    for a run); returns what was removed."""
    removed = list_checkpoints(output_dir)
    for checkpoint in removed:
        shutil.rmtree(checkpoint)
    fingerprint = os.path.join(os.fspath(output_dir), FINGERPRINT)
    if os.path.isfile(fingerprint):
        os.remove(fingerprint)
        removed.append(fingerprint)
    if removed:
        logger.warning("overwrite_output_dir: removed %s", ", ".join(removed))
    return removed


def checkpoint_to_resume(args, fingerprint: dict | None = None, overwrite: bool | None = None) -> str | None:
    """Where a training script resumes: `args.resume_from_checkpoint` when given (a checkpoint folder, possibly
    another run's), else the newest complete checkpoint in `args.output_dir` (a crashed run picks up where it
    stopped), else None. `args` is a `TrainingArguments`.

    `fingerprint` (the resolved experiment as a JSON-serialisable dict): the output folder and the checkpoint must
    have been written by a run with the same fingerprint (`check_fingerprint`, `RunMismatchError` otherwise); it is
    then recorded in the output folder at once, so a second run started there meanwhile is refused too (pass a
    `RunFingerprintCallback` to the Trainer to record it in every checkpoint). `overwrite` (default:
    `args.overwrite_output_dir` when it exists) starts afresh: the folder's checkpoints and fingerprint are deleted.
    """
    if overwrite is None:
        overwrite = bool(getattr(args, "overwrite_output_dir", False))
    output_dir = args.output_dir
    if args.resume_from_checkpoint:
        found = args.resume_from_checkpoint
        if not os.path.isdir(found):
            raise FileNotFoundError(f"resume_from_checkpoint {found!r} is not a folder")
    elif overwrite:
        if os.path.isdir(output_dir):
            clear_checkpoints(output_dir)
        found = None
    else:
        found = latest_complete_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    if fingerprint is not None:
        if not overwrite:
            check_fingerprint(output_dir, fingerprint)
        if found:
            check_fingerprint(found, fingerprint)
        if getattr(args, "process_index", 0) == 0:
            write_fingerprint(output_dir, fingerprint)
    if found:
        logger.warning("resuming from %s", found)
    return found


# ------------------------------------------------------------------------------------------------ checkpoint averaging
# not copied from the template folder: the weights (written anew) and a Trainer checkpoint's training state
_NOT_COPIED = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "config.json",
               "optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin",
               CARRIED_STATE, FINGERPRINT, AVERAGE_RECORD)


def _load_config(folder: str):
    """`AutoConfig.from_pretrained(folder)` with a config that fails its own validation (`@strict` raises
    `StrictDataclassError`, neither ValueError nor TypeError) reported as a ValueError naming the folder."""
    from huggingface_hub.errors import StrictDataclassError
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(folder)
    except StrictDataclassError as e:
        raise ValueError(f"{os.path.join(folder, 'config.json')}: invalid config: {e}") from e


def newest_checkpoints(run_folder: str | os.PathLike, last: int) -> list[str]:
    """The `last` newest `checkpoint-<step>` folders of `run_folder` whose weights are whole, oldest first (what
    `hf-seq average RUN --last N` averages). ValueError unless `last` is an integer >= 1 and that many exist."""
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise ValueError(f"last must be an integer >= 1 (the number of newest checkpoints to average), got {last!r}")
    complete = [c for c in list_checkpoints(run_folder)
                if os.path.isfile(os.path.join(c, "model.safetensors"))
                and not safetensors_problem(os.path.join(c, "model.safetensors"))]
    if len(complete) < last:
        raise ValueError(f"last={last}: {os.fspath(run_folder)!r} has {len(complete)} checkpoint folders with "
                         "complete weights")
    return complete[:last][::-1]


def average_checkpoints(model_dir: str | os.PathLike, checkpoints: list[str | os.PathLike]):
    """The model of `model_dir` with every parameter and buffer replaced by its mean over `checkpoints`.

    Vaswani et al. (2017, §6.1) evaluate the base Transformer with "a single model obtained by averaging the last 5
    checkpoints". `model_dir` is a finished model folder (its config, generation config and class are kept); the
    checkpoints are Trainer `checkpoint-<step>` folders (or model folders) of the same architecture. Each is loaded
    with the model's own class, so tied weights are handled as in `from_pretrained`. Floating-point tensors are
    averaged in float64; integer buffers must be equal in all checkpoints.
    """
    import torch

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
    config = _load_config(os.fspath(model_dir))
    for checkpoint in checkpoints:
        other = _load_config(checkpoint)
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


def _same_or_inside(a: str, b: str) -> bool:
    """Whether folder `a` is `b` or contains it."""
    a, b = os.path.realpath(a), os.path.realpath(b)
    return a == b or os.path.commonpath([a, b]) == a


def _check_average_output(model_dir: str, checkpoints: list[str], output_dir: str) -> None:
    """Refuse an output folder that would destroy an input, or a non-empty folder that is not a previous average."""
    for role, folder in [("model_dir", model_dir)] + [("checkpoint", c) for c in checkpoints]:
        if _same_or_inside(output_dir, folder):
            how = "is" if os.path.realpath(output_dir) == os.path.realpath(folder) else "holds"
            raise ValueError(f"output_dir {output_dir!r} {how} the {role} {folder!r}, one of the averaged inputs: it "
                             "would be overwritten. Choose another folder.")
    if os.path.isfile(output_dir):
        raise ValueError(f"output_dir {output_dir!r} is a file, not a folder")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not os.path.isfile(
            os.path.join(output_dir, AVERAGE_RECORD)):
        raise ValueError(
            f"output_dir {output_dir!r} is not empty and was not written by save_averaged_checkpoints (no "
            f"{AVERAGE_RECORD}): refusing to replace another model's folder. Choose an empty or new folder."
        )


def save_averaged_checkpoints(model_dir: str | os.PathLike, checkpoints: list[str | os.PathLike],
                              output_dir: str | os.PathLike) -> str:
    """`average_checkpoints` saved as a complete model folder: the averaged weights plus every other file of
    `model_dir` (tokenizer, generation config, custom pipeline code, model card; not a checkpoint's optimizer,
    scheduler, RNG or trainer state), so it loads like the original, and `averaged_checkpoints.json` naming the inputs.

    Refuses (ValueError) an `output_dir` that is or contains `model_dir` or one of the checkpoints, a checkpoint
    named twice, and a non-empty folder that is not a previous average output. The folder is written beside
    `output_dir` and renamed into place at the end: a crash never leaves half a model there."""
    model_dir, output_dir = os.fspath(model_dir), os.fspath(output_dir)
    checkpoints = [os.fspath(c) for c in checkpoints]
    if os.path.realpath(model_dir) == os.path.realpath(output_dir):
        raise ValueError(f"output_dir must differ from model_dir ({model_dir!r}): the originals would be overwritten")
    seen = set()
    for checkpoint in checkpoints:
        if os.path.realpath(checkpoint) in seen:
            raise ValueError(f"checkpoint {checkpoint!r} is named twice: each checkpoint is averaged once")
        seen.add(os.path.realpath(checkpoint))
    _check_average_output(model_dir, checkpoints, output_dir)
    model = average_checkpoints(model_dir, checkpoints)
    with atomic_folder(output_dir) as tmp:
        for name in os.listdir(model_dir):
            source = os.path.join(model_dir, name)
            if name not in _NOT_COPIED and not name.startswith("rng_state") and os.path.isfile(source):
                shutil.copy2(source, os.path.join(tmp, name))
        model.save_pretrained(tmp)
        record = {"model_dir": os.path.abspath(model_dir), "checkpoints": [os.path.abspath(c) for c in checkpoints]}
        write_json_atomic(os.path.join(tmp, AVERAGE_RECORD), record)
    logger.info("averaged %d checkpoints into %s", len(checkpoints), output_dir)
    return output_dir


__all__ = [
    "AVERAGE_RECORD",
    "CARRIED_STATE",
    "FINGERPRINT",
    "RunFingerprintCallback",
    "RunMismatchError",
    "VOLATILE_KEYS",
    "check_fingerprint",
    "checkpoint_to_resume",
    "clear_checkpoints",
    "fingerprint_differences",
    "newest_checkpoints",
    "read_fingerprint",
    "strip_volatile",
    "write_fingerprint",
    "average_checkpoints",
    "checkpoint_problems",
    "is_complete_checkpoint",
    "latest_complete_checkpoint",
    "list_checkpoints",
    "safetensors_problem",
    "save_averaged_checkpoints",
    "torch_file_problem",
]

"""The experiment layer: one schema, one parser, one override syntax, one `--smoke`, for every task.

An experiment is a small YAML file (or the name of one shipped in `hf_seq/configs/`) with the sections

    task:      language-modeling | text-classification | token-classification | translation | word2vec
    model:     `architecture` + any field of that architecture's config
    data:      the task's `DataArguments`
    training:  `TrainingArguments` (`Seq2SeqTrainingArguments` for translation, `Word2VecTrainingArguments` for
               word2vec)
    generate:  the task's `GenerateArguments` (tasks that generate)

`load_experiment(name_or_path, overrides=["training.learning_rate=0.01"], smoke=False)` reads it, applies the
overrides (`section.key=value`, the value read as YAML), shrinks it for `--smoke`, resolves data paths and validates
EVERYTHING (keys, types, numeric ranges, the model config, `TrainingArguments`, generation settings) before any data
is read: a mistake in the `generate` section cannot cost a finished training run. Every error names the file, the
section, the key and what was allowed.

The task's runner (a module of `hf_seq.training`, listed in `TASKS`) declares its sections through a `TaskSpec`.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import importlib
import json
import math
import os
import types
import typing
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub.errors import StrictDataclassError
from transformers import HfArgumentParser
from transformers.utils import logging

logger = logging.get_logger(__name__)

# task -> runner module (a static table: no discovery)
TASKS = {
    "language-modeling": "hf_seq.training.lm",
    "text-classification": "hf_seq.training.classification",
    "token-classification": "hf_seq.training.tagging",
    "translation": "hf_seq.training.translation",
    "word2vec": "hf_seq.training.word2vec",
}
SECTIONS = ("task", "model", "data", "training", "generate")
DATA_ENV = "HF_SEQ_DATA"  # where `$HF_SEQ_DATA` in a data path points (default: a `shared/data` folder nearby)
SMOKE_ROOT = os.path.join("runs", "smoke")  # --smoke writes here, never to the experiment's own output_dir

# Fields that may change when a run is resumed; everything else of the resolved experiment is the run's fingerprint.
VOLATILE = {
    "training": {"output_dir", "logging_steps", "logging_strategy", "logging_first_step",
                 "logging_dir", "save_steps", "save_strategy", "save_total_limit", "eval_steps", "report_to",
                 "dataloader_num_workers", "disable_tqdm", "push_to_hub", "hub_model_id", "hub_token",
                 "hub_private_repo", "hub_strategy", "run_name", "resume_from_checkpoint", "use_cpu"},
    "data": {"max_train_minutes", "results_file", "eval_only", "tune_decoding", "test_num_beams",
             "test_length_penalty", "heatmap_sentence", "max_test_samples"},  # test-time settings
    "generate": None,  # sampling a text after training does not change the trained weights
}
# Keys added after runs were checkpointed whose unset value (None) keeps the behaviour from before them (translation's
# data.split_seed: the split follows training.seed): left out of the fingerprint while unset, so those runs resume.
UNSET_AS_BEFORE = {"data": {"split_seed"}}


class ConfigError(ValueError):
    """A malformed experiment: unknown section or key, wrong type, value out of range, missing file."""


# --------------------------------------------------------------------------------------------------------------------
# 1. finding and reading experiment files
# --------------------------------------------------------------------------------------------------------------------
def configs_dir() -> Path:
    """The experiment files shipped inside the package (`hf-seq configs` lists them)."""
    return Path(str(resources.files("hf_seq").joinpath("configs")))


def list_configs() -> list[tuple[str, str]]:
    """(name, first comment line) of every shipped experiment file, sorted by name."""
    out = []
    for path in sorted(configs_dir().glob("*.yaml")):
        first = next((line.lstrip("# ").rstrip() for line in path.read_text(encoding="utf-8").splitlines()
                      if line.startswith("#")), "")
        out.append((path.stem, first))
    return out


def find_experiment(name_or_path: str | os.PathLike) -> Path:
    """A file path as given, or the name of a shipped experiment (`lstm_timemachine`, with or without `.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = configs_dir() / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if path.parent == Path(".") or str(path.parent) == "configs":
        if shipped.is_file():
            return shipped
    names = ", ".join(n for n, _ in list_configs())
    raise FileNotFoundError(
        f"experiment {str(name_or_path)!r} is neither a file nor a shipped experiment name; shipped: {names}"
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last one silently)."""


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"duplicate key {key!r} (lines {seen[key] + 1} and {key_node.start_mark.line + 1})")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"experiment file {str(path)!r} does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            doc = yaml.load(f, Loader=_UniqueKeyLoader) or {}
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(doc).__name__}")
    return doc


def apply_overrides(doc: dict, overrides: Sequence[str], where: str = "the command line") -> dict:
    """`section.key=value` (value parsed as YAML: `3`, `0.5`, `true`, `[a, b]`) or `task=NAME`."""
    doc = copy.deepcopy(doc)
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"{where}: override {item!r} must look like SECTION.KEY=VALUE")
        try:
            parsed = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"{where}: override {item!r}: the value is not valid YAML: {e}") from e
        if key == "task":
            doc["task"] = parsed
            continue
        section, dot, name = key.partition(".")
        if not dot or not name or section not in SECTIONS or section == "task":
            raise ConfigError(f"{where}: override {item!r} must be SECTION.KEY=VALUE with SECTION one of "
                              f"{', '.join(s for s in SECTIONS if s != 'task')} (or task=NAME)")
        if doc.get(section) is None:
            doc[section] = {}
        if not isinstance(doc[section], dict):
            raise ConfigError(f"{where}: section {section!r} is not a mapping")
        doc[section][name] = parsed
    return doc


# --------------------------------------------------------------------------------------------------------------------
# 2. checking sections against dataclasses
# --------------------------------------------------------------------------------------------------------------------
def check_keys(section: str, given: dict, allowed, path: str = "") -> None:
    if not isinstance(given, dict):
        raise ConfigError(f"{path}: section '{section}' must be a mapping, got {type(given).__name__}")
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {unknown} in section '{section}'. Allowed keys: {', '.join(sorted(allowed))}"
        )


_SIMPLE = (bool, int, float, str, type(None))


def check_types(section: str, given: dict, cls: type, path: str = "") -> None:
    """Refuse a value whose type cannot be the field's (`learning_rate: fast`), naming section, key, value and type.

    Fields typed with plain bool/int/float/str (optionally `| None` or an Enum) and lists of those are checked; an
    int is accepted for a float field."""
    hints = typing.get_type_hints(cls)
    for key, value in given.items():
        hint = hints.get(key)
        if hint is None:
            continue
        args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        if any(typing.get_origin(a) is list for a in args):
            item_types = [typing.get_args(a)[0] for a in args if typing.get_origin(a) is list]
            if isinstance(value, list) and all(t in _SIMPLE for t in item_types):
                bad = [v for v in value if not isinstance(v, tuple(item_types))]
                if bad:
                    raise ConfigError(f"{path}: section '{section}': {key} holds {bad[0]!r}, expected "
                                      f"{' | '.join(t.__name__ for t in item_types)} items")
                continue
            if value is None and type(None) in args:
                continue
            if not isinstance(value, list) and any(isinstance(value, t) for t in item_types):
                continue  # a single value where a list is expected: the dataclass parser wraps it
        allowed = tuple(str if isinstance(a, type) and issubclass(a, enum.Enum) else a for a in args)
        if not all(a in _SIMPLE for a in allowed):
            continue
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        ok = ok or (float in allowed and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            names = " | ".join("None" if a is type(None) else a.__name__ for a in allowed)
            raise ConfigError(f"{path}: section '{section}': {key}={value!r} is a {type(value).__name__}, expected {names}")


def parse_section(section: str, values: dict, cls: type, path: str):
    """A section's dict -> an instance of `cls` (keys and types checked first, then `HfArgumentParser`)."""
    values = dict(values or {})
    check_keys(section, values, [f.name for f in dataclasses.fields(cls) if f.init], path)
    check_types(section, values, cls, path)
    try:
        (parsed,) = HfArgumentParser(cls).parse_dict(values, allow_extra_keys=False)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: section '{section}': {e}") from e
    return parsed


# Numeric ranges: field -> (lowest allowed, whether the lowest itself is allowed). Applied to every section whose
# dataclass has the field; `None` values (unset) pass. A dataclass may add its own as a class attribute `RANGES`.
RANGES = {
    "training": {
        "num_train_epochs": (0, False), "learning_rate": (0, True), "max_grad_norm": (0, True),
        "per_device_train_batch_size": (1, True), "per_device_eval_batch_size": (1, True),
        "gradient_accumulation_steps": (1, True), "warmup_steps": (0, True), "weight_decay": (0, True),
        "label_smoothing_factor": (0, True), "logging_steps": (0, False), "save_total_limit": (0, True),
        "epochs": (1, True), "alpha": (0, False), "min_alpha": (0, True), "workers": (1, True),
        "batch_words": (1, True), "generation_num_beams": (1, True), "generation_max_length": (1, True),
    },
    "data": {
        "block_size": (1, True), "eval_batch_size": (1, True), "max_train_tokens": (1, True),
        "max_eval_tokens": (2, True), "max_train_minutes": (0, False), "min_frequency": (1, True),
        "min_count": (1, True), "vocab_size": (1, True), "bpe_vocab_size": (1, True),
        "max_source_length": (1, True), "max_target_length": (2, True), "max_length": (1, True),
        "max_train_samples": (1, True), "max_eval_samples": (1, True), "max_test_samples": (1, True),
        "test_num_beams": (1, True), "eval_stride": (1, True), "max_lines": (1, True),
        "max_vocab_size": (1, True), "tatoeba_heldout": (1, True),
    },
    "generate": {"max_new_tokens": (1, True), "temperature": (0, False), "top_k": (0, True), "num_beams": (1, True),
                 "top_p": (0, False)},
}


def check_ranges(section: str, obj, path: str) -> None:
    rules = {**RANGES.get(section, {}), **getattr(obj, "RANGES", {})}
    for name, (low, inclusive) in rules.items():
        if not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if section == "training" and name == "max_steps":
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}: section '{section}': {name}={value} must be a finite number")
        if value < low or (value == low and not inclusive):
            bound = f">= {low}" if inclusive else f"> {low}"
            raise ConfigError(f"{path}: section '{section}': {name}={value} must be {bound}")
    if section == "training" and hasattr(obj, "max_steps") and obj.max_steps is not None:
        if obj.max_steps == 0 or obj.max_steps < -1:
            raise ConfigError(f"{path}: section 'training': max_steps={obj.max_steps} must be a positive number of "
                              "steps (or -1, unset: train num_train_epochs)")
    if section == "training" and getattr(obj, "warmup_ratio", None) not in (None, 0) and not 0 <= obj.warmup_ratio < 1:
        raise ConfigError(f"{path}: section 'training': warmup_ratio={obj.warmup_ratio} must be in [0, 1)")


# --------------------------------------------------------------------------------------------------------------------
# 3. data paths
# --------------------------------------------------------------------------------------------------------------------
def data_root() -> str | None:
    """`$HF_SEQ_DATA`, or the first `shared/data` folder found next to the current directory or the source checkout."""
    if os.environ.get(DATA_ENV):
        return os.environ[DATA_ENV]
    here = Path(__file__).resolve().parents[2]  # the checkout root when installed in editable mode
    for candidate in (Path.cwd() / ".." / "shared" / "data", Path.cwd() / "shared" / "data",
                      here.parent / "shared" / "data"):
        if candidate.is_dir():
            return str(candidate.resolve())
    return None


def resolve_path(value: str, base_dir: Path | None) -> str:
    """`$HF_SEQ_DATA/x` (or `${HF_SEQ_DATA}/x`) -> the data root's x; a relative path -> against the experiment
    file's folder when it exists there, else against the current directory (absolute either way)."""
    if not isinstance(value, str) or value == "":
        return value
    if "${" + DATA_ENV + "}" in value or value.startswith("$" + DATA_ENV):
        root = data_root()
        if root is None:
            raise ConfigError(f"{value!r} needs the data folder: set {DATA_ENV}=/path/to/data (a folder holding "
                              "ptb/, wikitext-2/, multi30k/ ...) or give the file's path directly")
        value = value.replace("${" + DATA_ENV + "}", root).replace("$" + DATA_ENV, root)
    value = os.path.expanduser(value)
    if os.path.isabs(value):
        return value
    if base_dir is not None and (base_dir / value).exists():
        return str((base_dir / value).resolve())
    return os.path.abspath(value)


# --------------------------------------------------------------------------------------------------------------------
# 4. the experiment
# --------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TaskSpec:
    """What a runner module declares about its sections (the runner module holds `SPEC = TaskSpec(...)`)."""

    data: type
    training: type
    generate: type | None = None
    model_keys: Callable[[dict], set[str]] | None = None  # allowed `model:` keys given the section (architecture)
    smoke: dict = dataclasses.field(default_factory=dict)  # section -> values for --smoke
    smoke_model: Callable[[dict], dict] | None = None  # the `model:` section shrunk for --smoke
    path_fields: tuple[str, ...] = ()  # data fields holding file/folder paths (resolved by `resolve_path`)
    model_path_fields: tuple[str, ...] = ()  # model fields holding file paths (e.g. word_vectors)
    validate: Callable[[Experiment], None] | None = None  # cross-field checks, run before any data is read


@dataclasses.dataclass
class Experiment:
    """A resolved, validated experiment: what a runner's `run(experiment)` receives."""

    name: str
    path: str | None
    task: str
    model: dict
    data: Any
    training: Any
    generate: Any = None
    smoke: bool = False
    overwrite: bool = False  # start afresh even if output_dir holds checkpoints (a smoke run always does)

    @property
    def output_dir(self) -> str:
        return self.training.output_dir

    def to_dict(self) -> dict:
        """The resolved experiment as plain data (what the run folder records as `experiment.json`)."""
        def plain(obj):
            if obj is None:
                return None
            if hasattr(obj, "to_dict") and not dataclasses.is_dataclass(obj):
                return obj.to_dict()
            if hasattr(obj, "to_sanitized_dict"):
                return {k: v for k, v in obj.to_dict().items() if not k.startswith("_")}
            return dataclasses.asdict(obj)

        return json.loads(json.dumps({
            "name": self.name, "task": self.task, "model": self.model, "data": plain(self.data),
            "training": plain(self.training), "generate": plain(self.generate),
        }, default=str))

    def fingerprint(self) -> dict:
        """The resolved experiment minus what may change on resume (VOLATILE): a run refuses to resume a checkpoint
        whose fingerprint differs."""
        d = self.to_dict()
        d.pop("name")
        for section, keys in VOLATILE.items():
            if keys is None:
                d.pop(section, None)
            elif isinstance(d.get(section), dict):
                for k in keys:
                    d[section].pop(k, None)
        for section, keys in UNSET_AS_BEFORE.items():
            for k in keys:
                if isinstance(d.get(section), dict) and k in d[section] and d[section][k] is None:
                    d[section].pop(k)
        return d


def runner_module(task: str):
    return importlib.import_module(TASKS[task])


def _task_of(doc: dict, path: str) -> str:
    task = doc.get("task")
    if task is None:
        raise ConfigError(f"{path}: no `task:` key; add one of: {', '.join(TASKS)}")
    if task not in TASKS:
        raise ConfigError(f"{path}: task {task!r} is not one of: {', '.join(TASKS)}")
    return task


def load_experiment(
    name_or_path: str | os.PathLike | dict,
    overrides: Sequence[str] = (),
    smoke: bool = False,
    output_dir: str | None = None,
    overwrite: bool = False,
) -> Experiment:
    """Read, override, shrink (`smoke`), resolve and validate an experiment; nothing is trained or loaded."""
    if isinstance(name_or_path, dict):
        path, doc, name = "<dict>", copy.deepcopy(name_or_path), "experiment"
        base_dir = None
    else:
        file = find_experiment(name_or_path)
        path, doc, name = str(file), read_yaml(file), file.stem
        base_dir = file.resolve().parent
    doc = apply_overrides(doc, overrides, where=path)
    check_keys("top level", doc, SECTIONS, path)
    task = _task_of(doc, path)
    spec: TaskSpec = runner_module(task).SPEC
    if doc.get("generate") and spec.generate is None:
        raise ConfigError(f"{path}: task {task!r} generates nothing: remove the `generate` section")
    sections = {s: dict(doc.get(s) or {}) for s in ("model", "data", "training", "generate")}
    for s in sections:
        if doc.get(s) is not None and not isinstance(doc[s], dict):
            raise ConfigError(f"{path}: section '{s}' must be a mapping, got {type(doc[s]).__name__}")
    if smoke:
        for section, values in spec.smoke.items():
            sections[section].update(copy.deepcopy(values))
        if spec.smoke_model is not None:
            sections["model"] = spec.smoke_model(sections["model"])
        sections["data"] = {k: v for k, v in sections["data"].items() if k != "results_file"}
        sections["training"]["output_dir"] = output_dir or os.path.join(SMOKE_ROOT, name)
    elif output_dir:
        sections["training"]["output_dir"] = output_dir
    sections["training"].setdefault("output_dir", os.path.join("runs", name))
    if "report_to" in {f.name for f in dataclasses.fields(spec.training)}:
        sections["training"].setdefault("report_to", "none")

    # model: allowed keys depend on the architecture
    if spec.model_keys is not None:
        check_keys("model", sections["model"], sorted(spec.model_keys(sections["model"])), path)
    for key in spec.model_path_fields:
        if sections["model"].get(key):
            sections["model"][key] = resolve_path(sections["model"][key], base_dir)
    # data paths
    for key in spec.path_fields:
        value = sections["data"].get(key)
        if isinstance(value, list):
            sections["data"][key] = [resolve_path(v, base_dir) for v in value]
        elif value is not None:
            sections["data"][key] = resolve_path(value, base_dir)

    data = parse_section("data", sections["data"], spec.data, path)
    check_ranges("data", data, path)
    training = parse_section("training", sections["training"], spec.training, path)
    check_ranges("training", training, path)
    generate = None
    if spec.generate is not None:
        generate = parse_section("generate", sections["generate"], spec.generate, path)
        check_ranges("generate", generate, path)
        if hasattr(generate, "prompt") and not str(generate.prompt).strip():
            raise ConfigError(f"{path}: section 'generate': prompt must not be empty")
    exp = Experiment(name=name, path=None if path == "<dict>" else path, task=task, model=sections["model"],
                     data=data, training=training, generate=generate, smoke=smoke,
                     overwrite=overwrite or smoke)
    if spec.validate is not None:
        try:
            spec.validate(exp)
        except ConfigError:
            raise
        except (TypeError, ValueError, StrictDataclassError) as e:  # a config class refusing a value: name the file
            raise ConfigError(f"{path}: {e}") from e
    return exp


def resume_checkpoint(exp: Experiment) -> str | None:
    """The checkpoint a run resumes from (None: start afresh).

    Resuming in `output_dir` needs the same fingerprint there (another experiment's folder is refused, naming the
    differing keys). A checkpoint named explicitly with `training.resume_from_checkpoint` outside `output_dir` may
    come from another experiment on purpose (continuing a 1-hour run for 3 hours): only its `model` section must
    match; other differences are logged."""
    from .checkpointing import (
        RunMismatchError,
        check_fingerprint,
        checkpoint_to_resume,
        fingerprint_differences,
        read_fingerprint,
        write_fingerprint,
    )

    args, fingerprint = exp.training, exp.fingerprint()
    explicit = getattr(args, "resume_from_checkpoint", None)
    if explicit and not os.path.abspath(explicit).startswith(os.path.abspath(exp.output_dir) + os.sep):
        if not exp.overwrite:
            check_fingerprint(exp.output_dir, fingerprint)
        stored = read_fingerprint(explicit) or read_fingerprint(os.path.dirname(os.path.normpath(explicit)))
        if stored is not None:
            diff = fingerprint_differences(stored, fingerprint)
            model_diff = sorted(k for k in diff if k.startswith("model."))
            if model_diff:
                raise RunMismatchError(f"resume_from_checkpoint {explicit!r} holds another model: {', '.join(model_diff)} "
                                       "differ")
            if diff:
                logger.warning("continuing %s under another configuration: %s differ", explicit, ", ".join(diff))
        found = checkpoint_to_resume(args, overwrite=exp.overwrite)
        write_fingerprint(exp.output_dir, fingerprint)
        return found
    return checkpoint_to_resume(args, fingerprint=fingerprint, overwrite=exp.overwrite)


def fingerprint_callback(exp: Experiment):
    """The `TrainerCallback` that records the run's fingerprint in every checkpoint."""
    from .checkpointing import RunFingerprintCallback

    return RunFingerprintCallback(exp.fingerprint())


def run_experiment(exp: Experiment) -> dict:
    """Train, evaluate and write the run folder; returns the results (also in `<output_dir>/eval_results.json`)."""
    if exp.smoke and not getattr(exp.data, "eval_only", False) and os.path.isdir(exp.output_dir) and Path(
            exp.output_dir).resolve().is_relative_to(Path(SMOKE_ROOT).resolve()):
        import shutil

        shutil.rmtree(exp.output_dir)  # the smoke scratch folder starts empty
    return runner_module(exp.task).run(exp)


__all__ = [
    "TASKS", "SECTIONS", "ConfigError", "Experiment", "TaskSpec", "apply_overrides", "check_keys", "check_ranges",
    "check_types", "configs_dir", "data_root", "find_experiment", "list_configs", "load_experiment", "parse_section",
    "fingerprint_callback", "read_yaml", "resolve_path", "resume_checkpoint", "run_experiment",
]  # fmt: skip

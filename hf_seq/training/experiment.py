"""Experiment files: small YAML documents with named sections, each parsed into a dataclass with strict keys.

A bad key is refused with its section, its name and the allowed names, before any work starts.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from typing import Any

import yaml
from transformers import HfArgumentParser


class ConfigError(ValueError):
    """A malformed experiment file: unknown section or key, wrong type, missing file."""


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"experiment file {str(path)!r} does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            doc = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(doc).__name__}")
    return doc


def check_keys(section: str, given: dict, allowed: list[str] | set[str], path: str = "") -> None:
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

    Only fields typed with plain bool/int/float/str (optionally `| None` or an Enum) are checked; an int is accepted
    for a float field. Anything richer is left to the dataclass itself."""
    hints = typing.get_type_hints(cls)
    for key, value in given.items():
        hint = hints.get(key)
        if hint is None:
            continue
        args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        allowed = tuple(str if isinstance(a, type) and issubclass(a, enum.Enum) else a for a in args)
        if not all(a in _SIMPLE for a in allowed):
            continue
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        ok = ok or (float in allowed and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            names = " | ".join("None" if a is type(None) else a.__name__ for a in allowed)
            raise ConfigError(f"{path}: section '{section}': {key}={value!r} is a {type(value).__name__}, expected {names}")


def parse_sections(
    path: str | os.PathLike, dataclass_sections: dict[str, type], free_sections: dict[str, list[str] | None] = None
) -> tuple[dict[str, Any], dict[str, dict]]:
    """Parse `path`. `dataclass_sections` maps a section name to a dataclass (TrainingArguments included) parsed with
    `HfArgumentParser` (missing sections take the defaults); `free_sections` maps a section to its allowed keys
    (None: any key, validated later by the caller). Returns ({section: dataclass instance}, {section: dict})."""
    doc = read_yaml(path)
    free_sections = free_sections or {}
    check_keys("top level", doc, list(dataclass_sections) + list(free_sections), str(path))
    parsed = {}
    for name, cls in dataclass_sections.items():
        values = doc.get(name) or {}
        check_keys(name, values, [f.name for f in dataclasses.fields(cls) if f.init], str(path))
        check_types(name, values, cls, str(path))
        try:
            (parsed[name],) = HfArgumentParser(cls).parse_dict(values, allow_extra_keys=False)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path}: section '{name}': {e}") from e
    free = {}
    for name, allowed in free_sections.items():
        values = doc.get(name) or {}
        if allowed is not None:
            check_keys(name, values, allowed, str(path))
        free[name] = dict(values)
    return parsed, free


__all__ = ["ConfigError", "read_yaml", "check_keys", "check_types", "parse_sections"]

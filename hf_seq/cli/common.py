"""What every subcommand shares: the one place the CLI prints (`_emit`), its error type, and finding and loading a
model (a local folder or a Hub id) through `hf_seq.hub.loading.load_checked`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from ..hub import PublishError, RegisteredClass, find_model_dir
from ..hub.loading import load_checked
from ..hub.publishing import entry_for_folder

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
COMMAND_TASKS = {  # command -> tasks it serves, and how to name them in an error
    "generate": ({"text-generation"}, "a language model (…ForCausalLM)"),
    "translate": ({"hf-seq-translation"}, "an encoder-decoder translation model (…ForConditionalGeneration)"),
    "similar": (None, "a word2vec model"),
}


def is_exported_folder(folder: str) -> bool:
    """A folder written by `hf-seq export` (it carries hf_seq.export's marker file)."""
    try:
        from ..export import is_exported_folder as exported
    except ModuleNotFoundError as e:
        if e.name != "hf_seq.export":
            raise
        return False  # a build without the export package
    return os.path.isdir(folder) and exported(folder)


def _emit(*args, file=None) -> None:
    """The command's output (stdout) or its error lines (stderr): the one place the CLI prints."""
    print(*args, file=file or sys.stdout)  # noqa: T201


class CLIError(Exception):
    """A user error: printed as `hf-seq <command>: error: <message>`, exit status 2."""


def add_parser(subparsers, name: str, help_: str, description: str, run) -> argparse.ArgumentParser:
    """A subcommand's parser, its description shown as written, `run(args)` as its function."""
    parser = subparsers.add_parser(name, help=help_, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=run)
    return parser


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="local folder (a run's output_dir works) or Hub model id")
    parser.add_argument("--revision", help="Hub branch, tag or commit to load (pin one for reproducible results)")


def read_lines(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 text file; a missing file or bad bytes are a CLIError naming the file."""
    if not os.path.isfile(path):
        raise CLIError(f"input file {path!r} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except UnicodeDecodeError as e:
        raise CLIError(f"{path}: not UTF-8 text ({e.reason})") from e


def looks_local(name: str) -> bool:
    """A name that can only be a path: starts with `.`, `/` or `~`, has more than one `/`, is no valid Hub id, or
    starts with an existing folder (`runs/typo` when `runs/` exists)."""
    return (name.startswith((".", "/", "~")) or name.count("/") > 1 or not _HUB_ID.match(name)
            or ("/" in name and os.path.isdir(name.split("/")[0])))


def resolve(name: str, revision: str | None = None) -> str:
    """The local folder holding MODEL's config.json: a local folder (a run folder's model/ subfolder too), or the
    snapshot of a Hub id (downloaded, or from the cache offline). A mistyped local path is "model folder X does not
    exist", never a Hub connection error."""
    if os.path.exists(name):
        try:
            return str(find_model_dir(name))
        except PublishError as e:
            raise CLIError(str(e)) from e
    if looks_local(name):
        raise CLIError(f"model folder {name!r} does not exist")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id=name, revision=revision)
    except Exception as e:  # offline, unknown repo, gated, bad revision: one message that names both readings
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CLIError(f"cannot load {name!r} as a local folder or a Hub model id: model folder {name!r} does not "
                       f"exist, and the Hub lookup failed ({reason})") from e
    try:
        return str(find_model_dir(folder))
    except PublishError as e:
        raise CLIError(f"Hub repo {name!r}: {e}") from e


def check_family(entry: RegisteredClass, command: str, name: str) -> None:
    if command not in COMMAND_TASKS:
        return
    tasks, wanted = COMMAND_TASKS[command]
    ok = entry.family == "word2vec" if command == "similar" else entry.task in tasks
    if not ok:
        raise CLIError(
            f"{name!r} is a {entry.family} {entry.model_class.__name__} ({entry.task}); "
            f"`hf-seq {command}` needs {wanted}"
        )


def load(name: str, command: str, revision: str | None = None):
    """(model, tokenizer, registry row) of MODEL, refusing a model of the wrong family for `command`.

    Loads through `load_checked`: safetensors only (a pickle-only folder is refused), whole weight files (a truncated
    one is reported with its path), weights that fit the config and a tokenizer that fits the embedding. Config
    attributes beyond the class's fields are allowed (a tagger's `feature_vocab_size`)."""
    import transformers

    folder = resolve(name, revision)
    try:
        entry = entry_for_folder(folder)
    except PublishError as e:
        raise CLIError(f"{name!r} is not an hf-seq model: {e}") from e
    check_family(entry, command, name)
    try:
        model, tokenizer = load_checked(folder, getattr(transformers, entry.auto_class), with_tokenizer=True,
                                        strict_config=False)
    except (ValueError, FileNotFoundError, json.JSONDecodeError) as e:
        raise CLIError(str(e)) from e
    return model.eval(), tokenizer, entry


__all__ = ["CLIError", "COMMAND_TASKS", "add_model_argument", "add_parser", "check_family", "load", "looks_local",
           "read_lines", "resolve"]

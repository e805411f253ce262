"""`hf-seq`: one command line for every hf-seq model.

    hf-seq train lstm_timemachine [--smoke] [section.key=value]   train from an experiment (name or YAML file)
    hf-seq configs [show NAME]                                   the shipped experiments
    hf-seq evaluate MODEL FILE                                   score a model on a file (its task's metric)
    hf-seq generate MODEL "the time traveller"                   continue a prompt (language models)
    hf-seq translate MODEL "a sentence" | --file F               translate (encoder-decoders, exported folders)
    hf-seq similar MODEL WORD                                    nearest words (word2vec)
    hf-seq average RUN_FOLDER --last 5 --output-dir OUT          average the last checkpoints into one model
    hf-seq publish RUN_FOLDER [REPO_ID]                          complete Hub folder + upload
    hf-seq export FOLDER --format ctranslate2|onnx --output-dir OUT   fast inference folders
    hf-seq import eole CHECKPOINT | vectors FILE --output-dir OUT  models and vectors from other toolkits

MODEL is a local folder (a training run's output_dir works too) or a Hub model id; both load through the
transformers Auto classes after the same checks, so they behave the same.
"""

# One module per subcommand (as accelerate/commands/ and transformers/cli/), each a thin shell over public functions:
# `register(subparsers)` adds its parser with `set_defaults(func=run)`; `run(args)` returns the exit status. A command
# that takes arguments it does not parse itself (train: they go to the run) also sets `takes_extra=True` and gets
# `run(args, extra)`.

from __future__ import annotations

import argparse
import importlib
import sys

from .common import CLIError, _emit

COMMANDS = ["train", "configs", "evaluate", "generate", "translate", "similar", "average", "publish"]  # modules of hf_seq.cli


def _register_export(subparsers) -> None:
    """`hf-seq export`, from hf_seq/export/cli.py (absent in a build without the export package)."""
    try:
        from ..export import cli as export_cli
    except ModuleNotFoundError as e:
        if e.name not in ("hf_seq.export", "hf_seq.export.cli"):
            raise  # the module exists but something it imports is missing: say so
        return
    export_cli.register(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-seq", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    _register_export(subparsers)
    from ..interop import cli as interop_cli  # `import` is a keyword: the command lives with its package

    interop_cli.register(subparsers)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    from ..hub import CheckpointError, ModelCardError, PublishError
    from ..training.experiment import ConfigError

    # ValueError: the library's bad-input errors (they name the value and what was expected)
    return CLIError, ConfigError, PublishError, ModelCardError, CheckpointError, FileNotFoundError, ValueError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    takes_extra = getattr(args, "takes_extra", False)
    if extra and not takes_extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args, extra) if takes_extra else args.func(args)
    except _user_errors() as e:
        _emit(f"hf-seq {args.command}: error: {e}", file=sys.stderr)
        return 2


__all__ = ["COMMANDS", "CLIError", "build_parser", "main"]

"""`hf-seq average RUN_FOLDER --last N --output-dir OUT`: average the weights of checkpoints into one model folder."""

from __future__ import annotations

import os

from .common import CLIError, _emit, add_parser, resolve

DESCRIPTION = """Average the parameters of CHECKPOINT folders (or the run's newest --last N) into a model folder that
keeps FOLDER's config, tokenizer, generation config and pipeline code (Vaswani et al. 2017 evaluate
the average of the last 5 checkpoints)."""


def register(subparsers) -> None:
    p = add_parser(subparsers, "average", "average the weights of several checkpoints into one model folder",
                   DESCRIPTION, run)
    p.add_argument("folder", metavar="RUN_FOLDER", help="a run folder (its model/ is used) or a model folder")
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT")
    p.add_argument("--last", type=int, help="average the run folder's newest N complete checkpoint-* folders")
    p.add_argument("--output-dir", required=True, help="where to write the averaged model folder")


def run(args) -> int:
    from ..training.checkpointing import list_checkpoints, safetensors_problem, save_averaged_checkpoints

    if args.last is not None and args.last < 1:
        raise CLIError(f"--last must be >= 1, got {args.last}")
    complete = [c for c in list_checkpoints(args.folder)
                if os.path.isfile(os.path.join(c, "model.safetensors"))
                and not safetensors_problem(os.path.join(c, "model.safetensors"))]
    try:
        model_dir = resolve(args.folder)
    except CLIError:
        if not complete:
            raise
        model_dir = complete[0]  # a run still training: its newest checkpoint (config + tokenizer) is the template
    if not os.path.isdir(model_dir):
        raise CLIError(f"{args.folder!r} is not a local model folder")
    checkpoints = list(args.checkpoints)
    if args.last:
        if len(complete) < args.last:
            raise CLIError(f"--last {args.last}: {args.folder!r} has {len(complete)} checkpoint folders with "
                           f"complete weights")
        checkpoints += complete[: args.last][::-1]
    if not checkpoints:
        raise CLIError("name the checkpoint folders to average, or --last N for a run folder's newest N")
    try:
        out = save_averaged_checkpoints(model_dir, checkpoints, args.output_dir)
    except ValueError as e:
        raise CLIError(str(e)) from e
    _emit(f"averaged {len(checkpoints)} checkpoints ({', '.join(os.path.basename(c) for c in checkpoints)}) "
          f"into {out}")
    return 0

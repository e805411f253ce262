"""`hf-seq train EXPERIMENT [--smoke] [--output_dir DIR] [section.key=value ...]`: train from an experiment.

EXPERIMENT is a shipped experiment's name (`hf-seq configs` lists them) or a YAML file. The file's `task:` picks the
runner; everything is validated before any data is read. Equivalent: `python -m hf_seq.train EXPERIMENT ...`.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from .common import CLIError, _emit, add_parser

DESCRIPTION = __doc__ + """
examples:
  hf-seq train lstm_timemachine                        the demo: a character-level LSTM on the embedded Time Machine
  hf-seq train lstm_timemachine --smoke                a few steps on a tiny model, written under runs/smoke/
  hf-seq train my_experiment.yaml training.learning_rate=0.01 model.hidden_size=256
  hf-seq train lstm_ptb_small --publish YOUR_NAME/lstm-ptb   train, then upload the complete folder

An interrupted run resumes from its newest complete checkpoint when started again with the same output_dir; a
folder holding another experiment's run is refused (use --overwrite_output_dir or another --output_dir).
Data paths written $HF_SEQ_DATA/... resolve against the HF_SEQ_DATA environment variable (default: a shared/data
folder next to the current directory)."""


def register(subparsers) -> None:
    p = add_parser(subparsers, "train", "train a model from an experiment (name or YAML file)", DESCRIPTION, run)
    p.add_argument("experiment", metavar="EXPERIMENT", help="a shipped experiment's name or a YAML file")
    p.set_defaults(takes_extra=True)  # SECTION.KEY=VALUE overrides, anywhere on the line
    p.add_argument("--smoke", action="store_true", help="tiny model, a few steps, into runs/smoke/NAME")
    p.add_argument("--output_dir", "--output-dir", dest="output_dir", help="where the run folder goes")
    p.add_argument("--overwrite_output_dir", "--overwrite-output-dir", dest="overwrite", action="store_true",
                   help="start afresh even if output_dir holds checkpoints")
    p.add_argument("--check", action="store_true", help="validate the experiment and print it resolved; no training")
    p.add_argument("--publish", metavar="REPO_ID", help="upload the complete folder to this Hub repo afterwards")
    p.add_argument("--dataset", help="training data set for the model card (e.g. ptb, multi30k, timemachine)")


def _show_progress() -> None:
    """INFO lines of hf_seq's loggers on stderr (the library itself never prints)."""
    logger = logging.getLogger("hf_seq")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[hf-seq] %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run(args, extra: list[str]) -> int:
    from ..training.experiment import load_experiment, run_experiment, runner_module

    bad = [o for o in extra if "=" not in o or o.startswith("-")]
    if bad:
        raise CLIError(f"unrecognized argument {bad[0]!r}: overrides look like SECTION.KEY=VALUE "
                       "(e.g. training.learning_rate=0.01)")
    exp = load_experiment(args.experiment, extra, smoke=args.smoke, output_dir=args.output_dir,
                          overwrite=args.overwrite)
    if args.check:
        _emit(json.dumps(exp.to_dict(), indent=2))
        return 0
    _show_progress()
    _emit(f"hf-seq train: {exp.name} ({exp.task}) -> {exp.output_dir}", file=sys.stderr)
    results = run_experiment(exp)
    runner = runner_module(exp.task)
    if hasattr(runner, "summary"):
        _emit(runner.summary(results))
    _emit(f"run folder: {exp.output_dir}")
    repo_id = args.publish
    training = exp.training
    if not repo_id and getattr(training, "push_to_hub", False) and not getattr(runner, "PUBLISHES", False):
        repo_id = getattr(training, "hub_model_id", None) or os.path.basename(os.path.abspath(exp.output_dir))
    if repo_id:
        from .publish import publish_folder

        info = publish_folder(exp.output_dir, repo_id, dataset=args.dataset,
                              private=bool(getattr(training, "hub_private_repo", False)),
                              token=getattr(training, "hub_token", None))
        _emit(f"published {exp.output_dir} to {repo_id} ({getattr(info, 'oid', info)})")
    return 0

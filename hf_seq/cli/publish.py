"""`hf-seq publish RUN_FOLDER [REPO_ID]`: write the complete Hub folder of a run and upload it."""

from __future__ import annotations

import os

from .common import CLIError, _emit, add_parser

DESCRIPTION = """Write the complete Hub folder of a training run (config, safetensors, tokenizer, clean generation
config, remote code, custom pipeline, eval results, pictures, README.md model card) and upload it
with huggingface_hub. Without REPO_ID, --output-dir writes the folder only (a dry run).
The weights are checked first (safetensors only, whole files). --results adds the rows of hf-seq's side-by-side study
(benchmarks/results/study/study.json in the hf-seq repository) to the card."""


def register(subparsers) -> None:
    p = add_parser(subparsers, "publish", "make a run folder Hub-complete and upload it", DESCRIPTION, run)
    p.add_argument("folder", metavar="RUN_FOLDER")
    p.add_argument("repo_id", nargs="?", metavar="REPO_ID")
    p.add_argument("--output-dir", help="where to write the Hub folder (default: a temporary folder)")
    p.add_argument("--dataset", help="training data set for the card (ptb, wikitext-2, multi30k, timemachine, ...)")
    p.add_argument("--results", metavar="STUDY.json", help="the study's results JSON, quoted in the card")
    p.add_argument("--license", default="apache-2.0")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", help="Hub token (default: the logged-in one)")


def publish_folder(folder, repo_id, **kwargs):
    """`hf_seq.hub.publish` for the command line: a missing folder or study file is a CLIError."""
    from ..hub import publish

    if folder is None or not os.path.exists(folder):
        raise CLIError(f"model folder {folder!r} does not exist")
    study = kwargs.get("study_results")
    if study is not None and not os.path.isfile(study):
        raise CLIError(f"--results {study!r} does not exist")
    return publish(folder, repo_id, **{k: v for k, v in kwargs.items() if v is not None})


def run(args) -> int:
    if args.repo_id is None and args.output_dir is None:
        raise CLIError("give a REPO_ID to upload, or --output-dir for a local dry run")
    result = publish_folder(args.folder, args.repo_id, output_dir=args.output_dir, dataset=args.dataset,
                            license=args.license, private=args.private, token=args.token, study_results=args.results)
    if args.repo_id is None:
        _emit(f"Hub folder written to {result}: {', '.join(sorted(os.listdir(result)))}")
    else:
        _emit(f"uploaded to https://huggingface.co/{args.repo_id} (commit {getattr(result, 'oid', '?')})")
    return 0

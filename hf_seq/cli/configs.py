"""`hf-seq configs [show NAME]`: the experiments shipped with hf-seq (package data), to run or to copy."""

from __future__ import annotations

from .common import CLIError, _emit, add_parser


def register(subparsers) -> None:
    p = add_parser(subparsers, "configs", "list the shipped experiments, or print one to copy",
                   "List the experiments shipped inside hf-seq (run one with `hf-seq train NAME`), or print one\n"
                   "(`hf-seq configs show NAME > my.yaml`) to start your own.", run)
    p.add_argument("action", nargs="?", choices=["list", "show", "path"], default="list")
    p.add_argument("name", nargs="?", metavar="NAME")


def run(args) -> int:
    from ..training.experiment import find_experiment, list_configs

    if args.action == "list":
        rows = list_configs()
        width = max(len(n) for n, _ in rows)
        for name, first in rows:
            _emit(f"{name:<{width}}  {first}")
        return 0
    if not args.name:
        raise CLIError(f"`hf-seq configs {args.action}` needs a NAME (see `hf-seq configs`)")
    path = find_experiment(args.name)
    _emit(str(path) if args.action == "path" else path.read_text(encoding="utf-8").rstrip("\n"))
    return 0

"""Shared pieces of the study: paths, the machine/version record, number formatting used by both the JSON-to-Markdown
renderer and the test that checks the Markdown against the JSON."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from dataclasses import asdict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR = os.path.join(os.path.dirname(REPO), "shared", "data")
RESULTS_DIR = os.path.join(REPO, "benchmarks", "results", "study")
RUNS_DIR = os.path.join(REPO, "runs", "study")


def git_commit() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def machine_info() -> dict:
    import datasets
    import sacrebleu
    import tokenizers
    import torch
    import transformers

    import hf_seq

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": load,
        "python": sys.version.split()[0],
        "versions": {
            "hf_seq": getattr(hf_seq, "__version__", "unknown"),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "datasets": datasets.__version__,
            "sacrebleu": sacrebleu.__version__,
        },
        "git": git_commit(),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fmt(value, digits: int = 2) -> str:
    """The one formatting of numbers in REPORT.md; the test formats the JSON values with it and finds them in the MD."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e7):
            return f"{value:.{digits}e}"
        return f"{value:,.{digits}f}"
    return str(value)


def write_json(path: str, obj) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
    os.replace(tmp, path)  # never a half-written results file, even when a run is killed
    return path


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> str:
    """Lay out, write (110 dpi, the folder created if needed) and close a study figure; returns `path`."""
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def settings_from_overrides(settings_class, quick_values: dict, overrides: dict, quick: bool, part: str):
    """`settings_class` (a dataclass) with its quick values when `quick`, then `overrides`; an unknown key is
    refused naming the study part (`lm`, `long_range`) and the known keys."""
    s = settings_class(**(quick_values if quick else {}))
    for k, v in overrides.items():
        if not hasattr(s, k):
            raise ValueError(f"unknown {part} setting {k!r}; known: {sorted(asdict(s))}")
        setattr(s, k, v)
    return s

#!/usr/bin/env python
"""Training time to a given validation BLEU, for translation runs trained side by side.

    python benchmarks/translation_time_to_bleu.py \
        "GRU + Luong=runs/seq2seq_multi30k_luong_cpu_2h" \
        "Transformer=runs/transformer_multi30k_cpu_3h+runs/transformer_multi30k_cpu_1h" \
        --thresholds 20 25 30 --out benchmarks/results/multi30k_time_to_bleu

Each LABEL=RUN names a run folder of a translation experiment (`hf-seq train`, task `translation`; or of the former
`train_seq2seq.py` / `train_transformer.py`) trained with `eval_strategy: epoch`: the validation BLEU after every
epoch and the training wall time at that point (`elapsed_seconds`, stamped by TrainingClock) come from its
eval_results.json (results.json for the former scripts' runs), or while it still trains from its newest checkpoint's
trainer_state.json. `RUN+EARLIER` says that RUN resumed from a checkpoint of EARLIER, a run without stamped times:
EARLIER's `train_seconds` is added to RUN's clock (a translation runner's run continues the clock of the checkpoint it
resumed, so it needs no `+EARLIER`). Writes OUT.json, OUT.md and OUT.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hf_seq.training.checkpointing import latest_complete_checkpoint  # noqa: E402


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


RESULTS_FILES = ("eval_results.json", "results.json")  # the run folder's, then the former scripts'


def results_path(run: str) -> str | None:
    return next((os.path.join(run, f) for f in RESULTS_FILES if os.path.isfile(os.path.join(run, f))), None)


def eval_history(run: str) -> tuple[list[dict], dict]:
    """[(epoch, step, elapsed_seconds, bleu)] of a run, and its results (empty while it trains)."""
    path = results_path(run)
    if path is not None:
        results = _json(path)
        history = results.get("eval_history") or []
    else:
        results = {}
        checkpoint = latest_complete_checkpoint(run)
        if checkpoint is None:
            raise SystemExit(f"{run}: no eval_results.json and no checkpoint to read the validation history from")
        history = [e for e in _json(os.path.join(checkpoint, "trainer_state.json"))["log_history"] if "eval_bleu" in e]
    points = [
        {"epoch": e["epoch"], "step": e["step"], "elapsed_seconds": e["elapsed_seconds"], "bleu": e["eval_bleu"]}
        for e in history if "eval_bleu" in e and "elapsed_seconds" in e
    ]
    if not points:
        raise SystemExit(f"{run}: no validation BLEU with elapsed_seconds (train with eval_strategy: epoch)")
    return points, results


def time_to(points: list[dict], threshold: float) -> float | None:
    for p in points:
        if p["bleu"] >= threshold:
            return p["elapsed_seconds"]
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN[+EARLIER]")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[20.0, 25.0, 30.0])
    parser.add_argument("--out", default="benchmarks/results/multi30k_time_to_bleu")
    parser.add_argument("--note", action="append", default=[], help="a paragraph added under the tables")
    args = parser.parse_args(argv)

    command = "python benchmarks/translation_time_to_bleu.py " + " ".join(
        repr(x) if " " in x else x for x in (argv if argv is not None else sys.argv[1:]))
    report = {"command": command, "thresholds": args.thresholds, "runs": []}
    for spec in args.runs:
        if "=" not in spec:
            raise SystemExit(f"expected LABEL=RUN, got {spec!r}")
        label, paths = spec.split("=", 1)
        run, *earlier = paths.split("+")
        points, results = eval_history(run)
        for e in earlier:
            if results_path(e) is None:
                raise SystemExit(f"{e}: no eval_results.json to read the earlier run's train_seconds from")
        offset = sum(_json(results_path(e))["train_seconds"] for e in earlier)
        for p in points:
            p["elapsed_seconds"] = round(p["elapsed_seconds"] + offset, 1)
        report["runs"].append({
            "label": label, "run": run, "resumed_after": earlier, "offset_seconds": offset, "points": points,
            "time_to": {str(t): time_to(points, t) for t in args.thresholds},
            # a resumed run first measured above the threshold: reached by then, the exact time is unknown
            "upper_bound": {str(t): bool(earlier) and points[0]["bleu"] >= t for t in args.thresholds},
            "best_validation_bleu": max(p["bleu"] for p in points),
            "threads": results.get("threads"), "test_bleu": results.get("test_bleu"),
            "train_seconds": results.get("train_seconds"), "train_cpu_seconds": results.get("train_cpu_seconds"),
        })
    report["notes"] = args.note

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)

    def hours(seconds, upper_bound=False):
        return "not reached" if seconds is None else f"{'≤ ' if upper_bound else ''}{seconds / 3600:.2f} h"

    lines = [
        "# Training time to a validation BLEU (Multi30k de->en, greedy decoding of the 1,014 validation pairs)",
        "",
        f"Command: `{command}`",
        "",
        "Time = wall time since training began when the epoch's validation BLEU was measured (the earlier epochs' "
        "validation decoding, about 30 s each, included).",
        "",
        "| model | " + " | ".join(f"time to BLEU {t:g}" for t in args.thresholds)
        + " | best validation BLEU | epochs | train CPU s / wall s |",
        "|---|" + "---|" * (len(args.thresholds) + 3),
    ]
    for r in report["runs"]:
        cpu = (f"{r['train_cpu_seconds'] / r['train_seconds']:.2f}" if r.get("train_cpu_seconds") and r.get("train_seconds")
               else "-")
        lines.append(f"| {r['label']} | " + " | ".join(hours(r["time_to"][str(t)], r["upper_bound"][str(t)]) for t in args.thresholds)
                     + f" | {r['best_validation_bleu']:.2f} | {round(r['points'][-1]['epoch'], 2):g} | {cpu} |")
    lines += ["", "| model | epoch | hours | validation BLEU |", "|---|---|---|---|"]
    for r in report["runs"]:
        for p in r["points"]:
            lines.append(f"| {r['label']} | {round(p['epoch'], 2):g} | {p['elapsed_seconds'] / 3600:.2f} | {p['bleu']:.2f} |")
    for r in report["runs"]:
        if r["resumed_after"]:
            lines.append(f"\n{r['label']}: resumed from a checkpoint of {', '.join(r['resumed_after'])}, which "
                         f"trained {r['offset_seconds'] / 3600:.2f} h without validation; its curve starts there.")
    lines += [f"\n{note}" for note in args.note]
    with open(args.out + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in report["runs"]:
        ax.plot([p["elapsed_seconds"] / 3600 for p in r["points"]], [p["bleu"] for p in r["points"]], marker="o",
                label=r["label"])
    for t in args.thresholds:
        ax.axhline(t, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("training wall time (hours, one CPU thread)")
    ax.set_ylabel("validation BLEU (greedy)")
    ax.set_title("Multi30k de->en: validation BLEU against training time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""PTB recipes trained to the end by `training/train_lm.py` (not by the study's equal-budget clock): the reproduction
of Zaremba et al.'s small LSTM and our improved one-hour recipe, read from their finished run folders.

A row comes from `<run>/eval_results.json` (test/validation perplexity over the contiguous streams with the state
carried, parameters, training seconds, the config file) and the newest checkpoint's `trainer_state.json` (validation
perplexity after every epoch, for the plot). Each recipe is compared with the number it must reach: the published
test perplexity for a reproduction, the issue's target for our own recipe.
"""

from __future__ import annotations

import math
import os

from .common import REPO, pyplot, read_json, save_figure

# config file -> (what the row is measured against, test perplexity of it)
REFERENCES = {
    "configs/lstm_ptb_zaremba_small.yaml": ("published (Zaremba et al. 2014, small)", 114.5),
    "configs/lstm_ptb_improved_cpu_1h.yaml": ("target (issue #8: one hour, 2 CPU cores)", 100.0),
    "configs/lstm_ptb_medium_gpu.yaml": ("published (Zaremba et al. 2014, medium)", 82.7),
}
DEFAULT_RUNS = {
    "Zaremba et al. small LSTM (reproduction)": "runs/lstm_ptb_zaremba_small",
    "Improved recipe, 1 hour": "runs/lstm_ptb_improved_cpu_1h",
}


def _history(run_dir: str) -> list[dict]:
    """Validation perplexity per evaluation from the newest checkpoint's trainer state (empty if none kept)."""
    from hf_seq.training.checkpointing import list_checkpoints

    states = [os.path.join(c, "trainer_state.json") for c in list_checkpoints(run_dir)]
    states = [p for p in states if os.path.isfile(p)]
    if not states:
        return []
    out = []
    for e in read_json(states[0])["log_history"]:
        if "eval_loss" in e:
            point = {"epoch": round(float(e["epoch"]), 3), "validation_perplexity": round(math.exp(e["eval_loss"]), 2)}
            if "elapsed_seconds" in e:
                point["elapsed_seconds"] = e["elapsed_seconds"]
            out.append(point)
    return out


def collect(label: str, run_dir: str) -> dict:
    path = os.path.join(run_dir, "eval_results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{label}: no eval_results.json in {run_dir} (the run has not finished)")
    r = read_json(path)
    config = r.get("config_file", "")
    config_rel = os.path.relpath(os.path.abspath(config), REPO) if config else ""
    reference, reference_ppl = REFERENCES.get(config_rel, (None, None))
    row = {
        "label": label, "run": os.path.relpath(os.path.abspath(run_dir), REPO), "config_file": config_rel,
        "architecture": r["architecture"], "parameters": r["parameters"], "epochs": r.get("epochs"),
        "train_hours": round(r["train_seconds"] / 3600, 2), "threads": r.get("torch_threads"),
        "validation_perplexity": round(r["validation_perplexity"], 2), "test_perplexity": round(r["test_perplexity"], 2),
        "reference": reference, "reference_test_perplexity": reference_ppl, "evaluation": r.get("evaluation"),
        "history": r.get("eval_history") or _history(run_dir),
        # runs before hf-seq's StatefulLMTrainer carried the state in evaluation scored every validation window of
        # block_size tokens from a zero state: a pessimistic curve (the final numbers always carry the state)
        "history_protocol": r.get("eval_history_protocol", "each window from a zero state"),
    }
    if reference_ppl is not None:
        row["test_minus_reference"] = round(row["test_perplexity"] - reference_ppl, 2)
    return row


def plot(rows: list[dict], path: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        h = r["history"]
        if h:
            zero_state = "zero state" in r.get("history_protocol", "")
            line, = ax.plot([p["epoch"] for p in h], [p["validation_perplexity"] for p in h], marker="o", ms=3,
                            ls="--" if zero_state else "-",
                            label=f"{r['label']}: logged{' (windows from a zero state)' if zero_state else ''}")
            ax.plot([h[-1]["epoch"]], [r["validation_perplexity"]], marker="*", ms=12, color=line.get_color(),
                    ls="none", label=f"final, state carried: valid {r['validation_perplexity']:.1f}, "
                                     f"test {r['test_perplexity']:.1f}")
        if r["reference_test_perplexity"]:
            ax.axhline(r["reference_test_perplexity"], ls=":", lw=1, color=ax.lines[-1].get_color() if h else "grey")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("PTB validation perplexity")
    ax.set_title("PTB LSTM recipes (dotted: published test perplexity / target)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def run(results_dir: str, runs: dict[str, str] | None = None) -> dict:
    runs = runs or {k: os.path.join(REPO, v) for k, v in DEFAULT_RUNS.items()}
    rows, missing = [], []
    for label, run_dir in runs.items():
        try:
            rows.append(collect(label, run_dir))
        except FileNotFoundError as e:
            missing.append({"recipe": label, "reason": str(e)})
    plots = {"curve": os.path.basename(plot(rows, os.path.join(results_dir, "lm_recipes_curve.png")))} if rows else {}
    return {"recipes": rows, "missing": missing, "plots": plots}

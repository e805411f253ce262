"""Translation: RNN encoder-decoder without attention, with Bahdanau and with Luong attention, and the Transformer,
on Multi30k De->En. Nothing is re-implemented here: each system is the translation runner (`hf-seq train`, task
`translation`) on the family's shipped CPU experiment (same data, same joint-BPE recipe, greedy test decoding, same
wall-clock training budget passed as `data.max_train_minutes`); this module only launches them, skips finished runs,
and scores every system's `test_hypotheses.txt` the same way (sacreBLEU BLEU/chrF with signatures, BLEU by
source-length bucket, sentences/s).

`collect_from` reads finished runs from other output folders instead (e.g. the owners' own runs): their
`eval_results.json` (or, for runs of the former training scripts, `results.json`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from .common import DATA_DIR, REPO, read_json

# name -> (label, shipped experiment, overrides). Bahdanau has no CPU experiment of its own: the Luong CPU one with
# the attention switched, so the three RNN systems differ in the attention alone.
SYSTEMS = {
    "none": ("GRU enc-dec, no attention", "seq2seq_multi30k_none_cpu", []),
    "bahdanau": ("GRU enc-dec + Bahdanau", "seq2seq_multi30k_luong_cpu",
                 ["model.attention=bahdanau", "model.attention_size=128", "model.input_feeding=false"]),
    # the study's measured Luong rows ran without input feeding; the shipped experiment now has it on
    "luong": ("GRU enc-dec + Luong (general, no input feeding)", "seq2seq_multi30k_luong_cpu",
              ["model.input_feeding=false"]),
    # Luong et al. 2015 as published (and as OpenNMT/eole run it): input feeding on (issue #23.2's ablation)
    "luong_feed": ("GRU enc-dec + Luong (general, input feeding)", "seq2seq_multi30k_luong_cpu",
                   ["model.input_feeding=true"]),
    "transformer": ("Transformer", "transformer_multi30k_cpu", ["data.test_num_beams=1"]),
}
# --quick: the Transformer's own seconds-long experiment; the RNN systems run their experiment with --smoke
QUICK_EXPERIMENTS = {"transformer": "transformer_smoke"}
RESULTS_FILES = ("eval_results.json", "results.json")  # the run folder's, then the former scripts'


def results_path(run_dir: str) -> str | None:
    """The results file of a finished run folder (None while it has none)."""
    return next((os.path.join(run_dir, f) for f in RESULTS_FILES if os.path.isfile(os.path.join(run_dir, f))), None)


def _overrides(name: str, budget_minutes: float, quick: bool) -> list[str]:
    """The experiment and its `section.key=value` overrides for one system (after `hf-seq train`)."""
    _, experiment, overrides = SYSTEMS[name]
    if quick:
        if name in QUICK_EXPERIMENTS:
            return [QUICK_EXPERIMENTS[name], "data.test_num_beams=1"]
        return [experiment, "--smoke", "data.test_num_beams=1",
                *[o for o in overrides if o.startswith(("model.attention=", "model.input_feeding="))]]
    return [experiment, f"data.max_train_minutes={budget_minutes}", *overrides]


def _command(name: str, out_dir: str, budget_minutes: float, quick: bool) -> list[str]:
    return [sys.executable, "-m", "hf_seq.train", *_overrides(name, budget_minutes, quick), "--output_dir", out_dir]


def _run_in_process(name: str, out_dir: str, budget_minutes: float) -> int:
    """--quick: the smoke run of `name` in this process (what `hf-seq train ... --smoke` runs); 0 or 1 like an exit
    status, the traceback in <out_dir>/study.log."""
    import traceback

    from hf_seq.training.experiment import load_experiment, run_experiment

    experiment, *rest = _overrides(name, budget_minutes, True)
    smoke = "--smoke" in rest
    try:
        exp = load_experiment(experiment, [o for o in rest if o != "--smoke"], smoke=smoke, output_dir=out_dir,
                              overwrite=True)
        run_experiment(exp)
        return 0
    except Exception:  # noqa: BLE001 - reported as a missing row, like a failed subprocess
        with open(os.path.join(out_dir, "study.log"), "a") as log:
            log.write(traceback.format_exc())
        return 1


def _test_set(results: dict):
    """Sources and references of the test set a run was scored on (Multi30k only; None otherwise)."""
    root = os.path.join(DATA_DIR, "multi30k")
    if results.get("dataset") != "multi30k" or not os.path.isdir(root):
        return None
    src, tgt = results.get("direction", "de->en").split("->")
    with open(os.path.join(root, f"test_2016_flickr.{src}"), encoding="utf-8") as f:
        sources = [line.rstrip("\n") for line in f]
    with open(os.path.join(root, f"test_2016_flickr.{tgt}"), encoding="utf-8") as f:
        refs = [line.rstrip("\n") for line in f]
    n = results.get("test_pairs", len(refs))
    return sources[:n], refs[:n]


def score(name: str, out_dir: str, overrides: list[str] | None = None) -> dict:
    """One row of the table from a finished run folder (eval_results.json + test_hypotheses.txt). `overrides`: the
    ones this module launched the run with (a former script's results.json records its own)."""
    from hf_seq.evaluation import bleu_by_source_length, bleu_report

    r = read_json(results_path(out_dir))
    config_file = r.get("config_file")
    if config_file and os.path.isabs(config_file) and config_file.startswith(REPO + os.sep):
        config_file = os.path.relpath(config_file, REPO)
    row = {
        "system": name, "label": SYSTEMS[name][0], "run_dir": os.path.relpath(out_dir, REPO),
        "config_file": config_file, "overrides": r.get("overrides", overrides), "dataset": r.get("dataset"),
        "direction": r.get("direction"), "parameters": r.get("parameters"), "steps": r.get("steps"),
        "epochs": r.get("epochs"), "train_seconds": r.get("train_seconds"), "train_cpu_seconds": r.get("train_cpu_seconds"),
        "test_bleu": r.get("test_bleu"), "test_chrf": r.get("test_chrf"),
        "bleu_signature": r.get("test_bleu_signature"), "chrf_signature": r.get("test_chrf_signature"),
        "test_num_beams": r.get("test_num_beams"), "test_pairs": r.get("test_pairs"),
        "test_seconds": r.get("test_seconds"), "threads": r.get("threads"),
        "bleu_by_source_length": r.get("test_bleu_by_source_length"),
    }
    budget = r.get("max_train_minutes")  # recorded by the translation runner
    for o in row["overrides"] or []:
        if o.startswith("data.max_train_minutes="):
            budget = float(o.split("=", 1)[1])
    cfg = os.path.join(REPO, r.get("config_file") or "")
    if budget is None and os.path.isfile(cfg):
        import yaml

        with open(cfg, encoding="utf-8") as f:
            budget = ((yaml.safe_load(f) or {}).get("data") or {}).get("max_train_minutes")
    row["train_budget_minutes"] = float(budget) if budget is not None else None
    # the seed: the run's record, else its config's training.seed (one seed per system so far); the load average
    # when the run was scored here (runs of the former scripts did not record one)
    seed = r.get("seed")
    if seed is None and os.path.isfile(cfg):
        import yaml

        with open(cfg, encoding="utf-8") as f:
            seed = ((yaml.safe_load(f) or {}).get("training") or {}).get("seed")
    row["seed"] = seed
    row["load_1min"] = r.get("load_1min")
    if row["test_seconds"]:
        row["sentences_per_second"] = round(row["test_pairs"] / row["test_seconds"], 2)
    test = _test_set(r)
    hyp_path = os.path.join(out_dir, "test_hypotheses.txt")
    if test and os.path.isfile(hyp_path):  # rescore every system identically from its hypotheses
        with open(hyp_path, encoding="utf-8") as f:
            hyps = [line.rstrip("\n") for line in f][: len(test[1])]
        if len(hyps) == len(test[1]):
            rep = bleu_report(hyps, test[1], r["direction"].split("->")[1])
            row.update(test_bleu=rep["bleu"], test_chrf=rep["chrf"], bleu_signature=rep["bleu_signature"],
                       chrf_signature=rep.get("chrf_signature"))
            row["bleu_by_source_length"] = bleu_by_source_length([len(s.split()) for s in test[0]], hyps, test[1])
    return row


def run(results_dir: str, run_dir: str, quick: bool, budget_minutes: float, collect_from: dict | None = None,
        systems: list[str] | None = None, time_to_bleu: str | None = None) -> dict:
    """The table of `systems` (trained here, or collected from `collect_from`'s run folders), and, when
    `time_to_bleu` names the JSON of `benchmarks/translation_time_to_bleu.py`, its time-to-validation-BLEU rows."""
    systems = systems or list(SYSTEMS)
    os.makedirs(results_dir, exist_ok=True)
    rows, missing, launched = [], [], []
    for name in systems:
        out_dir = (collect_from or {}).get(name) or os.path.join(run_dir, name)
        launched_with = None
        if results_path(out_dir) is None:
            if collect_from and name in collect_from:
                missing.append({"system": name, "reason": f"no eval_results.json in {out_dir}"})
                continue
            cmd = _command(name, out_dir, budget_minutes, quick)
            os.makedirs(out_dir, exist_ok=True)
            print(f"[translation] {name}: {' '.join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in cmd)}",
                  flush=True)
            t0 = time.time()
            if quick:  # smoke runs take seconds; a subprocess would spend more importing torch than training
                returncode = _run_in_process(name, out_dir, budget_minutes)
            else:
                with open(os.path.join(out_dir, "study.log"), "a") as log:
                    returncode = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                                env=dict(os.environ, OMP_NUM_THREADS="1")).returncode
            launched.append({"system": name, "command": cmd[1:], "exit": returncode,
                             "wall_seconds": round(time.time() - t0, 1)})
            launched_with = [o for o in _overrides(name, budget_minutes, quick)[1:] if "=" in o]
            if returncode != 0:
                missing.append({"system": name, "reason": f"hf-seq train exited {returncode}; see "
                                                          f"{os.path.relpath(out_dir, REPO)}/study.log"})
                continue
        rows.append(score(name, out_dir, launched_with))
    plots = {}
    by_len = {r["label"]: r["bleu_by_source_length"] for r in rows if r.get("bleu_by_source_length")}
    if by_len:
        from hf_seq.plotting import plot_bleu_by_length

        plots["bleu_by_length"] = os.path.basename(plot_bleu_by_length(
            by_len, os.path.join(results_dir, "translation_bleu_by_length.png"),
            title="Multi30k De->En test BLEU by source length" if not quick else "BLEU by source length (quick)"))
    timing = None
    if time_to_bleu and os.path.isfile(time_to_bleu):
        timing = read_json(time_to_bleu)
        timing["file"] = os.path.relpath(time_to_bleu, REPO)
        picture = os.path.splitext(time_to_bleu)[0] + ".png"
        if os.path.isfile(picture):
            plots["time_to_bleu"] = os.path.relpath(picture, results_dir)
    return {"systems": rows, "missing": missing, "launched": launched, "budget_minutes": budget_minutes,
            "plots": plots, "time_to_bleu": timing}

"""Command line of the study; `benchmarks/study.py` is a thin wrapper around `main`."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys

import yaml

from . import lm, lm_recipes, long_range, report, translation, word_vectors
from .common import REPO, RESULTS_DIR, RUNS_DIR, machine_info, read_json, write_json

SUBSETS = ("lm", "lm_recipes", "long_range", "translation", "word_vectors")
NOT_RUN = [
    "PTB medium LSTM on a GPU (published 82.7, target <= 80): config `configs/lstm_ptb_medium_gpu.yaml`, no GPU here.",
    "WikiText-2 language modelling inside the study: only PTB (`--lm dataset=...` takes ptb only so far); the LSTM vs "
    "Transformer decoder comparison on WikiText-2 ran through the LM runner: benchmarks/results/wikitext2_lstm_vs_transformer.md.",
    "Issue #23.1 at full size: 4 architectures x PTB and WikiText-2 x 3 seeds x one CPU-hour each, tuned recipes (no "
    "grid edge), and the x4-parameter table: the Trainer-based runner, recipes table, seeds and CPU clock are in place "
    "(`python benchmarks/study.py --subset lm --budget 3600 --seeds 0 1 2`), the CPU-hours were not available here.",
    "Issue #23.2 rerun at equal CPU-seconds (none / Bahdanau / Luong / Transformer, 3 seeds) with the Luong fix.",
    "Longer PTB runs outside the study's CPU clock: `hf-seq train transformer_lm_ptb` vs "
    "`configs/lstm_ptb_small.yaml` (same data, tokenizer and epochs), see benchmarks/results/ptb_lstm_vs_transformer.md.",
]


# measurements kept beside the report in their own files (each names its command, machine, load, threads, CPU seconds
# and seeds): linked from REPORT.md when present in the results folder
ADDENDA = [
    ("ptb_lstm_vs_pytorch_90s/REPORT.md", "PTB: hf-seq LSTM (Trainer) vs PyTorch's word_language_model LSTM, the same "
     "stream, width and 90 CPU-second budget, seeds 0 and 1 (issue #23.3)"),
    ("ptb_lstm_sgd_recipe_90s/REPORT.md", "PTB: the hf-seq LSTM (Trainer) with the peer's recipe (SGD lr 20, clip "
     "0.25, dropout 0.2), the same 90 CPU seconds, seeds 0 and 1: what is toolkit and what is recipe"),
    ("luong_vs_bahdanau_ablation.md", "Why Luong trailed Bahdanau by 9 BLEU: the model code against Luong et al. "
     "2015 and a one-difference-at-a-time ablation (issue #23.2)"),
    ("eole_tatoeba_peer.md", "eole (OpenNMT-py's successor), trained through its own CLI on the Tatoeba split, next "
     "to hf-seq at the same sizes and steps (issue #23.3)"),
]


def _headline(out: str, file: str) -> str:
    """The measured numbers of an addendum, read from its JSON beside it (empty when it has none)."""
    folder = os.path.dirname(os.path.join(out, file))
    if os.path.dirname(file) and os.path.isfile(os.path.join(folder, "study.json")):  # a study run of its own
        models = read_json(os.path.join(folder, "study.json"))["subsets"]["lm"]["models"]
        return "; ".join(f"{m['label']}: test ppl {m['test_perplexity']:.1f}"
                         + (f" ± {m['test_perplexity_std']:.1f}" if m.get("test_perplexity_std") is not None else "")
                         + f", {m['steps']:.0f} steps, {m['tokens_per_second']:,.0f} tokens/CPU-s" for m in models)
    stem = os.path.join(out, os.path.splitext(file)[0] + ".json")
    if not os.path.isfile(stem):
        return ""
    data = read_json(stem)
    rows = data["rows"] if isinstance(data, dict) else data
    name = "system" if rows and "system" in rows[0] else "variant"
    return "; ".join(f"{r[name]}: BLEU {r['test_bleu']:.2f}, chrF {r['test_chrf']:.2f}" for r in rows)


def addenda(out: str) -> list[dict]:
    return [{"file": f, "what": w, "numbers": _headline(out, f)} for f, w in ADDENDA
            if os.path.isfile(os.path.join(out, f))]


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep:
            raise SystemExit(f"override {p!r} must look like key=value")
        out[key] = yaml.safe_load(value)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="benchmarks/study.py",
        description="Train and evaluate the classic architectures side by side; write study.json + REPORT.md.",
    )
    p.add_argument("--subset", default="lm,long_range,translation,word_vectors",
                   help=f"comma-separated subsets of {','.join(SUBSETS)}")
    p.add_argument("--all", action="store_true", help="every subset (overrides --subset)")
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="lm: train every model once per seed; the report shows mean and std (default: seed 0 only)")
    p.add_argument("--quick", action="store_true", help="smoke sizes (seconds per subset); used by the tests")
    p.add_argument("--out", help="results folder (default benchmarks/results/study, or runs/study/quick/results)")
    p.add_argument("--run-dir", help="checkpoints and run folders (default runs/study[/quick])")
    p.add_argument("--config", help="YAML with sections lm / long_range (setting overrides), e.g. configs/study_cpu.yaml")
    p.add_argument("--budget-seconds", "--budget", dest="budget_seconds", type=float,
                   help="lm: training budget per model and seed, in seconds of the budget clock (default 150)")
    p.add_argument("--budget-clock", choices=("cpu", "wall"), help="lm: what the budget counts (default cpu)")
    p.add_argument("--jobs", type=int, default=1, help="lm: models trained at once, each in its own process; 0 = in "
                                                       "this process")
    p.add_argument("--lm", nargs="*", metavar="KEY=VALUE", help="lm setting overrides (see LMSettings)")
    p.add_argument("--lm-recipes", nargs="*", metavar="LABEL=RUN_DIR",
                   help="lm_recipes: finished train_lm.py run folders to report (default: the Zaremba small "
                        "reproduction and the improved one-hour recipe in runs/)")
    p.add_argument("--long-range", nargs="*", metavar="KEY=VALUE", help="long_range setting overrides")
    p.add_argument("--translation-minutes", type=float, default=5.0, help="translation: training budget per system")
    p.add_argument("--translation-systems", default=",".join(translation.SYSTEMS),
                   help=f"comma-separated subset of {','.join(translation.SYSTEMS)}")
    p.add_argument("--translation-collect", nargs="*", metavar="SYSTEM=RUN_DIR",
                   help="read finished results.json from these run folders instead of training")
    p.add_argument("--translation-time-to-bleu", metavar="JSON",
                   default=os.path.join("benchmarks", "results", "multi30k_time_to_bleu.json"),
                   help="time-to-validation-BLEU results of benchmarks/translation_time_to_bleu.py to include "
                        "(ignored in --quick mode or when the file is absent)")
    p.add_argument("--report-only", action="store_true", help="re-render REPORT.md from study.json; run nothing")
    p.add_argument("--lm-worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    subsets = list(SUBSETS) if args.all else [s.strip() for s in args.subset.split(",") if s.strip()]
    bad = [s for s in subsets if s not in SUBSETS]
    if bad:
        p.error(f"unknown subset(s) {bad}; choose from {list(SUBSETS)}")
    args.subsets = subsets
    return args


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    run_dir = args.run_dir or os.path.join(RUNS_DIR, "quick" if args.quick else "")
    run_dir = run_dir.rstrip("/")
    if args.lm_worker:
        # the driver passes the folder holding settings.json (the lm folder, or a sweep folder inside it)
        has_settings = os.path.isfile(os.path.join(run_dir, "settings.json"))
        lm.worker_main(args.lm_worker, run_dir if has_settings else os.path.join(run_dir, "lm"))
        return {}
    out = args.out or (os.path.join(run_dir, "results") if args.quick else RESULTS_DIR)
    os.makedirs(out, exist_ok=True)
    file_cfg = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            file_cfg = yaml.safe_load(f) or {}
    json_path = os.path.join(out, "study.json")
    md_path = os.path.join(out, "REPORT.md")
    if args.report_only:
        study = read_json(json_path)
        study["addenda"] = addenda(out)
        study["not_run"] = NOT_RUN
        with open(md_path, "w", encoding="utf-8") as f:
            f.write(report.render_report(study))
        print(f"wrote {md_path}")
        return study
    done: dict = {}
    header = dict(machine=machine_info(), quick=args.quick, seeds={}, not_run=NOT_RUN,
                  command="python benchmarks/study.py " + " ".join(shlex.quote(a) for a in argv))

    def merged() -> dict:
        # subsets not rerun keep their earlier numbers; re-read at every write so that two study processes writing
        # different subsets (e.g. lm in the background, translation meanwhile) do not drop each other's results
        study = read_json(json_path) if os.path.isfile(json_path) else {"subsets": {}}
        if study.get("quick") is not None and study["quick"] != args.quick:
            study = {"subsets": {}}
        study.update(header)
        study["subsets"].update(done)
        return study

    study = {"subsets": done}
    for name in args.subsets:
        print(f"=== {name}", flush=True)
        if name == "lm":
            overrides = {**(file_cfg.get("lm") or {}), **_overrides(args.lm)}
            if args.budget_seconds is not None:
                overrides["budget_seconds"] = args.budget_seconds
            if args.budget_clock:
                overrides["budget_clock"] = args.budget_clock
            if args.seeds:
                overrides["seeds"] = args.seeds
            s = lm.settings_from(overrides, args.quick)
            done["lm"] = lm.run(s, os.path.join(run_dir, "lm"), out, args.quick, jobs=args.jobs)
        elif name == "lm_recipes":
            runs = dict(x.split("=", 1) for x in args.lm_recipes) if args.lm_recipes else None
            if runs:
                runs = {k: v if os.path.isabs(v) else os.path.join(REPO, v) for k, v in runs.items()}
            done["lm_recipes"] = lm_recipes.run(out, runs)
        elif name == "long_range":
            s = long_range.settings_from({**(file_cfg.get("long_range") or {}), **_overrides(args.long_range)},
                                         args.quick)
            done["long_range"] = long_range.run(s, out, args.quick)
        elif name == "translation":
            collect = dict(x.split("=", 1) for x in args.translation_collect) if args.translation_collect else None
            if collect:
                collect = {k: v if os.path.isabs(v) else os.path.join(REPO, v) for k, v in collect.items()}
            systems = [x for x in args.translation_systems.split(",") if x]
            timing = None if args.quick else os.path.join(REPO, args.translation_time_to_bleu)
            done["translation"] = translation.run(
                out, os.path.join(run_dir, "translation"), args.quick, args.translation_minutes, collect, systems,
                timing)
        elif name == "word_vectors":
            done["word_vectors"] = word_vectors.run()
        done[name]["command"] = header["command"]
        write_json(json_path, merged())  # after each subset, so a crash later keeps what finished
    study = merged()
    for name, sec in study["subsets"].items():
        if name == "lm" and sec.get("seeds"):
            study["seeds"][name] = sec["seeds"]
        elif "settings" in sec:
            study["seeds"][name] = sec["settings"].get("seed")
        elif name == "translation":
            study["seeds"][name] = "0 (the owners' configs: training.seed)"
    study["finished_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    study["addenda"] = addenda(out)
    write_json(json_path, study)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(report.render_report(study))
    print(f"wrote {json_path} and {md_path}")
    return study

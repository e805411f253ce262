"""Ensemble decoding vs its single models on an experiment's test split (BLEU, chrF and speed).

The test pairs are the experiment's, split and cut exactly as the translation runner tests on them
(`hf_seq.training.translation.experiment_pairs`): Multi30k's fixed test file, or the seeded Tatoeba split.

Multi30k de->en, two training seeds (results/ensemble_multi30k.md):

    for seed in 1 2; do   # one after the other, one thread each
        OMP_NUM_THREADS=1 hf-seq train seq2seq_multi30k_luong_cpu data.max_train_minutes=10 data.test_num_beams=1 \
            training.seed=$seed training.output_dir=/tmp/ensfid/luong_seed$seed
    done
    OMP_NUM_THREADS=1 python benchmarks/bench_ensemble.py /tmp/ensfid/luong_seed1 /tmp/ensfid/luong_seed2 \
        --experiment seq2seq_multi30k_luong_cpu --repeats 3 --output benchmarks/results/ensemble_multi30k.json \
        --markdown /tmp/ensfid/ensemble_multi30k_table.md   # the table, pasted into the .md

Tatoeba en->fr, the last two checkpoints of one run (results/ensemble_tatoeba.md):

    OMP_NUM_THREADS=1 hf-seq train seq2seq_tatoeba_bahdanau data.max_train_minutes=5 data.test_num_beams=1 \
        training.save_strategy=steps training.save_steps=100 training.save_total_limit=2 \
        training.output_dir=/tmp/ens_run
    OMP_NUM_THREADS=1 python benchmarks/bench_ensemble.py /tmp/ens_run/checkpoint-800 /tmp/ens_run \
        --output benchmarks/results/ensemble_tatoeba.json

Two training seeds of a Tatoeba experiment share a split (and so a vocabulary) only when `data.split_seed` is fixed:
train them with `data.split_seed=0 training.seed=N` and pass `--set data.split_seed=0` here.
`EnsembleForConditionalGeneration` refuses models whose vocabularies differ, and this script refuses models whose
`experiment.json` was split otherwise than the test pairs it decodes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time

import torch

from hf_seq.ensemble import load_ensemble
from hf_seq.evaluation import bleu_report, translate
from hf_seq.training.experiment import load_experiment
from hf_seq.training.translation import experiment_pairs, split_seed

SPLIT_KEYS = ("dataset", "source_lang", "target_lang", "tatoeba_heldout", "tatoeba_test_size", "tatoeba_max_words")


def check_split(models: list[str], exp) -> None:
    """Refuse a model trained (hence tested) on another split than the pairs decoded here."""
    wanted = {**{k: getattr(exp.data, k) for k in SPLIT_KEYS}, "split_seed": split_seed(exp)}
    for path in models:
        record = os.path.join(path, "experiment.json")
        if not os.path.isfile(record):
            record = os.path.join(os.path.dirname(os.path.normpath(path)), "experiment.json")  # a checkpoint
        if not os.path.isfile(record):
            continue
        with open(record, encoding="utf-8") as f:
            saved = json.load(f)
        data, training = saved.get("data", {}), saved.get("training", {})
        seed = data.get("split_seed")
        seed = training.get("seed", 0) if seed is None else seed
        got = {**{k: data.get(k) for k in SPLIT_KEYS}, "split_seed": seed if wanted["split_seed"] is not None else None}
        differ = {k: (got[k], wanted[k]) for k in wanted if got[k] != wanted[k]}
        if differ:
            raise SystemExit(f"{path} was trained on another split than --experiment {exp.name} gives: "
                             f"{ {k: f'model {a!r} vs here {b!r}' for k, (a, b) in differ.items()} }")


def markdown(result: dict) -> str:
    lines = [f"Test set: {result['test_pairs']} pairs of {result['dataset']} ({result['experiment']}), "
             f"{result['threads']} thread(s), batch {result['batch_size']}, fastest of {result['repeats']} "
             f"decodings, load average {result['loadavg_before']} before / {result['loadavg_after']} after.", "",
             "| system | beams | BLEU | chrF | seconds | sentences/s |", "| --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['system']} | {r['num_beams']} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['seconds']} | "
                     f"{r['sentences_per_second']} |")
    lines += ["", "Command:", "", f"    {result['command']}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="translation folders sharing one tokenizer")
    parser.add_argument("--experiment", default="seq2seq_tatoeba_bahdanau",
                        help="the shipped experiment (or YAML path) the models were trained with: it gives the test "
                             "pairs and the decoding length")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                        help="overrides of that experiment, as in `hf-seq train` (e.g. data.split_seed=0)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--limit", type=int, default=None, help="first N test pairs only")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1,
                        help="decode each (system, beams) this many times (interleaved); the fastest time is reported")
    parser.add_argument("--output", default=None, help="JSON file of the rows")
    parser.add_argument("--markdown", default=None, help="also write the table as Markdown")
    args = parser.parse_args()

    exp = load_experiment(args.experiment, args.overrides)
    check_split(args.models, exp)
    data = exp.data
    pairs = experiment_pairs(exp)["test"]
    if args.limit:
        pairs = pairs[: args.limit]
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    load_before = [round(x, 2) for x in os.getloadavg()]
    ensemble, tokenizer, target_tokenizer = load_ensemble(args.models)
    names = [os.path.basename(os.path.normpath(p)) for p in args.models]
    systems = {f"single:{name}": m for name, m in zip(names, ensemble.models)}
    systems[f"ensemble of {len(args.models)}"] = ensemble
    rows = {}
    for repeat in range(args.repeats):  # interleaved, so a burst of load on the shared machine hits every system
        for beams in args.beams:
            for name, model in systems.items():
                start = time.perf_counter()
                hyps = translate(model, tokenizer, sources, args.batch_size, target_tokenizer=target_tokenizer,
                                 num_beams=beams, max_new_tokens=data.max_target_length, do_sample=False)
                seconds = time.perf_counter() - start
                row = rows.get((name, beams))
                if row is None:
                    scores = bleu_report(hyps, refs, data.target_lang)
                    row = rows[name, beams] = {"system": name, "num_beams": beams, "bleu": scores["bleu"],
                                               "chrf": scores.get("chrf"), "all_seconds": [], "hypotheses": hyps}
                elif hyps != row["hypotheses"]:
                    raise SystemExit(f"{name}, {beams} beams: repeat {repeat} decoded other translations")
                row["all_seconds"].append(round(seconds, 2))
                row["seconds"] = min(row["all_seconds"])
                row["sentences_per_second"] = round(len(sources) / row["seconds"], 1)
                row["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
                print(json.dumps({k: v for k, v in row.items() if k != "hypotheses"}), flush=True)  # noqa: T201
    rows = [{k: v for k, v in row.items() if k != "hypotheses"} for row in rows.values()]
    result = {
        "command": "OMP_NUM_THREADS=1 python " + " ".join(shlex.quote(a) for a in sys.argv),
        "experiment": exp.name,
        "overrides": args.overrides,
        "dataset": data.dataset,
        "split_seed": split_seed(exp),
        "models": args.models,
        "test_pairs": len(pairs),
        "max_new_tokens": data.max_target_length,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "rows": rows,
    }
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(markdown(result))


if __name__ == "__main__":
    main()

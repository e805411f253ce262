"""Ensemble decoding vs its single models on the Tatoeba en->fr test split (BLEU and speed).

    # 1. train (the shipped demo, short budget, two checkpoints kept: the ensemble of the last checkpoints)
    OMP_NUM_THREADS=1 hf-seq train seq2seq_tatoeba_bahdanau data.max_train_minutes=5 data.test_num_beams=1 \
        training.save_strategy=steps training.save_steps=100 training.save_total_limit=2 \
        training.output_dir=/tmp/ens_run
    # 2. decode the test split with each model alone and with the ensemble
    OMP_NUM_THREADS=1 python benchmarks/bench_ensemble.py /tmp/ens_run /tmp/ens_run/checkpoint-N \
        --output benchmarks/results/ensemble_tatoeba.json

Two *seeds* of that runner cannot be ensembled: `training.seed` also shuffles the Tatoeba split, so each seed trains
its own BPE vocabulary on other pairs (and is tested on other pairs); `EnsembleForConditionalGeneration` refuses such
models. The last checkpoints of one run share everything but their weights. The test split here is the one of the
experiment's `training.seed` (0 by default), read from the experiment like the runner does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from hf_seq.data.translation import load_pairs
from hf_seq.ensemble import load_ensemble
from hf_seq.evaluation import bleu_report, translate
from hf_seq.training.experiment import load_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="translation folders sharing one tokenizer")
    parser.add_argument("--experiment", default="seq2seq_tatoeba_bahdanau")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--limit", type=int, default=None, help="first N test pairs only")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    exp = load_experiment(args.experiment)
    data = exp.data
    pairs = load_pairs(data.dataset, source_lang=data.source_lang, target_lang=data.target_lang,
                       data_dir=data.data_dir, seed=exp.training.seed, heldout=data.tatoeba_heldout,
                       test_size=data.tatoeba_test_size, max_words=data.tatoeba_max_words)["test"]
    if args.limit:
        pairs = pairs[: args.limit]
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    ensemble, tokenizer, target_tokenizer = load_ensemble(args.models)
    systems = {f"single:{os.path.basename(os.path.normpath(p))}": m for p, m in zip(args.models, ensemble.models)}
    systems[f"ensemble of {len(args.models)}"] = ensemble
    rows = []
    for beams in args.beams:
        for name, model in systems.items():
            start = time.perf_counter()
            hyps = translate(model, tokenizer, sources, args.batch_size, target_tokenizer=target_tokenizer,
                             num_beams=beams, max_new_tokens=data.max_target_length, do_sample=False)
            seconds = time.perf_counter() - start
            scores = bleu_report(hyps, refs, data.target_lang)
            rows.append({"system": name, "num_beams": beams, "bleu": scores["bleu"], "chrf": scores.get("chrf"),
                         "seconds": round(seconds, 1), "sentences_per_second": round(len(sources) / seconds, 1)})
            print(json.dumps(rows[-1]))  # noqa: T201  (a benchmark script, not library code)
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/bench_ensemble.py " + " ".join(args.models),
        "experiment": args.experiment,
        "models": args.models,
        "test_pairs": len(pairs),
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()

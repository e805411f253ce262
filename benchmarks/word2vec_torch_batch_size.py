#!/usr/bin/env python
"""What large batches cost the batched torch backend (the accelerator fallback when Triton is missing): WikiText-2,
5 epochs, one thread, the issue's settings, hf-seq's torch backend at several `batch_words` against gensim (same seed,
one thread). The torch backend sums the updates of a whole batch, read from the vectors before the batch; the larger
the batch, the staler the updates. This is why the GPU path is the Triton kernel (per-pair updates, Hogwild warps).

    python benchmarks/word2vec_torch_batch_size.py        # ~9 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from bench_word2vec import SETTINGS, _evaluate, add_ablation_arguments  # noqa: E402
from spawn_utils import get_or_raise  # noqa: E402


def _run(setting, batch, args, queue):
    import torch

    torch.set_num_threads(1)
    from hf_seq.models.word2vec import Word2VecForPreTraining, Word2VecKeyedVectors
    from hf_seq.models.word2vec.training_word2vec import Word2VecTrainingArguments, prepare_word2vec, train_word2vec

    with open(args.corpus, encoding="utf-8") as f:
        lines = [line.lower() for line in f if line.strip()]
    p = SETTINGS[setting]
    t0 = time.perf_counter()
    if batch == "gensim":
        from gensim.models import Word2Vec

        model = Word2Vec([line.split() for line in lines], vector_size=100, window=5, negative=p["negative"],
                         hs=p["hs"], sg=p["sg"], sample=1e-3, min_count=5, workers=1, seed=args.seed,
                         alpha=args.alpha, min_alpha=1e-4, epochs=args.epochs)
        kv = Word2VecKeyedVectors.from_gensim(model.wv)
    else:
        tokenizer, config, corpus = prepare_word2vec(
            lines, min_count=5, vector_size=100, window=5, sample=1e-3, negative=max(p["negative"], 1),
            architecture="skipgram" if p["sg"] else "cbow",
            objective="hierarchical_softmax" if p["hs"] else "negative_sampling")
        torch.manual_seed(args.seed)
        model = Word2VecForPreTraining(config)
        train_word2vec(model, corpus, Word2VecTrainingArguments(
            epochs=args.epochs, backend="torch", batch_words=batch, alpha=args.alpha, progress_bar=False,
            seed=args.seed))
        kv = Word2VecKeyedVectors.from_model(model, tokenizer)
    queue.put({"setting": setting, "batch_words": batch, "seconds": round(time.perf_counter() - t0, 1),
               **_evaluate(kv)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_ablation_arguments(parser, "word2vec_torch_batch_size", "runs at once (one thread each)")
    parser.add_argument("--runs", nargs="+", default=[f"{setting}:{batch}" for setting in ("skipgram_ns", "cbow_ns")
                                 for batch in ("gensim", 256, 1024, 4096, 16384, 65536)],
                        help="setting:batch_words (or setting:gensim)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    todo = [(r.split(":")[0], r.split(":")[1] if r.endswith("gensim") else int(r.split(":")[1])) for r in args.runs]
    procs, results, total = [], [], len(todo)
    while len(results) < total:
        while todo and len(procs) - len(results) < args.jobs:  # at most `jobs` runs without an answer yet
            procs.append(ctx.Process(target=_run, args=(*todo.pop(0), args, queue)))
            procs[-1].start()
        results.append(get_or_raise(queue, procs, "word2vec batch-size runs"))
        print(json.dumps(results[-1]), flush=True)
    for proc in procs:
        proc.join()
    order = {r: i for i, r in enumerate(args.runs)}
    results.sort(key=lambda r: order[f"{r['setting']}:{r['batch_words']}"])
    report = {"command": "python " + " ".join(sys.argv), "corpus": os.path.relpath(args.corpus, os.path.join(HERE, "..")),
              "epochs": args.epochs, "alpha": args.alpha, "seed": args.seed, "results": results}
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    lines = ["# word2vec: the batched torch backend's quality against its batch size", "",
             f"Command: `{report['command']}`", "",
             f"Corpus: {report['corpus']}, {args.epochs} epochs, vector_size 100, window 5, negative 5, sample 1e-3, "
             f"min_count 5, alpha {args.alpha} falling to 1e-4, one thread per run, seed {args.seed}. `batch_words` = "
             "centre words whose pairs are updated at once from the vectors as they were before the batch. "
             "Points (x100).", "",
             "| setting | system | batch_words | seconds | analogy total | WS-353 ρ | SimLex ρ |", "|---|---|---|---|---|---|---|"]
    for r in results:
        system = "gensim" if r["batch_words"] == "gensim" else "hf-seq torch backend"
        batch = "-" if r["batch_words"] == "gensim" else f"{r['batch_words']:,}"
        lines.append(f"| {r['setting']} | {system} | {batch} | {r['seconds']:.0f} | {100 * r['analogy']['total']:.2f} | "
                     f"{100 * r['wordsim353']['spearman']:.2f} | {100 * r['simlex999']['spearman']:.2f} |")
    with open(args.out + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Which implementation details move word2vec's quality against gensim: one thread, many seeds, CBOW.

    python benchmarks/word2vec_ablation.py                      # WikiText-2, CBOW-NS and CBOW-HS, 12 seeds (~12 min)
    python benchmarks/word2vec_ablation.py --seeds 1 2 --settings cbow_hs --out /tmp/ablation   # quick look

One worker thread per run, so every run is deterministic given its seed (no Hogwild races) and the spread is the
seeds' alone; `--jobs` runs share the seeds between processes. Variants, each trained on the same corpus and settings
as `bench_word2vec.py` (vector_size 100, window 5, negative 5, sample 1e-3, min_count 5, 5 epochs, alpha 0.025):

- `gensim`: gensim 4 `Word2Vec`, workers=1;
- `hf-seq`: the library's defaults (input vectors drawn from [-1/d, 1/d] as gensim 4 does; the vocabulary in gensim's
  order and the Huffman tree merged through a heap ordered by count alone, so the tree is gensim's);
- `hf-seq, word2vec.c init`: input vectors from [-0.5/d, 0.5/d], word2vec.c's (`initializer_range=0.5`);
- `hf-seq, word2vec.c tree` (hierarchical softmax): the tree merged as word2vec.c's `CreateBinaryTree` does, with
  two pointers over the same vocabulary order, so that neighbours in that order become siblings.

Writes `<out>.json` and `<out>.md`: means ± standard deviations, and each variant minus gensim with its standard
error (sqrt(s1^2/n + s2^2/n)).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from bench_word2vec import SETTINGS, _evaluate, add_ablation_arguments  # noqa: E402
from spawn_utils import get_or_raise  # noqa: E402

VARIANTS = ("gensim", "hf-seq", "hf-seq, word2vec.c init", "hf-seq, word2vec.c tree")


def word2vec_c_tree(word_counts):
    """word2vec.c's `CreateBinaryTree`: the vocabulary sorted by count (ties in id order), merged with two pointers
    (a leaf is taken only when strictly rarer than the next inner node)."""
    import numpy as np

    from hf_seq.models.word2vec.modeling_word2vec import huffman_paths

    counts = np.asarray(word_counts, dtype=np.int64)
    words = np.nonzero(counts > 0)[0]
    words = words[np.argsort(-counts[words], kind="stable")]
    n = words.shape[0]
    count = np.concatenate([counts[words], np.full(n - 1, np.iinfo(np.int64).max // 4)]).tolist()
    parent = np.zeros(2 * n - 1, dtype=np.int64)
    binary = np.zeros(2 * n - 1, dtype=np.int64)
    pos1, pos2 = n - 1, n
    for a in range(n - 1):
        picks = []
        for _ in range(2):
            if pos1 >= 0 and count[pos1] < count[pos2]:
                picks.append(pos1)
                pos1 -= 1
            else:
                picks.append(pos2)
                pos2 += 1
        count[n + a] = count[picks[0]] + count[picks[1]]
        parent[picks[0]] = parent[picks[1]] = n + a
        binary[picks[1]] = 1
    return huffman_paths(parent, binary, words, counts.shape[0])


def _worker(settings, seeds, args, queue):
    import torch
    from gensim.models import Word2Vec

    from hf_seq.models.word2vec import Word2VecForPreTraining, Word2VecKeyedVectors
    from hf_seq.models.word2vec.training_word2vec import Word2VecTrainingArguments, prepare_word2vec, train_word2vec

    torch.set_num_threads(1)
    with open(args.corpus, encoding="utf-8") as f:
        lines = [line.lower() for line in f if line.strip()]
    sentences = [line.split() for line in lines]
    for setting in settings:
        p = SETTINGS[setting]
        hs = bool(p["hs"])
        tokenizer, config, corpus = prepare_word2vec(
            lines, min_count=5, vector_size=100, window=5, sample=1e-3, negative=max(p["negative"], 1),
            architecture="skipgram" if p["sg"] else "cbow",
            objective="hierarchical_softmax" if hs else "negative_sampling")
        c_tree = word2vec_c_tree(config.word_counts) if hs else None
        default_range = config.initializer_range
        for seed in seeds:
            for variant in VARIANTS:
                if variant.endswith("tree") and not hs:
                    continue
                t0 = time.perf_counter()
                if variant == "gensim":
                    model = Word2Vec(sentences, vector_size=100, window=5, negative=p["negative"], hs=p["hs"],
                                     sg=p["sg"], sample=1e-3, min_count=5, workers=1, seed=seed, alpha=args.alpha,
                                     min_alpha=1e-4, epochs=args.epochs)
                    kv = Word2VecKeyedVectors.from_gensim(model.wv)
                else:
                    config.initializer_range = 0.5 if variant.endswith("init") else default_range
                    torch.manual_seed(seed)  # the initial vectors are the seed's too
                    model = Word2VecForPreTraining(config)
                    if variant.endswith("tree"):
                        layer = model.output_layer
                        points, codes, lengths = (torch.from_numpy(a) for a in c_tree)
                        layer.huffman_points, layer.huffman_codes, layer.huffman_lengths = points, codes, lengths
                    train_word2vec(model, corpus, Word2VecTrainingArguments(
                        epochs=args.epochs, workers=1, seed=seed, progress_bar=False, alpha=args.alpha,
                        min_alpha=1e-4))
                    kv = Word2VecKeyedVectors.from_model(model, tokenizer)
                seconds = time.perf_counter() - t0
                queue.put({"setting": setting, "variant": variant, "seed": seed, "seconds": seconds,
                           **_evaluate(kv)})
    queue.put(None)


def _value(row, metric):
    return {"analogy": row["analogy"]["total"], "wordsim353": row["wordsim353"]["spearman"],
            "simlex999": row["simlex999"]["spearman"]}[metric]


def summarize(results):
    out = []
    for setting in dict.fromkeys(r["setting"] for r in results):
        base = None
        for variant in VARIANTS:
            rows = [r for r in results if r["setting"] == setting and r["variant"] == variant]
            if not rows:
                continue
            entry = {"setting": setting, "variant": variant, "runs": len(rows)}
            for metric in ("analogy", "wordsim353", "simlex999"):
                values = [100 * _value(r, metric) for r in rows]
                mean = sum(values) / len(values)
                std = (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
                entry[metric] = {"mean": mean, "std": std}
                if base is not None:
                    b = base[metric]
                    entry[metric]["minus_gensim"] = mean - b["mean"]
                    entry[metric]["standard_error"] = (std**2 / len(values) + b["std"] ** 2 / base["runs"]) ** 0.5
            base = base or entry
            out.append(entry)
    return out


def write_markdown(report, path):
    lines = ["# word2vec ablation: which details move quality against gensim", "",
             f"Command: `{report['command']}`", "",
             f"Corpus: {report['corpus']}, {report['epochs']} epochs, vector_size 100, window 5, negative 5 (0 with hs), "
             f"sample 1e-3, min_count 5, alpha {report['alpha']} falling to 1e-4, ONE worker thread per run "
             f"(deterministic per seed), seeds {', '.join(map(str, report['seeds']))}. Points (x100); diff = variant "
             "minus gensim ± its standard error.", "",
             "| setting | variant | runs | analogy total | WS-353 ρ | SimLex ρ |", "|---|---|---|---|---|---|"]
    for e in report["summary"]:
        cells = []
        for metric in ("analogy", "wordsim353", "simlex999"):
            m = e[metric]
            cell = f"{m['mean']:.2f} ± {m['std']:.2f}"
            if "minus_gensim" in m:
                cell += f" (**{m['minus_gensim']:+.2f} ± {m['standard_error']:.2f}**)"
            cells.append(cell)
        lines.append(f"| {e['setting']} | {e['variant']} | {e['runs']} | " + " | ".join(cells) + " |")
    lines += ["", "Per run:", "", "| setting | variant | seed | s | analogy | WS-353 | SimLex |", "|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['setting']} | {r['variant']} | {r['seed']} | {r['seconds']:.1f} | "
                     f"{100 * _value(r, 'analogy'):.2f} | {100 * _value(r, 'wordsim353'):.2f} | "
                     f"{100 * _value(r, 'simlex999'):.2f} |")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_ablation_arguments(parser, "word2vec_ablation_wikitext2", "processes sharing the seeds (one thread each)")
    parser.add_argument("--settings", nargs="+", default=["cbow_ns", "cbow_hs"], choices=list(SETTINGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(11, 23)))
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    jobs = max(1, min(args.jobs, len(args.seeds)))
    procs = [ctx.Process(target=_worker, args=(args.settings, args.seeds[j::jobs], args, queue)) for j in range(jobs)]
    for proc in procs:
        proc.start()
    results, done = [], 0
    while done < jobs:
        item = get_or_raise(queue, procs, "word2vec ablation workers")
        if item is None:
            done += 1
            continue
        print(json.dumps(item), flush=True)
        results.append(item)
    for proc in procs:
        proc.join()
    order = {v: i for i, v in enumerate(VARIANTS)}
    results.sort(key=lambda r: (args.settings.index(r["setting"]), order[r["variant"]], r["seed"]))
    report = {"command": "python " + " ".join(sys.argv), "corpus": os.path.relpath(args.corpus, os.path.join(HERE, "..")),
              "epochs": args.epochs, "alpha": args.alpha, "seeds": args.seeds, "summary": summarize(results),
              "results": results}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    write_markdown(report, args.out + ".md")
    print(open(args.out + ".md", encoding="utf-8").read())


if __name__ == "__main__":
    main()

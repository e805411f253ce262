#!/usr/bin/env python
"""hf-seq word2vec against gensim 4.x Word2Vec: same corpus, same hyper-parameters, same 2 threads, one run.

    python benchmarks/bench_word2vec.py                       # WikiText-2 train, 5 epochs, 4 settings (~10-15 min)
    python benchmarks/bench_word2vec.py --max-lines 2000 --epochs 1 --out /tmp/w2v   # quick look

Settings (gensim's names): vector_size 100, window 5, negative 5, sample 1e-3, min_count 5, 5 epochs, for
sg=1 (skip-gram + negative sampling), sg=0 (CBOW-mean + negative sampling), and both with hs=1 negative=0
(hierarchical softmax).
Each system trains in its own fresh process (peak memory = the process's VmHWM, with the RSS before training also
recorded). words/s = corpus words x epochs / training wall time (vocabulary building excluded for both). Both systems'
vectors are scored by the same code (Word2VecKeyedVectors): analogies over the 30k most frequent words
(semantic/syntactic/total, questions with unknown words skipped as gensim does), Spearman on WordSim-353 / SimLex-999,
and Spearman on the rare-word pairs (issue #24): the pairs of WordSim-353 and SimLex-999 (both rated 0-10) with both
words in the vocabulary and at least one of them seen 5-50 times in the training corpus (`rare_word_pairs`; 722 pairs
on WikiText-2, written next to the report as <out>_rare_pairs.tsv). Gensim and hf-seq alternate run by run (setting,
seed, gensim, hf-seq, ...), so that a change in the load of the shared machine falls on both.
Writes benchmarks/results/word2vec_vs_gensim.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spawn_utils import call_in_fresh_process  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data")
EVAL = os.path.join(DATA, "word-eval")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
SETTINGS = {
    "skipgram_ns": {"sg": 1, "hs": 0, "negative": 5},
    "cbow_ns": {"sg": 0, "hs": 0, "negative": 5},
    "skipgram_hs": {"sg": 1, "hs": 1, "negative": 0},
    "cbow_hs": {"sg": 0, "hs": 1, "negative": 0},
}


def _memory_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return -1


def _load_lines(args):
    with open(args.corpus, encoding="utf-8") as f:
        lines = [line.lower() for line in f if line.strip()]
    return lines[: args.max_lines] if args.max_lines else lines


RARE_COUNTS = (5, 50)


def rare_word_pairs(lines: list[str], path: str, low: int = RARE_COUNTS[0], high: int = RARE_COUNTS[1]) -> int:
    """Writes the pairs of WordSim-353 and SimLex-999 whose two words occur at least `low` times in `lines` (both in
    the vocabulary at min_count 5) and one of which occurs at most `high` times, as `word1<TAB>word2<TAB>score`.
    Returns the number of pairs. The words are lower-cased, as the benchmark's corpus."""
    from collections import Counter

    counts = Counter(word for line in lines for word in line.split())
    pairs = []
    for file in ("EN-WS-353-ALL.txt", "EN-SIMLEX-999.txt"):
        with open(os.path.join(EVAL, file), encoding="utf-8") as f:
            for line in f:
                a, b, score = line.rstrip("\n").split("\t")[:3]
                a, b = a.lower(), b.lower()
                if min(counts[a], counts[b]) >= low and min(counts[a], counts[b]) <= high:
                    pairs.append(f"{a}\t{b}\t{score}")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(pairs) + "\n")
    os.replace(tmp, path)
    return len(pairs)


def _evaluate(kv, rare_pairs: str | None = None) -> dict:
    out = {}
    analogies = os.path.join(EVAL, "questions-words.txt")
    if os.path.exists(analogies):
        a = kv.evaluate_word_analogies(analogies, restrict_vocab=30000)
        out["analogy"] = {k: a[k] for k in ("semantic", "syntactic", "total", "total_questions", "oov_ratio")}
    for name, file in (("wordsim353", "EN-WS-353-ALL.txt"), ("simlex999", "EN-SIMLEX-999.txt")):
        path = os.path.join(EVAL, file)
        if os.path.exists(path):
            r = kv.evaluate_word_pairs(path)
            out[name] = {"spearman": r["spearman"], "coverage": r["coverage"]}
    if rare_pairs:
        r = kv.evaluate_word_pairs(rare_pairs)
        out["rare_pairs"] = {"spearman": r["spearman"], "coverage": r["coverage"]}
    return out


def run_gensim(setting: str, args, queue):
    import gensim
    from gensim.models import Word2Vec

    from hf_seq.models.word2vec import Word2VecKeyedVectors

    lines = _load_lines(args)
    sentences = [line.split() for line in lines]
    words = sum(len(s) for s in sentences)
    p = SETTINGS[setting]
    model = Word2Vec(
        vector_size=100, window=5, negative=p["negative"], hs=p["hs"], sg=p["sg"], sample=1e-3, min_count=5,
        workers=args.threads, seed=args.run_seed, alpha=args.alpha, min_alpha=1e-4,
    )
    model.build_vocab(sentences)
    rss_before = _memory_kb("VmRSS")
    t0 = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=args.epochs)
    seconds = time.perf_counter() - t0
    kv = Word2VecKeyedVectors.from_gensim(model.wv)
    queue.put({
        "system": f"gensim {gensim.__version__}", "setting": setting, "seed": args.run_seed, "vocab": len(model.wv), "corpus_words": words,
        "train_seconds": seconds, "words_per_s": words * args.epochs / seconds,
        "peak_rss_mb": _memory_kb("VmHWM") / 1024, "rss_before_train_mb": rss_before / 1024,
        "reported_loss": None, **_evaluate(kv, args.rare_pairs),
    })


def run_hf_seq(setting: str, args, queue):
    import torch

    from hf_seq.models.word2vec import Word2VecForPreTraining, Word2VecKeyedVectors
    from hf_seq.models.word2vec import kernels_word2vec as word2vec_kernels
    from hf_seq.models.word2vec.training_word2vec import (
        Word2VecTrainingArguments,
        default_batch_words,
        default_negatives_shared_by,
        prepare_word2vec,
        resolve_backend,
        resolve_parallel,
        train_word2vec,
    )

    lines = _load_lines(args)
    p = SETTINGS[setting]
    tokenizer, config, corpus = prepare_word2vec(
        lines, min_count=5, vector_size=100, window=5, sample=1e-3, negative=max(p["negative"], 1),
        architecture="skipgram" if p["sg"] else "cbow",
        objective="hierarchical_softmax" if p["hs"] else "negative_sampling",
        **({} if args.initializer_range is None else {"initializer_range": args.initializer_range}),
    )
    device = torch.device(args.device)
    torch.manual_seed(args.run_seed)  # the initial vectors too (gensim seeds its own with `seed`)
    model = Word2VecForPreTraining(config).to(device)
    rss_before = _memory_kb("VmRSS")
    train_args = Word2VecTrainingArguments(
        # an accelerator is one worker (its batches are the parallelism); gensim keeps --threads CPU threads
        epochs=args.epochs, workers=args.threads if device.type == "cpu" else 1, seed=args.run_seed,
        progress_bar=False, alpha=args.alpha, min_alpha=1e-4, batch_words=args.batch_words,
        negatives_shared_by=args.negatives_shared_by, max_row_updates=args.max_row_updates, parallel=args.parallel,
        backend=args.backend, device=str(device), gpu_programs=args.gpu_programs,
    )
    backend = resolve_backend(train_args)
    parallel = resolve_parallel(train_args, backend)
    # numba compiles the kernels on first use (then caches them on disk), as gensim's Cython was compiled when it was
    # installed: that one-time cost is measured and reported apart from the training time
    compile_seconds = word2vec_kernels.warm_up() if backend == "compiled" else 0.0
    if backend == "triton":  # Triton compiles the kernel on its first launch: done here, outside the timing
        from hf_seq.models.word2vec.triton_word2vec import TritonWord2Vec

        compile_seconds = TritonWord2Vec(model, train_args.gpu_programs).compile_seconds
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    history = train_word2vec(model, corpus, train_args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    gpu_peak_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    kv = Word2VecKeyedVectors.from_model(model.cpu(), tokenizer)
    on = "" if device.type == "cpu" else (
        f" on {torch.cuda.get_device_name(device)}" if device.type == "cuda" else f" on {device}")
    queue.put({
        "system": f"hf-seq ({backend}{on}; torch {torch.__version__}"
                  + (f", numba {word2vec_kernels.numba.__version__})" if backend == "compiled" else
                     f", triton {__import__('triton').__version__}; {train_args.gpu_programs} warps)"
                     if backend == "triton" else ")"),
        "device": str(device), "gpu_peak_mb": gpu_peak_mb,
        "setting": setting, "seed": args.run_seed, "vocab": len(kv),
        "corpus_words": corpus.raw_words, "train_seconds": seconds,
        "words_per_s": corpus.raw_words * args.epochs / seconds, "peak_rss_mb": _memory_kb("VmHWM") / 1024,
        "rss_before_train_mb": rss_before / 1024, "loss_per_epoch": [round(h["loss"], 4) for h in history],
        "backend": backend, "compile_seconds": round(compile_seconds, 2),
        "initializer_range": config.initializer_range,
        "batch_words": args.batch_words or default_batch_words(config, train_args.workers, backend, train_args.gpu_programs),
        # forked workers (parallel="process") share the vectors; this is the largest worker's own peak RSS
        "peak_rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if train_args.workers > 1 and parallel == "process" else None,
        "parallel": parallel if train_args.workers > 1 else "single worker",
        "negatives_shared_by": args.negatives_shared_by if args.negatives_shared_by is not None else
        default_negatives_shared_by(config, backend),
        **_evaluate(kv, args.rare_pairs),
    })




METRICS = {"words_per_s": ("words_per_s",), "analogy_total": ("analogy", "total"),
           "analogy_semantic": ("analogy", "semantic"), "analogy_syntactic": ("analogy", "syntactic"),
           "wordsim353": ("wordsim353", "spearman"), "simlex999": ("simlex999", "spearman"),
           "rare_pairs": ("rare_pairs", "spearman")}


def _metric(row, path):
    for key in path:
        row = row.get(key) if isinstance(row, dict) else None
    return row


def summarize(results: list[dict]) -> list[dict]:
    """Mean and sample standard deviation over seeds of every metric, per (setting, system)."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["setting"], r["system"]), []).append(r)
    out = []
    for (setting, system), rows in groups.items():
        entry = {"setting": setting, "system": system, "runs": len(rows)}
        for name, path in METRICS.items():
            values = [v for v in (_metric(r, path) for r in rows) if v is not None]
            if values:
                mean = sum(values) / len(values)
                std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
                entry[name] = {"mean": mean, "std": std}
        out.append(entry)
    return out


def _summary_markdown(report) -> list[str]:
    """Means over seeds side by side, with hf-seq minus gensim in points (x100 for accuracies and Spearman)."""
    if len(report.get("seeds", [])) < 2:
        return []
    by_key = {(e["setting"], e["system"].split(" ")[0]): e for e in report["summary"]}
    lines = [f"Mean ± standard deviation over the seeds each setting ran (`runs`; seeds {', '.join(map(str, report['seeds']))}); "
             "accuracies and Spearman in points (x100); diff = hf-seq minus gensim:", "",
             "| setting | system | runs | words/s | analogy total | WS-353 ρ | SimLex ρ | rare pairs ρ |",
             "|---|---|---|---|---|---|---|---|"]
    for setting in dict.fromkeys(e["setting"] for e in report["summary"]):
        pair = [by_key.get((setting, "gensim")), by_key.get((setting, "hf-seq"))]
        for e in pair:
            if e is None:
                continue
            cells = [str(e["runs"]), f"{e['words_per_s']['mean']:,.0f} ± {e['words_per_s']['std']:,.0f}"]
            for m in ("analogy_total", "wordsim353", "simlex999", "rare_pairs"):
                cells.append(f"{100 * e[m]['mean']:.1f} ± {100 * e[m]['std']:.1f}" if m in e else "-")
            lines.append(f"| {setting} | {e['system']} | " + " | ".join(cells) + " |")
        if all(pair):
            diff = ["", f"{pair[1]['words_per_s']['mean'] / pair[0]['words_per_s']['mean']:.2f}x"]
            for m in ("analogy_total", "wordsim353", "simlex999", "rare_pairs"):
                diff.append(f"{100 * (pair[1][m]['mean'] - pair[0][m]['mean']):+.1f}"
                            if m in pair[0] and m in pair[1] else "-")
            lines.append(f"| {setting} | **diff** | " + " | ".join(f"**{d}**" if d else "" for d in diff) + " |")
    return lines + [""]


def _fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def write_markdown(report, path):
    rows = [
        "| setting | system | seed | words/s | train s | peak RSS MB | analogy sem | syn | total | WS-353 ρ | SimLex ρ "
        "| rare ρ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        a = r.get("analogy", {})
        rows.append(
            f"| {r['setting']} | {r['system']} | {r.get('seed', '-')} | {r['words_per_s']:,.0f} | {r['train_seconds']:.1f} | "
            f"{r['peak_rss_mb']:.0f} | {_fmt(a.get('semantic'))} | {_fmt(a.get('syntactic'))} | {_fmt(a.get('total'))} | "
            f"{_fmt(r.get('wordsim353', {}).get('spearman'))} | {_fmt(r.get('simlex999', {}).get('spearman'))} | "
            f"{_fmt(r.get('rare_pairs', {}).get('spearman'))} |"
        )
    ratio_lines = [f"- {k}: hf-seq / gensim words/s = {v:.2f}x" + (" (mean over seeds)" if len(
        report.get("seeds", [])) > 1 else "") for k, v in report["speed_ratio"].items()]
    text = "\n".join(
        [
            "# word2vec: hf-seq vs gensim (same corpus, same settings, same threads, one run)",
            "",
            f"Command: `{report['command']}`",
            "",
            f"Corpus: {report['corpus']} (lower-cased, {report['results'][0]['corpus_words']:,} words), "
            f"{report['epochs']} epochs, vector_size 100, window 5, negative 5 (0 with hs), sample 1e-3, min_count 5, "
            f"alpha {report.get('alpha', 'each system default')} falling to 1e-4, "
            f"{report['threads']} threads each. Machine: {report['platform']}, {report['cpus']} CPUs, load average "
            f"{report['load_before']} before / {report['load_after']} after (shared machine: absolute speeds are "
            "noisy, the pairs ran back to back).",
            "",
            *_summary_markdown(report),
            *rows,
            "",
            *ratio_lines,
            "",
            "hf-seq trainer settings: backend "
            + ", ".join(dict.fromkeys(f"{r['setting']} {r.get('backend', 'torch')}" for r in report["results"]
                                      if "batch_words" in r))
            + "; batch_words "
            + ", ".join(dict.fromkeys(f"{r['setting']} {r['batch_words']}" for r in report["results"]
                                      if "batch_words" in r))
            + ("" if all(r.get("backend") != "torch" for r in report["results"] if "batch_words" in r) else
               f"; negatives_shared_by {report['hf_seq_args']['negatives_shared_by']}, max_row_updates "
               f"{report['hf_seq_args']['max_row_updates']} (torch backend)")
            + "; input vectors from [-r/d, r/d], r = "
            + ", ".join(sorted({str(r["initializer_range"]) for r in report["results"] if "initializer_range" in r}))
            + "; workers as "
            + ", ".join(sorted({r["parallel"] for r in report["results"] if "parallel" in r}))
            + (" (peak RSS of the largest worker: "
               + ", ".join(f"{r['setting']} {r['peak_rss_worker_mb']:.0f} MB" for r in report["results"]
                           if r.get("peak_rss_worker_mb"))
               + "; the vectors are shared with the parent)" if any(r.get("peak_rss_worker_mb") for r in report["results"])
               else "") + ".",
            "Analogies: 3CosAdd over the 30k most frequent words, questions with an unknown word skipped (gensim's "
            "rule); both systems scored by the same code. Peak RSS includes the Python/torch or gensim baseline.",
            (f"Rare-word pairs: the {report['rare_pairs']['pairs']} pairs of WordSim-353 and SimLex-999 with both words "
             f"in the vocabulary and one seen {report['rare_pairs']['counts'][0]}-{report['rare_pairs']['counts'][1]} "
             f"times in the corpus (`{report['rare_pairs']['file']}`)." if report.get("rare_pairs") else ""),
            "",
        ]
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _write_report(report, out):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    write_markdown(report, out + ".md")
    print(open(out + ".md", encoding="utf-8").read())


def merge_reports(paths: list[str], out: str) -> dict:
    """One report from the runs of several (same corpus, epochs, threads and alpha; refused otherwise)."""
    reports = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            reports.append(json.load(f))
    first = reports[0]
    for key in ("corpus", "epochs", "threads", "alpha"):
        values = {json.dumps(r.get(key)) for r in reports}
        if len(values) > 1:
            raise ValueError(f"cannot merge reports with different {key}: {sorted(values)}")
    results = [r for rep in reports for r in rep["results"]]
    ratio = {}
    for setting in dict.fromkeys(r["setting"] for r in results):
        speed = {}
        for name in ("gensim", "hf-seq"):
            values = [r["words_per_s"] for r in results if r["setting"] == setting and r["system"].startswith(name)]
            speed[name] = sum(values) / max(len(values), 1)
        if speed["gensim"]:
            ratio[setting] = speed["hf-seq"] / speed["gensim"]
    report = {**first, "command": " + ".join(rep["command"] for rep in reports)
              + f"; pooled by: python benchmarks/bench_word2vec.py --merge {' '.join(paths)} --out {out}",
              "load_before": [rep["load_before"] for rep in reports], "load_after": [rep["load_after"] for rep in reports],
              "seeds": sorted({s for rep in reports for s in rep.get("seeds", [])}), "speed_ratio": ratio,
              "summary": summarize(results), "results": results, "merged_from": paths}
    _write_report(report, out)
    return report


def add_ablation_arguments(parser: argparse.ArgumentParser, out_name: str, jobs_help: str) -> None:
    """The options the ablation scripts built on this one share (word2vec_ablation.py, word2vec_torch_batch_size.py):
    the corpus, epochs and starting learning rate of every run, how many run at once, where the results go."""
    parser.add_argument("--corpus", default=os.path.join(DATA, "wikitext-2", "wiki.train.tokens"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--alpha", type=float, default=0.025)
    parser.add_argument("--jobs", type=int, default=2, help=jobs_help)
    parser.add_argument("--out", default=os.path.join(RESULTS, out_name))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=os.path.join(DATA, "wikitext-2", "wiki.train.tokens"))
    parser.add_argument("--max-lines", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu",
                        help="where hf-seq trains (cpu, cuda, cuda:1, mps); on an accelerator the torch backend runs "
                             "one worker, gensim still trains on --threads CPU threads")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1],
                        help="one run of each system per seed; with several the report adds means and spreads")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--batch-words", type=int, default=None,
                        help="centre words per batch (default: the trainer's, 1024 skip-gram / 4096 CBOW)")
    parser.add_argument("--backend", choices=("auto", "compiled", "triton", "torch"), default="auto",
                        help="hf-seq trainer: per-pair kernels compiled with numba (CPU) or Triton (CUDA), or batched "
                             "torch updates; auto = compiled on CPU, triton on CUDA")
    parser.add_argument("--gpu-programs", type=int, default=2048,
                        help="triton backend: Hogwild warps per launch")
    parser.add_argument("--negatives-shared-by", type=int, default=None,
                        help="examples sharing one draw of noise words (None: the trainer's default per backend and "
                             "architecture, `default_negatives_shared_by`; 0 = a fresh draw per example, gensim's)")
    parser.add_argument("--max-row-updates", type=float, default=64.0, help="torch backend only")
    parser.add_argument("--alpha", type=float, default=0.025,
                        help="start learning rate of both systems (gensim's default for skip-gram and CBOW alike; "
                             "word2vec.c and hf-seq's own default use 0.05 for CBOW)")
    parser.add_argument("--parallel", choices=("auto", "process", "thread"), default="auto",
                        help="hf-seq workers: forked processes on shared-memory vectors, or threads (auto: threads "
                             "for the compiled backend, processes for torch)")
    parser.add_argument("--initializer-range", type=float, default=None,
                        help="hf-seq input vectors start uniform in [-r/d, r/d] (default: the config's 1.0, gensim "
                             "4's draw; word2vec.c uses 0.5)")
    parser.add_argument("--out", default=os.path.join(RESULTS, "word2vec_vs_gensim"))
    parser.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                        help="train nothing: pool the runs of earlier reports (e.g. seeds 1-4 and 5-8 of the same "
                             "settings) into one report with means over all their seeds, written to --out")
    args = parser.parse_args()
    if args.merge:
        return merge_reports(args.merge, args.out)
    load_before = os.getloadavg()
    args.rare_pairs = args.out + "_rare_pairs.tsv"
    rare = rare_word_pairs(_load_lines(args), args.rare_pairs)
    results, ratio = [], {}
    for setting in args.settings:
        speed = {"gensim": 0.0, "hf-seq": 0.0}
        for seed in args.seeds:
            args.run_seed = seed
            for name, fn in (("gensim", run_gensim), ("hf-seq", run_hf_seq)):
                r = call_in_fresh_process(fn, setting, args)
                print(json.dumps(r), flush=True)
                results.append(r)
                speed[name] += r["words_per_s"] / len(args.seeds)
        ratio[setting] = speed["hf-seq"] / speed["gensim"]
    report = {
        "command": "python " + " ".join(sys.argv),
        "corpus": os.path.relpath(args.corpus, ROOT) + (f" (first {args.max_lines} lines)" if args.max_lines else ""),
        "epochs": args.epochs,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_before": [round(x, 1) for x in load_before],
        "load_after": [round(x, 1) for x in os.getloadavg()],
        "hf_seq_args": {
            "batch_words": args.batch_words,
            "negatives_shared_by": args.negatives_shared_by,
            "max_row_updates": args.max_row_updates,
            "parallel": args.parallel,
            "backend": args.backend,
            "device": args.device,
            "gpu_programs": args.gpu_programs,
            "initializer_range": args.initializer_range,
        },
        "alpha": args.alpha,
        "rare_pairs": {"file": os.path.relpath(args.rare_pairs, ROOT), "pairs": rare, "counts": list(RARE_COUNTS)},
        "seeds": args.seeds,
        "speed_ratio": ratio,
        "summary": summarize(results),
        "results": results,
    }
    _write_report(report, args.out)


if __name__ == "__main__":
    main()

"""Word vectors: the word2vec owner's benchmark (hf-seq word2vec vs gensim, benchmarks/bench_word2vec.py) is not
rerun here; its JSON files in benchmarks/results/ are collected as they are and flattened into tables."""

from __future__ import annotations

import glob
import os

from .common import REPO, read_json

PATTERNS = ("word2vec*.json", "bench_word2vec*.json", "word_vectors*.json")
# the columns that answer the issue (analogy, similarity, words/s), when the file has them; otherwise every column
PREFERRED = ["setting", "system", "words_per_s", "train_seconds", "peak_rss_mb", "analogy.total", "analogy.semantic",
             "analogy.syntactic", "wordsim353.spearman", "simlex999.spearman"]
CONTEXT = ("command", "corpus", "epochs", "threads", "seeds", "load_before", "load_after")
# a file with several seeds per setting (bench_word2vec.py --seeds) is shown by its means and spreads over seeds
SUMMARY = ["setting", "system", "variant", "runs", "words_per_s.mean", "words_per_s.std", "analogy_total.mean",
           "analogy_total.std", "analogy.mean", "analogy.std", "analogy.minus_gensim", "wordsim353.mean",
           "wordsim353.std", "wordsim353.minus_gensim", "simlex999.mean", "simlex999.std", "simlex999.minus_gensim"]


def _rows(obj):
    """The list of flat result rows inside a benchmark JSON: the first list of dicts found (depth first)."""
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        return obj
    if isinstance(obj, dict):
        for key in ("results", "rows", "runs", "models", "systems"):
            if key in obj:
                found = _rows(obj[key])
                if found:
                    return found
        for value in obj.values():
            found = _rows(value)
            if found:
                return found
    return None


def _flatten(row: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[f"{prefix}{k}"] = v
    return out


def run(results_root: str | None = None) -> dict:
    root = results_root or os.path.join(REPO, "benchmarks", "results")
    files = sorted({p for pat in PATTERNS for p in glob.glob(os.path.join(root, pat))})
    tables = []
    for path in files:
        obj = read_json(path)
        multi_seed = isinstance(obj, dict) and len(obj.get("seeds") or []) > 1 and obj.get("summary")
        rows = obj["summary"] if multi_seed else _rows(obj)
        if rows is None and isinstance(obj, dict):
            rows = [obj]
        rows = [_flatten(r) for r in rows or []]
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
        if multi_seed:
            columns = [c for c in SUMMARY if c in columns]
        elif all(c in columns for c in PREFERRED):
            columns = PREFERRED
        context = {k: obj[k] for k in CONTEXT if isinstance(obj, dict) and k in obj}
        tables.append({"file": os.path.relpath(path, REPO), "context": context, "columns": columns, "rows": rows})
    return {"tables": tables,
            "note": None if tables else "no word2vec benchmark JSON in benchmarks/results/ yet "
                                        "(expected from benchmarks/bench_word2vec.py)"}

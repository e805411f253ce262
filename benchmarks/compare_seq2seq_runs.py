"""BLEU by source-length bucket for several translation runs, as one PNG bar chart + a Markdown table.

    python benchmarks/compare_seq2seq_runs.py runs/seq2seq_multi30k_none_cpu_1h runs/seq2seq_multi30k_luong_cpu_1h \
        runs/transformer_multi30k_cpu_1h --out benchmarks/results/seq2seq_multi30k_1h_bleu_by_length

Each argument is a run folder of a translation experiment (`hf-seq train`, task `translation`: its
eval_results.json), or of the former train_seq2seq.py / train_transformer.py (results.json); the legend uses the
model's attention setting ("transformer" for the Transformer).
"""

import argparse
import json
import os

from hf_seq.plotting import plot_bleu_by_length


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", required=True, help="path without extension; writes .png and .md")
    args = parser.parse_args()
    results = {}
    for run in args.runs:
        path = next((os.path.join(run, f) for f in ("eval_results.json", "results.json")
                     if os.path.isfile(os.path.join(run, f))), None)
        if path is None:
            raise SystemExit(f"{run}: no eval_results.json (is it a finished translation run folder?)")
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        m = r["model"]
        if r.get("architecture") == "transformer" or "attention" not in m:  # the Transformer
            name = "transformer"
        else:
            name = m["attention"] if m["attention"] != "luong" else f"luong-{m['attention_score']}"
        results[f"{name} ({r['test_bleu']} BLEU)"] = r
    runs = {name: r["test_bleu_by_source_length"] for name, r in results.items()}
    first = next(iter(results.values()))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    plot_bleu_by_length(runs, args.out + ".png", title=f"{first['dataset']} {first['direction']}: BLEU by source length")
    buckets = [row["bucket"] for row in next(iter(runs.values()))]
    lines = [
        f"# BLEU by source length ({first['dataset']} {first['direction']}, test set, sacreBLEU on detokenized text)",
        "",
        "| system | " + " | ".join(f"{b} words (n={row['sentences']})" for b, row in zip(buckets, next(iter(runs.values())))) + " | all |",
        "|---" * (len(buckets) + 2) + "|",
    ]
    for name, r in results.items():
        cells = [str(row["bleu"]) for row in r["test_bleu_by_source_length"]]
        lines.append(f"| {name.split(' (')[0]} | " + " | ".join(cells) + f" | {r['test_bleu']} |")
    lines += ["", f"Runs: {', '.join(args.runs)}. Signature: `{first['test_bleu_signature']}`."]
    with open(args.out + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

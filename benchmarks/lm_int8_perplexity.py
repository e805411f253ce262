"""Perplexity of a trained recurrent language model through every export path: eager, torch dynamic int8, ONNX Runtime
fp32 and int8 (issue #21, point 3: "report quality loss (perplexity) next to the speed-up"; target: int8 within 2 %).

    # 1. train the README's main job (a character LSTM on the embedded Time Machine, ~2 CPU-minutes)
    OMP_NUM_THREADS=1 hf-seq train lstm_timemachine training.output_dir=/tmp/lstm_tm
    # (and gru_timemachine, rnn_timemachine the same way, into /tmp/gru_tm and /tmp/rnn_tm)
    # 2. score their test split through each path
    OMP_NUM_THREADS=1 python benchmarks/lm_int8_perplexity.py /tmp/lstm_tm=lstm_timemachine \
        /tmp/gru_tm=gru_timemachine /tmp/rnn_tm=rnn_timemachine --output benchmarks/results/lm_int8_perplexity.json

Every path reads the same test token stream (the experiment's own split and tokenizer) left to right in one pass with
the recurrent state carried over the whole stream: eager and torch int8 in one forward call, ONNX Runtime one
token per call through the exported step graph with its explicit state (its runner's `forward`, as `generate()` calls
it). Perplexity = exp(mean next-token NLL) over the stream.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.data import load_text_splits, stream, tokenize_lines
from hf_seq.export import load_runner, quantize_dynamic_int8, to_onnx
from hf_seq.io_utils import write_json_atomic
from hf_seq.training.experiment import load_experiment


def _nll(logits: torch.Tensor, ids: torch.Tensor) -> float:
    """Mean next-token NLL; logits (T, V) predict ids[1:]."""
    return torch.nn.functional.cross_entropy(logits[:-1].float(), ids[1:]).item()


def _torch_path(model, ids):
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(input_ids=ids[None]).logits[0]
    return _nll(logits, ids), time.perf_counter() - start


def _onnx_path(folder, ids):
    runner = load_runner(folder, num_threads=1)
    cache, rows = None, []
    start = time.perf_counter()
    with torch.no_grad():
        for t in range(len(ids)):
            out = runner(input_ids=ids[None, t : t + 1], cache=cache)
            cache = out.cache
            rows.append(out.logits[0, -1])
    return _nll(torch.stack(rows), ids), time.perf_counter() - start


def score(run: str, experiment: str, overrides: list[str], split: str, max_tokens: int | None) -> dict:
    exp = load_experiment(experiment, overrides=overrides)
    data = exp.data
    raw = load_text_splits(data.train_files, data.validation_files, data.test_files, data.dataset_name,
                           data.dataset_config)
    tokenizer = AutoTokenizer.from_pretrained(run)
    ids = torch.from_numpy(stream(tokenize_lines(raw, tokenizer, data.line_separator)[split]))
    if max_tokens:
        ids = ids[:max_tokens]
    model = AutoModelForCausalLM.from_pretrained(run).eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_fp32, onnx_int8 = os.path.join(tmp, "fp32"), os.path.join(tmp, "int8")
        to_onnx(run, onnx_fp32)
        to_onnx(run, onnx_int8, quantize="int8")
        paths = [
            ("eager fp32", lambda: _torch_path(model, ids)),
            # nn.RNN (Elman) has no quantized kernel: torch int8 then quantizes its Linear layers only
            ("torch dynamic int8", lambda: _torch_path(quantize_dynamic_int8(model), ids)),
            ("ONNX Runtime fp32", lambda: _onnx_path(onnx_fp32, ids)),
            ("ONNX Runtime int8", lambda: _onnx_path(onnx_int8, ids)),
        ]
        for name, run_path in paths:
            nll, seconds = run_path()
            rows.append({"path": name, "perplexity": round(math.exp(nll), 4), "seconds": round(seconds, 2)})
    for row in rows:
        row["vs eager %"] = round(100 * (row["perplexity"] / rows[0]["perplexity"] - 1), 2)
    return {"run": run, "experiment": experiment, "model_type": model.config.model_type,
            "parameters": sum(p.numel() for p in model.parameters()), "split": split, "tokens": len(ids),
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="RUN_FOLDER=EXPERIMENT: a trained language model and the experiment "
                        "that trained it (its data and split)")
    parser.add_argument("--set", nargs="*", default=[], help="experiment overrides, section.key=value")
    parser.add_argument("--split", default="test", choices=["validation", "test"])
    parser.add_argument("--max-tokens", type=int, default=None, help="score the first N tokens of the split only")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    for item in args.runs:
        if "=" not in item:
            parser.error(f"expected RUN_FOLDER=EXPERIMENT, got {item!r}")

    models = [score(*item.split("=", 1), args.set, args.split, args.max_tokens) for item in args.runs]
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/lm_int8_perplexity.py " + " ".join(args.runs)
        + (" --set " + " ".join(args.set) if args.set else "")
        + (f" --max-tokens {args.max_tokens}" if args.max_tokens else "") + f" --split {args.split}",
        "threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "torch": torch.__version__,
        "models": models,
    }
    lines = ["| model | parameters | tokens | path | perplexity | vs eager | seconds |", "|---|---|---|---|---|---|---|"]
    for m in models:
        lines += [f"| {m['model_type']} | {m['parameters']:,} | {m['tokens']:,} | {r['path']} | {r['perplexity']:.3f} "
                  f"| {r['vs eager %']:+.2f} % | {r['seconds']} |" for r in m["rows"]]
    print("\n".join(lines))  # the table, for the result page
    if args.output:
        write_json_atomic(args.output, result)


if __name__ == "__main__":
    main()

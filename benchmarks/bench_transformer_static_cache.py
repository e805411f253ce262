"""Batch-1 greedy `generate()` of hf-seq's Transformer: dynamic cache vs static cache vs static cache + torch.compile.

    OMP_NUM_THREADS=1 python benchmarks/bench_transformer_static_cache.py               # ~2 min on a busy 2-core box
    python benchmarks/bench_transformer_static_cache.py --repeats 9 --new-tokens 32

Random-init models (no download) at d_model 256, d_ff 1024, 4 heads, 3+3 layers (3 for the decoder-only LM),
vocab 8000; one source / prompt of `--prompt-length` tokens; exactly `--new-tokens` new tokens
(`min_new_tokens = max_new_tokens`). Three ways to run the same `generate()`:

- eager dynamic: the default (`DynamicCache`, growing keys/values);
- eager static: `cache_implementation="static"` (keys/values preallocated to the final length, 4-D masks built by
  generate);
- compiled static: the same, with the decode step compiled by transformers (`compile_config`, inductor,
  fullgraph). transformers compiles the decode step automatically only on GPUs/TPUs/MPS: on CPU a `compile_config`
  alone is refused with a warning, so its private `_compile_all_devices` flag is set (as transformers' own tests do).
  Compilation happens in an untimed warm-up call.

Modes run interleaved (A, B, C, A, B, C, ...) so that load from other processes hits each alike; the median over
repeats is reported, with the load average before and after. The machine is shared: only the ratios count. Every
mode must give exactly the tokens of eager dynamic (checked, reported).

Results: benchmarks/results/transformer_static_cache.json and .md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch
import transformers
from transformers import CompileConfig

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's hf_seq, not whichever one is installed
from hf_seq.io_utils import write_json_atomic  # noqa: E402
from hf_seq.models.transformer import (  # noqa: E402
    TransformerConfig,
    TransformerDecoderConfig,
    TransformerForCausalLM,
    TransformerForConditionalGeneration,
)

DIMS = dict(d_model=256, d_ff=1024, num_heads=4, vocab_size=8000, dropout=0.0, max_position_embeddings=512)


def build(kind: str):
    torch.manual_seed(0)
    if kind == "encoder-decoder":
        config = TransformerConfig(**DIMS, encoder_layers=3, decoder_layers=3)
        return TransformerForConditionalGeneration(config).eval()
    return TransformerForCausalLM(TransformerDecoderConfig(**DIMS, decoder_layers=3)).eval()


def modes() -> dict[str, dict]:
    compile_config = CompileConfig(fullgraph=True, dynamic=False, mode="default")
    compile_config._compile_all_devices = True  # CPU: see the module docstring
    return {
        "eager dynamic": {},
        "eager static": {"cache_implementation": "static", "disable_compile": True},
        "compiled static": {"cache_implementation": "static", "compile_config": compile_config},
    }


def bench(kind: str, repeats: int, new_tokens: int, prompt_length: int) -> dict:
    model = build(kind)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, DIMS["vocab_size"], (1, prompt_length), generator=g)
    common = dict(input_ids=ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1)
    settings = modes()
    with torch.inference_mode():
        warm = {}
        for name, extra in settings.items():  # warm-up (and compilation), untimed
            start = time.perf_counter()
            warm[name] = (model.generate(**common, **extra), time.perf_counter() - start)
        times = {name: [] for name in settings}
        for _ in range(repeats):
            for name, extra in settings.items():
                start = time.perf_counter()
                out = model.generate(**common, **extra)
                times[name].append(time.perf_counter() - start)
                if not torch.equal(out, warm["eager dynamic"][0]):
                    raise AssertionError(f"{kind}: {name} gave other tokens than eager dynamic")
    base = statistics.median(times["eager dynamic"])
    rows = {}
    for name in settings:
        med = statistics.median(times[name])
        rows[name] = {
            "median_s": round(med, 5),
            "tokens_per_s": round(new_tokens / med, 1),
            "speedup_vs_eager_dynamic": round(base / med, 3),
            "first_call_s": round(warm[name][1], 2),
            "same_tokens_as_eager_dynamic": bool(torch.equal(warm[name][0], warm["eager dynamic"][0])),
            "all_s": [round(t, 5) for t in times[name]],
        }
    return rows


def write_markdown(result: dict, path: str) -> None:
    lines = [
        "# hf-seq Transformer: static KV cache and torch.compile (batch 1, greedy)",
        "",
        f"Command: `{result['command']}`",
        "",
        f"{result['started']} · torch {result['torch']} · transformers {result['transformers']} · "
        f"{result['threads']} thread(s) · {result['repeats']} interleaved repeats, median · "
        f"{result['new_tokens']} new tokens, prompt {result['prompt_length']} tokens · "
        f"load average before {result['loadavg_before']}, after {result['loadavg_after']} "
        "(shared machine: only the ratios count)",
        "",
        "Model: d_model 256, d_ff 1024, 4 heads, 3+3 layers (decoder-only: 3), vocab 8000, random init.",
        "",
        "| model | mode | tokens/s | x eager dynamic | first call (s) | same tokens |",
        "|---|---|---:|---:|---:|---|",
    ]
    for kind, rows in result["results"].items():
        for name, row in rows.items():
            lines.append(
                f"| {kind} | {name} | {row['tokens_per_s']} | {row['speedup_vs_eager_dynamic']} | "
                f"{row['first_call_s']} | {row['same_tokens_as_eager_dynamic']} |"
            )
    lines += [
        "",
        "First call: the untimed warm-up; for the compiled mode it includes compilation, shorter when inductor's "
        "on-disk cache already holds the graph from an earlier run.",
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-length", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["encoder-decoder", "decoder-only"])
    parser.add_argument("--out", default=os.path.join(HERE, "results", "transformer_static_cache"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    result = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/bench_transformer_static_cache.py "
        f"--repeats {args.repeats} --new-tokens {args.new_tokens} --prompt-length {args.prompt_length} "
        f"--threads {args.threads} --models {' '.join(args.models)}",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "threads": args.threads,
        "repeats": args.repeats,
        "new_tokens": args.new_tokens,
        "prompt_length": args.prompt_length,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "hf_seq_from": os.path.dirname(sys.modules["hf_seq"].__file__),
    }
    start = time.perf_counter()
    result["results"] = {kind: bench(kind, args.repeats, args.new_tokens, args.prompt_length) for kind in args.models}
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_json_atomic(args.out + ".json", result)
    write_markdown(result, args.out + ".md")


if __name__ == "__main__":
    main()

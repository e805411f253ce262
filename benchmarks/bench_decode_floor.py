"""How far batch-1 decoding is from its weight-read floor (issue 21): for the recurrent LMs and the Transformer of
bench_inference.py, the time of one decode token's weight products alone against eager generate() and ONNX Runtime.

    python benchmarks/bench_decode_floor.py            # writes benchmarks/results/decode_floor.{json,md}
    python benchmarks/bench_decode_floor.py --quick    # tiny sizes, results to a temp folder (smoke test)

At batch 1 a decode token multiplies one row by every decoder weight matrix once: the work is reading the weights.
The floor here is the time of exactly those one-row products (`F.linear` of a (1, in) row by each (out, in) fp32
matrix a token reads, back to back, one thread, nothing else), the fastest this core reads the weights through MKL.
An engine that computes in fp32 reads the same bytes, so `eager / floor` bounds what any fp32 engine (ONNX Runtime,
CTranslate2 fp32) can gain over eager generate() at batch 1; int8 reads a quarter of the bytes and is not bound by it.
Eager and ONNX Runtime run interleaved in one process (median of `--repeats`), greedy, 32 new tokens after a 10-token
prompt (end tokens suppressed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def _decode_weights(model) -> list:
    """The (out, in) fp32 matrices one batch-1 decode token reads (embedding rows are one row each: left out)."""
    import torch

    mats = []
    if hasattr(model.model, "layers") and hasattr(model.model.layers[0], "rnn"):  # recurrent LM
        for layer in model.model.layers:
            rnn = layer.rnn
            for name in ("weight_ih_l0", "weight_hh_l0"):
                mats.append(getattr(rnn, name).detach())
        if model.projection is not None:
            mats.append(model.projection.weight.detach())
    else:  # Transformer decoder
        decoder = model.get_decoder()
        for layer in decoder.layers:
            sa, ca, ffn = layer.self_attn, getattr(layer, "encoder_attn", None), layer.ffn
            mats.append(torch.cat([sa.q_proj.weight, sa.k_proj.weight, sa.v_proj.weight]).detach())
            mats.append(sa.out_proj.weight.detach())
            if ca is not None:
                mats += [ca.q_proj.weight.detach(), ca.out_proj.weight.detach()]
            mats += [ffn.fc1.weight.detach(), ffn.fc2.weight.detach()]
    mats.append(model.lm_head.weight.detach())
    return [m.contiguous() for m in mats]


def _floor_ms(mats, repeats: int) -> float:
    """Median time (ms) of the one-row products by every matrix in `mats`, back to back."""
    import torch
    import torch.nn.functional as F

    rows = [torch.randn(1, m.shape[1]) for m in mats]
    for _ in range(20):
        for x, m in zip(rows, mats):
            F.linear(x, m)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(50):
            for x, m in zip(rows, mats):
                F.linear(x, m)
        times.append((time.perf_counter() - t0) / 50 * 1000)
    return statistics.median(times)


def measure(args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    import hf_seq
    from hf_seq.export import load_runner, to_onnx

    torch.set_num_threads(1)
    hidden, vocab = (32, 500) if args.quick else (650, 10000)
    work = tempfile.mkdtemp(prefix="decode_floor_")
    rows = []
    for kind in ("lstm", "gru", "rnn", "transformer"):
        torch.manual_seed(0)
        if kind == "transformer":
            d = 32 if args.quick else 256
            config = hf_seq.TransformerConfig(vocab_size=8000 if not args.quick else 500, hidden_size=d,
                                              intermediate_size=4 * d, num_attention_heads=4, encoder_layers=3,
                                              decoder_layers=3)  # fmt: skip
            model = AutoModelForSeq2SeqLM.from_config(config).eval()
            prompt = torch.randint(4, config.vocab_size, (1, 16))
        else:
            config_class = {"lstm": hf_seq.LSTMConfig, "gru": hf_seq.GRUConfig, "rnn": hf_seq.RNNConfig}[kind]
            model = AutoModelForCausalLM.from_config(
                config_class(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=2)
            ).eval()
            prompt = torch.randint(4, vocab, (1, 10))
        folder = os.path.join(work, kind)
        model.save_pretrained(folder)
        runner = load_runner(to_onnx(folder, folder + "_onnx"), num_threads=1)
        mats = _decode_weights(model)
        megabytes = sum(m.numel() for m in mats) * 4 / 2**20
        n = args.new_tokens
        kwargs = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False)
        paths = {"eager": model, "ONNX Runtime": runner}
        times = {p: [] for p in paths}
        with torch.no_grad():
            for m in paths.values():
                m.generate(input_ids=prompt, **kwargs)
            for r in range(args.repeats):
                for p in list(paths)[r % 2 :] + list(paths)[: r % 2]:
                    t0 = time.perf_counter()
                    paths[p].generate(input_ids=prompt, **kwargs)
                    times[p].append((time.perf_counter() - t0) / n * 1000)
        floor = _floor_ms(mats, args.repeats)
        eager, ort = statistics.median(times["eager"]), statistics.median(times["ONNX Runtime"])
        rows.append(dict(model=kind, weights_mb=megabytes, floor_ms=floor, floor_gb_s=megabytes / 1024 / floor * 1000,
                         eager_ms=eager, ort_ms=ort, ort_over_eager=eager / ort, eager_over_floor=eager / floor,
                         ort_over_floor=ort / floor))  # fmt: skip
        sys.stderr.write(f"{kind}: floor {floor:.3f} ms, eager {eager:.3f} ms, ORT {ort:.3f} ms per token\n")
    return {"rows": rows}


def write(data, args, out_dir, elapsed):
    import torch

    meta = {"command": "python benchmarks/bench_decode_floor.py" + (" --quick" if args.quick else ""),
            "machine": f"{platform.machine()}, {platform.processor() or '?'}, {os.cpu_count()} logical CPUs",
            "cpu": _cpu_name(), "torch": torch.__version__, "elapsed_s": round(elapsed, 1),
            "new_tokens": args.new_tokens, "repeats": args.repeats}  # fmt: skip
    data["meta"] = meta
    lines = [
        "# Batch-1 decoding against its weight-read floor",
        "",
        f"`{meta['command']}` — {meta['cpu']}, one thread, torch {torch.__version__}; {elapsed / 60:.1f} min. "
        "Floor: the one-row fp32 products by every weight matrix a decode token reads, back to back (see the "
        "script's docstring). Eager and ONNX Runtime: generate(), greedy, batch 1, "
        f"{args.new_tokens} new tokens, interleaved, median of {args.repeats}. `eager / floor` is the most any fp32 "
        "engine can gain over eager at batch 1 (it reads the same bytes).",
        "",
        "| model | fp32 weights read per token (MB) | floor ms/token | floor GB/s | eager ms/token | ONNX Runtime "
        "ms/token | ONNX Runtime / eager (speed) | eager / floor | ONNX Runtime / floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(f"| {r['model']} | {r['weights_mb']:.1f} | {r['floor_ms']:.3f} | {r['floor_gb_s']:.1f} | "
                     f"{r['eager_ms']:.3f} | {r['ort_ms']:.3f} | {r['ort_over_eager']:.2f}x | "
                     f"{r['eager_over_floor']:.2f} | {r['ort_over_floor']:.2f} |")  # fmt: skip
    lines.append("")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "decode_floor.json"), "w") as f:
        json.dump(data, f, indent=2)
    with open(os.path.join(out_dir, "decode_floor.md"), "w") as f:
        f.write("\n".join(lines))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--quick", action="store_true", help="tiny sizes, results to a temp folder (smoke test)")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 3)
    out_dir = args.out or (tempfile.mkdtemp(prefix="decode_floor_out_") if args.quick else RESULTS)
    started = time.perf_counter()
    data = measure(args)
    write(data, args, out_dir, time.perf_counter() - started)
    sys.stderr.write(f"results in {out_dir}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Inference speed side by side (issue #21): hf-seq eager / compiled / ONNX Runtime / CTranslate2 (fp32, int8) against
transformers' MarianMTModel and Marian → CTranslate2, at the same dimensions and random weights; plus the recurrent
LMs eager vs ONNX Runtime (and int8) at batch 1.

    python benchmarks/bench_inference.py            # writes benchmarks/results/inference_speed.{json,md}
    python benchmarks/bench_inference.py --quick    # a smoke run (tiny sizes), results to a temp folder

Every row runs in a fresh `python` process with OMP_NUM_THREADS (and the engine's own thread setting) at the row's
thread count, and reports new tokens/s (every run generates exactly `--new-tokens` tokens: end tokens are
suppressed) and the process's peak RSS. Quality: with random weights there is no BLEU to report; the table gives the
share of batch-32 greedy outputs identical, token for token, to the eager model of the same family.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
SEQ2SEQ_PATHS = ["hf-seq eager", "hf-seq compiled", "hf-seq ONNX Runtime", "hf-seq CTranslate2 fp32",
                 "hf-seq CTranslate2 int8", "Marian eager", "Marian CTranslate2 fp32"]  # fmt: skip
LM_PATHS = ["eager", "eager int8 (torch dynamic)", "ONNX Runtime", "ONNX Runtime int8"]


def _dims(quick: bool) -> dict:
    if quick:
        return dict(vocab=500, d_model=32, d_ff=64, heads=4, layers=1, lm_hidden=32, lm_vocab=500)
    return dict(vocab=8000, d_model=256, d_ff=1024, heads=4, layers=3, lm_hidden=650, lm_vocab=10000)


def _spread(model, seed=1):
    """Random weights wide enough that greedy decoding varies between sentences (checks agreement meaningfully)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) * 1.5 / p.shape[1] ** 0.5)
    return model.eval()


# --- preparation (parent process) ----------------------------------------------------------------------------------
def prepare(work: str, dims: dict) -> None:
    import torch
    from transformers import MarianConfig, MarianMTModel

    import hf_seq
    from hf_seq.export import to_ctranslate2, to_onnx

    torch.manual_seed(0)
    cfg = hf_seq.TransformerConfig(vocab_size=dims["vocab"], hidden_size=dims["d_model"],
                                   intermediate_size=dims["d_ff"], num_attention_heads=dims["heads"],
                                   encoder_layers=dims["layers"], decoder_layers=dims["layers"], dropout=0.0,
                                   max_position_embeddings=256)  # fmt: skip
    model = _spread(hf_seq.TransformerForConditionalGeneration(cfg))
    model.save_pretrained(f"{work}/hfseq")
    to_ctranslate2(model, f"{work}/hfseq_ct2")
    to_ctranslate2(model, f"{work}/hfseq_ct2_int8", quantization="int8")
    to_onnx(model, f"{work}/hfseq_onnx")

    mcfg = MarianConfig(vocab_size=dims["vocab"], d_model=dims["d_model"], encoder_ffn_dim=dims["d_ff"],
                        decoder_ffn_dim=dims["d_ff"], encoder_layers=dims["layers"], decoder_layers=dims["layers"],
                        encoder_attention_heads=dims["heads"], decoder_attention_heads=dims["heads"],
                        max_position_embeddings=256, pad_token_id=dims["vocab"] - 1, eos_token_id=2, bos_token_id=1,
                        decoder_start_token_id=dims["vocab"] - 1, forced_eos_token_id=None, scale_embedding=True,
                        dropout=0.0, share_encoder_decoder_embeddings=True)  # fmt: skip
    marian = _spread(MarianMTModel(mcfg))
    marian.save_pretrained(f"{work}/marian")
    tok = _word_tokenizer(dims["vocab"])
    tok.save_pretrained(f"{work}/marian")
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(f"{work}/marian").convert(f"{work}/marian_ct2", force=True)

    for kind in ("lstm", "gru", "rnn"):
        cls = {"lstm": hf_seq.LSTMForCausalLM, "gru": hf_seq.GRUForCausalLM, "rnn": hf_seq.RNNForCausalLM}[kind]
        conf = {"lstm": hf_seq.LSTMConfig, "gru": hf_seq.GRUConfig, "rnn": hf_seq.RNNConfig}[kind]
        lm = cls(conf(vocab_size=dims["lm_vocab"], hidden_size=dims["lm_hidden"], embedding_size=dims["lm_hidden"],
                      num_hidden_layers=2, initializer_range=0.1)).eval()  # fmt: skip
        lm.save_pretrained(f"{work}/{kind}")
        to_onnx(lm, f"{work}/{kind}_onnx")
        to_onnx(lm, f"{work}/{kind}_onnx_int8", quantize="int8")


def _word_tokenizer(vocab: int):
    """A word-level tokenizer with exactly `vocab` tokens, `<pad>` last as in Marian vocabularies (CTranslate2's Marian
    loader drops that row: the decoder starts from a zero embedding instead), for the Marian → CTranslate2 converter."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<bos>", "<eos>"] + [f"w{i}" for i in range(3, vocab - 1)] + ["<pad>"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<eos>")  # fmt: skip


# --- one row (child process) ---------------------------------------------------------------------------------------
def _sources(batch: int, vocab: int, seed: int = 0) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    return [[rng.randrange(4, vocab) for _ in range(rng.randint(8, 24))] for _ in range(batch)]


def _padded(sources):
    import torch

    S = max(len(s) for s in sources)
    ids = torch.ones(len(sources), S, dtype=torch.long)
    mask = torch.zeros(len(sources), S, dtype=torch.long)
    for i, s in enumerate(sources):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def _seq2seq_runner(path: str, work: str, threads: int):
    """A function (sources, beams, new_tokens) -> list of generated id lists, for one path."""
    import torch

    torch.set_num_threads(threads)
    if path.endswith("CTranslate2 fp32") or path.endswith("CTranslate2 int8"):
        import ctranslate2

        folder = {"hf-seq CTranslate2 fp32": "hfseq_ct2", "hf-seq CTranslate2 int8": "hfseq_ct2_int8",
                  "Marian CTranslate2 fp32": "marian_ct2"}[path]  # fmt: skip
        translator = ctranslate2.Translator(f"{work}/{folder}", device="cpu", intra_threads=threads, inter_threads=1)
        marian = path.startswith("Marian")  # tokens: the ids as strings for hf-seq exports, w{id} for Marian's

        def tok(i):
            return f"w{i}" if marian else str(i)  # sources hold ids 4 .. vocab-2 only

        def untok(t):
            return int(t[1:]) if marian and t.startswith("w") else (int(t) if not marian else -1)

        def run(sources, beams, n):
            res = translator.translate_batch([[tok(i) for i in s] for s in sources], beam_size=beams,
                                             max_decoding_length=n, min_decoding_length=n)  # fmt: skip
            return [[untok(t) for t in r.hypotheses[0]] for r in res]

        return run
    if path == "hf-seq ONNX Runtime":
        from hf_seq.export import load_runner

        model = load_runner(f"{work}/hfseq_onnx", num_threads=threads)
    elif path.startswith("Marian"):
        from transformers import MarianMTModel

        model = MarianMTModel.from_pretrained(f"{work}/marian").eval()
    else:
        from transformers import AutoModelForSeq2SeqLM

        import hf_seq  # noqa: F401  (registers the Auto classes)

        model = AutoModelForSeq2SeqLM.from_pretrained(f"{work}/hfseq").eval()
        if path == "hf-seq compiled":
            model.forward = torch.compile(model.forward, dynamic=True)

    def run(sources, beams, n):
        ids, mask = _padded(sources)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, num_beams=beams, max_new_tokens=n,
                                 min_new_tokens=n, do_sample=False)  # fmt: skip
        return [row[1:].tolist() for row in out]

    return run


def _lm_runner(path: str, kind: str, work: str, threads: int):
    import torch

    torch.set_num_threads(threads)
    if path.startswith("ONNX"):
        from hf_seq.export import load_runner

        model = load_runner(f"{work}/{kind}_onnx" + ("_int8" if "int8" in path else ""), num_threads=threads)
    else:
        from transformers import AutoModelForCausalLM

        import hf_seq  # noqa: F401

        model = AutoModelForCausalLM.from_pretrained(f"{work}/{kind}").eval()
        if "int8" in path:
            from hf_seq.export import quantize_dynamic_int8

            model = quantize_dynamic_int8(model, inplace=True)

    def run(prompt, n):
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return out[0, len(prompt) :].tolist()

    return run


def _timed(fn, repeats: int):
    fn()  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], out


def run_row(args) -> dict:
    work, threads, n, repeats = args.work, args.threads, args.new_tokens, args.repeats
    dims = _dims(args.quick)
    result = {"path": args.row, "threads": threads, "cells": {}}
    t0 = time.perf_counter()
    if args.family == "seq2seq":
        run = _seq2seq_runner(args.row, work, threads)
        result["load_s"] = time.perf_counter() - t0
        for batch in (1, 32):
            sources = _sources(batch, dims["vocab"])
            for beams in (1, 4):
                seconds, out = _timed(lambda s=sources, b=beams: run(s, b, n), repeats)
                cell = {"seconds": seconds, "tokens_per_s": batch * n / seconds}
                if batch == 32 and beams == 1:
                    result["greedy_batch32"] = out
                result["cells"][f"b{batch}_beam{beams}"] = cell
    else:
        run = _lm_runner(args.row, args.family, work, threads)
        result["load_s"] = time.perf_counter() - t0
        prompt = _sources(1, dims["lm_vocab"], seed=1)[0][:10]
        seconds, out = _timed(lambda: run(prompt, n), repeats)
        result["cells"]["b1_greedy"] = {"seconds": seconds, "tokens_per_s": n / seconds}
        result["greedy"] = out
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM restarts at exec; ru_maxrss would carry the parent's peak over the fork."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- driver --------------------------------------------------------------------------------------------------------
def spawn(args, family: str, path: str, threads: int, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--row", path, "--family", family, "--threads", str(threads),
           "--work", args.work, "--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats)]  # fmt: skip
    if args.quick:
        cmd.append("--quick")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")  # fmt: skip
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"path": path, "threads": threads, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"path": path, "threads": threads, "error": f"exit {proc.returncode}: {last[:300]}"}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["wall_s"] = time.perf_counter() - t0
    return row


def agreement(a, b) -> float | None:
    if a is None or b is None:
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)


def write_results(rows, lm_rows, args, out_dir, started, elapsed) -> None:
    import ctranslate2
    import onnxruntime
    import torch
    import transformers

    dims = _dims(args.quick)
    ref = {t: next((r.get("greedy_batch32") for r in rows if r["path"] == "hf-seq eager" and r["threads"] == t), None)
           for t in args.thread_list}  # fmt: skip
    marian_ref = {t: next((r.get("greedy_batch32") for r in rows if r["path"] == "Marian eager" and r["threads"] == t),
                          None) for t in args.thread_list}  # fmt: skip
    for r in rows:
        base = marian_ref if r["path"].startswith("Marian") else ref
        r["greedy_agreement_with_eager"] = agreement(r.get("greedy_batch32"), base[r["threads"]])
    lm_ref = {(r["family"], r["threads"]): r.get("greedy") for r in lm_rows if r["path"] == "eager"}
    for r in lm_rows:
        g, e = r.get("greedy"), lm_ref.get((r["family"], r["threads"]))
        r["greedy_token_agreement"] = None if g is None or e is None else sum(x == y for x, y in zip(g, e)) / len(e)
    meta = {
        "command": "python benchmarks/bench_inference.py" + (" --quick" if args.quick else ""),
        "started": started, "elapsed_s": round(elapsed, 1), "load_average_end": os.getloadavg(),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs (shared: only ratios count)",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "ctranslate2": ctranslate2.__version__, "onnxruntime": onnxruntime.__version__},
        "dims": dims, "new_tokens": args.new_tokens, "repeats": args.repeats,
    }  # fmt: skip
    data = {"meta": meta, "seq2seq": rows, "recurrent_lm": lm_rows}
    for r in rows + lm_rows:
        r.pop("greedy_batch32", None)
        r.pop("greedy", None)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "inference_speed.json.tmp"), "w") as f:
        json.dump(data, f, indent=2)
    os.replace(os.path.join(out_dir, "inference_speed.json.tmp"), os.path.join(out_dir, "inference_speed.json"))

    def cell(r, key):
        if "error" in r:
            return "–"
        return f"{r['cells'][key]['tokens_per_s']:.0f}"

    lines = [
        "# Inference speed: hf-seq eager / compiled / ONNX Runtime / CTranslate2 vs MarianMTModel and Marian → CT2",
        "",
        f"`{meta['command']}` — {meta['machine']}; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"ctranslate2 {ctranslate2.__version__}, onnxruntime {onnxruntime.__version__}. Random weights, "
        f"d_model {dims['d_model']}, d_ff {dims['d_ff']}, {dims['heads']} heads, {dims['layers']}+{dims['layers']} "
        f"layers, vocab {dims['vocab']}; sources of 8-24 random tokens; exactly {args.new_tokens} new tokens per "
        f"sentence (end token suppressed); median of {args.repeats} runs after a warm-up; every row in a fresh process "
        f"with OMP_NUM_THREADS = threads. Total {elapsed / 60:.1f} min, load average at the end "
        f"{tuple(round(x, 1) for x in meta['load_average_end'])}: the machine is shared, so only ratios within one "
        "run mean anything.",
        "",
        "New tokens/s (higher is better); peak RSS of the row's process (model load + all four cells).",
        "",
        "| path | threads | greedy b1 | beam4 b1 | greedy b32 | beam4 b32 | peak RSS MB | greedy b32 = eager |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['path']} | {r['threads']} | failed: {r['error']} | | | | | |")
            continue
        agree = r["greedy_agreement_with_eager"]
        lines.append(f"| {r['path']} | {r['threads']} | {cell(r, 'b1_beam1')} | {cell(r, 'b1_beam4')} | "
                     f"{cell(r, 'b32_beam1')} | {cell(r, 'b32_beam4')} | {r['peak_rss_mb']:.0f} | "
                     f"{'–' if agree is None else f'{agree:.0%}'} |")  # fmt: skip
    lines += ["", "Ratios (same threads, same run):", "", "| ratio | threads | greedy b1 | beam4 b1 | greedy b32 | beam4 b32 |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    pairs = [("hf-seq CTranslate2 fp32", "Marian CTranslate2 fp32"), ("hf-seq CTranslate2 fp32", "hf-seq eager"),
             ("hf-seq CTranslate2 int8", "hf-seq eager"), ("hf-seq ONNX Runtime", "hf-seq eager"),
             ("hf-seq compiled", "hf-seq eager"), ("hf-seq eager", "Marian eager"),
             ("Marian CTranslate2 fp32", "Marian eager")]  # fmt: skip
    ratios = {}
    for a, b in pairs:
        for t in args.thread_list:
            ra = next((r for r in rows if r["path"] == a and r["threads"] == t and "error" not in r), None)
            rb = next((r for r in rows if r["path"] == b and r["threads"] == t and "error" not in r), None)
            if ra is None or rb is None:
                continue
            vals = [ra["cells"][k]["tokens_per_s"] / rb["cells"][k]["tokens_per_s"]
                    for k in ("b1_beam1", "b1_beam4", "b32_beam1", "b32_beam4")]  # fmt: skip
            ratios[f"{a} / {b} @{t}"] = vals
            lines.append(f"| {a} / {b} | {t} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    data["ratios"] = ratios
    lines += ["", f"Recurrent LMs (2 layers, hidden {dims['lm_hidden']}, vocab {dims['lm_vocab']}), batch 1, greedy "
              f"{args.new_tokens} new tokens after a 10-token prompt, transformers' generate() on every path:", "",
              "| model | path | threads | new tokens/s | x eager | peak RSS MB | tokens = eager |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in lm_rows:
        if "error" in r:
            lines.append(f"| {r['family']} | {r['path']} | {r['threads']} | failed: {r['error']} | | | |")
            continue
        eager = next((e for e in lm_rows if e["family"] == r["family"] and e["path"] == "eager"
                      and e["threads"] == r["threads"] and "error" not in e), None)  # fmt: skip
        speed = r["cells"]["b1_greedy"]["tokens_per_s"]
        x = "–" if eager is None else f"{speed / eager['cells']['b1_greedy']['tokens_per_s']:.2f}"
        agree = r["greedy_token_agreement"]
        lines.append(f"| {r['family']} | {r['path']} | {r['threads']} | {speed:.0f} | {x} | {r['peak_rss_mb']:.0f} | "
                     f"{'–' if agree is None else f'{agree:.0%}'} |")  # fmt: skip
    lines += ["", "Quality: no trained model in this run, so no BLEU / perplexity; `= eager` is the share of outputs "
              "(batch-32 greedy sentences for the translation paths, the tokens of one greedy generation for the LMs) "
              "identical to the eager model of the same family. Marian rows compare with Marian eager.", ""]  # fmt: skip
    with open(os.path.join(out_dir, "inference_speed.md.tmp"), "w") as f:
        f.write("\n".join(lines))
    os.replace(os.path.join(out_dir, "inference_speed.md.tmp"), os.path.join(out_dir, "inference_speed.md"))
    with open(os.path.join(out_dir, "inference_speed.json.tmp"), "w") as f:
        json.dump(data, f, indent=2)
    os.replace(os.path.join(out_dir, "inference_speed.json.tmp"), os.path.join(out_dir, "inference_speed.json"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny sizes, results to a temp folder (smoke test)")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--row-timeout", type=float, default=240)
    p.add_argument("--compile-timeout", type=float, default=120, help="limit of the torch.compile row (compile included)")
    p.add_argument("--skip", default="", help="comma-separated paths to leave out")
    # child-process arguments
    p.add_argument("--row", help=argparse.SUPPRESS)
    p.add_argument("--family", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.row:
        args.threads = int(args.threads)
        print(json.dumps(run_row(args)))
        return 0
    args.thread_list = [int(t) for t in args.threads.split(",")]
    out_dir = args.out or (tempfile.mkdtemp() if args.quick else RESULTS)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.perf_counter()
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory() as work:
        args.work = work
        prepare(work, _dims(args.quick))
        rows, lm_rows = [], []
        for threads in args.thread_list:
            for path in SEQ2SEQ_PATHS:
                if path in skip or (path == "hf-seq compiled" and threads != args.thread_list[0]):
                    continue  # compiling takes minutes on this machine: one thread count only, with its own limit
                timeout = args.compile_timeout if path == "hf-seq compiled" else args.row_timeout
                rows.append(spawn(args, "seq2seq", path, threads, timeout))
                sys.stderr.write(f"{path} @{threads}: {rows[-1].get('error') or rows[-1]['cells']}\n")
        for kind in ("lstm", "gru", "rnn"):
            for path in LM_PATHS:
                if kind == "rnn" and path == "eager int8 (torch dynamic)":
                    continue  # torch has no dynamically quantized nn.RNN
                row = spawn(args, kind, path, 1, args.row_timeout)
                row["family"] = kind
                lm_rows.append(row)
                sys.stderr.write(f"{kind} {path}: {row.get('error') or row['cells']}\n")
    write_results(rows, lm_rows, args, out_dir, started, time.perf_counter() - t0)
    sys.stderr.write(f"results in {out_dir} ({(time.perf_counter() - t0) / 60:.1f} min)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

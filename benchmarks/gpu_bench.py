#!/usr/bin/env python
"""GPU checks and speed benchmarks of issue 9 (run by benchmarks/gpu_check.sh on a machine with a GPU).

    python benchmarks/gpu_bench.py --out benchmarks/results/gpu                  # on a GPU machine, ~3 min
    python benchmarks/gpu_bench.py --device cpu --dry-run --out /tmp/gpu_dry     # tiny shapes: checks the script

Sections (each writes <out>/<section>.json; a failing section records its error and the others still run):
  correctness  every family on the device: cached == uncached greedy generation, save/load identical, a few Trainer
               steps lower the loss; fp16 and bf16 autocast forward and greedy generation against fp32.
  rnn          training step of the fused kernel (cuDNN on GPU) vs a plain Python loop over nn.*Cell, same sizes.
  attention    F.scaled_dot_product_attention flash backend vs math backend; the Transformer's sdpa vs eager path.
  word2vec     hf-seq's trainer on the device vs gensim on the CPU: words/s and peak memory, each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spawn_utils import call_in_fresh_process  # noqa: E402

import hf_seq  # noqa: E402,F401
from hf_seq.models.recurrent import GRUConfig, GRUForCausalLM, LSTMConfig, LSTMForCausalLM  # noqa: E402
from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration  # noqa: E402
from hf_seq.models.transformer import (  # noqa: E402
    TransformerConfig,
    TransformerForCausalLM,
    TransformerForConditionalGeneration,
)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device, repeats):
    fn()  # warm-up (cuDNN plans, kernel selection)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# ---------------------------------------------------------------------------------------------------------------------
def correctness(device, dry):
    V = 64
    families = {
        "lstm_lm": lambda: LSTMForCausalLM(LSTMConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2)),
        "gru_lm": lambda: GRUForCausalLM(GRUConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2)),
        "rnn_seq2seq_bahdanau": lambda: RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(
            vocab_size=V, hidden_size=32, encoder_embedding_size=16, decoder_embedding_size=16, attention="bahdanau")),
        "transformer_seq2seq": lambda: TransformerForConditionalGeneration(TransformerConfig(
            vocab_size=V, d_model=32, d_ff=64, num_heads=4, encoder_layers=2, decoder_layers=2,
            max_position_embeddings=64)),
        "transformer_lm": lambda: TransformerForCausalLM(TransformerConfig(
            vocab_size=V, d_model=32, d_ff=64, num_heads=4, encoder_layers=0, decoder_layers=2,
            max_position_embeddings=64)),
    }
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, V, (4, 10), generator=g).to(device)
    labels = torch.randint(4, V, (4, 7), generator=g).to(device)
    report = {}
    for name, make in families.items():
        torch.manual_seed(0)
        model = make().to(device).eval()
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 1
        r = {}
        enc_dec = model.config.is_encoder_decoder
        lab = labels if enc_dec else ids
        gen = dict(max_new_tokens=8, do_sample=False)
        cached = model.generate(ids, use_cache=True, **gen)
        uncached = model.generate(ids, use_cache=False, **gen)
        r["cached_equals_uncached"] = bool(torch.equal(cached, uncached))
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            again = type(model).from_pretrained(tmp).to(device).eval()
            with torch.no_grad():
                diff = (model(input_ids=ids, labels=lab).logits - again(input_ids=ids, labels=lab).logits).abs().max()
            r["save_load_max_diff"] = float(diff)
        with torch.no_grad():
            ref = model(input_ids=ids, labels=lab)
        for dtype in (torch.float16, torch.bfloat16):
            key = str(dtype).split(".")[-1]
            try:
                with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
                    low = model(input_ids=ids, labels=lab)
                    low_gen = model.generate(ids, **gen)
                scale = float(ref.logits.abs().max())
                r[key] = {
                    "max_rel_logit_diff": float((low.logits.float() - ref.logits).abs().max()) / scale,
                    "loss_fp32": float(ref.loss), "loss_low": float(low.loss),
                    "greedy_token_agreement": float((low_gen == cached).float().mean()),
                }
            except Exception as e:  # noqa: BLE001 - recorded, e.g. LSTM under CPU bf16 autocast
                r[key] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
        # a few optimizer steps lower the loss on the device
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(3 if dry else 20):
            loss = model(input_ids=ids, labels=lab).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        r["train_loss_first_last"] = [losses[0], losses[-1]]
        r["ok"] = (r["cached_equals_uncached"] and r["save_load_max_diff"] < 1e-4
                   and losses[-1] < losses[0])
        report[name] = r
    return report


# ---------------------------------------------------------------------------------------------------------------------
def rnn(device, dry):
    B, T, H, L = (2, 8, 16, 1) if dry else (32, 128, 512, 2)
    repeats = 2 if dry else 10
    report = {"batch": B, "seq_len": T, "hidden": H, "layers": L}
    for cell_name, fused_cls, cell_cls in (("lstm", nn.LSTM, nn.LSTMCell), ("gru", nn.GRU, nn.GRUCell)):
        torch.manual_seed(0)
        fused = fused_cls(H, H, num_layers=L, batch_first=True).to(device)
        cells = nn.ModuleList(cell_cls(H, H) for _ in range(L)).to(device)
        x = torch.randn(B, T, H, device=device)

        def fused_step(fused=fused, x=x):
            out, _ = fused(x)
            out.sum().backward()

        def loop_step(cells=cells, x=x):
            h = x
            for cell in cells:
                state = None
                outs = []
                for t in range(T):
                    state = cell(h[:, t], state)
                    outs.append(state[0] if isinstance(state, tuple) else state)
                h = torch.stack(outs, 1)
            h.sum().backward()

        fused_s, loop_s = _time(fused_step, device, repeats), _time(loop_step, device, repeats)
        report[cell_name] = {"fused_ms": fused_s * 1e3, "loop_ms": loop_s * 1e3, "speedup": loop_s / fused_s,
                             "fused_tokens_per_s": B * T / fused_s}
    return report


def attention(device, dry):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, heads, T, D = (1, 2, 16, 8) if dry else (8, 8, 1024, 64)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    repeats = 2 if dry else 10
    q, k, v = (torch.randn(B, heads, T, D, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    report = {"batch": B, "heads": heads, "seq_len": T, "head_dim": D, "dtype": str(dtype)}

    def run(backend):
        def step():
            with sdpa_kernel(backend):
                torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
        return step

    backends = {"math": SDPBackend.MATH}
    if device.type == "cuda":
        backends.update(flash=SDPBackend.FLASH_ATTENTION, efficient=SDPBackend.EFFICIENT_ATTENTION)
    for name, backend in backends.items():
        try:
            report[f"sdpa_{name}_ms"] = _time(run(backend), device, repeats) * 1e3
        except RuntimeError as e:
            report[f"sdpa_{name}_ms"] = f"unavailable: {str(e)[:120]}"
    # the model's own two paths
    from transformers import AutoModelForCausalLM

    cfg = dict(vocab_size=1000, d_model=64 if dry else 512, d_ff=128 if dry else 2048, num_heads=4 if dry else 8,
               encoder_layers=0, decoder_layers=2 if dry else 6, max_position_embeddings=T + 1)
    ids = torch.randint(4, 1000, (B, T), device=device)
    for impl in ("sdpa", "eager"):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(TransformerConfig(**cfg), attn_implementation=impl).to(device)

        def step(model=model):
            with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
                model(input_ids=ids, labels=ids).loss.backward()

        try:
            report[f"transformer_{impl}_train_step_ms"] = _time(step, device, repeats) * 1e3
        except RuntimeError as e:
            report[f"transformer_{impl}_train_step_ms"] = f"failed: {str(e)[:120]}"
    return report


# ---------------------------------------------------------------------------------------------------------------------
def _corpus(dry):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "text8-head", "text8.split.head")
    if not dry and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return [line.split() for line in f if line.strip()], path
    rng = np.random.default_rng(0)
    n_words = 20_000 if dry else 2_000_000
    ranks = np.minimum(rng.zipf(1.2, n_words), 5000)
    words = [f"w{r}" for r in ranks]
    return [words[i : i + 1000] for i in range(0, n_words, 1000)], "synthetic Zipf(1.2) corpus"


def _peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _w2v_worker(which, device, dry, queue):
    try:
        sentences, source = _corpus(dry)
        words = sum(len(s) for s in sentences)
        before = _peak_rss_mib()
        start = time.perf_counter()
        if which == "gensim":
            from gensim.models import Word2Vec

            Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1, negative=5, epochs=1,
                     workers=os.cpu_count(), seed=1)
            gpu_peak = None
        else:
            from hf_seq.models.word2vec import Word2VecForPreTraining
            from hf_seq.models.word2vec.training_word2vec import (
                Word2VecTrainingArguments,
                prepare_word2vec,
                train_word2vec,
            )

            _, config, corpus = prepare_word2vec((" ".join(s) for s in sentences), min_count=5, vector_size=100,
                                                 window=5, negative=5)
            model = Word2VecForPreTraining(config)
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            # auto backend: the Triton kernel on CUDA (compiled on its first launch, inside this timing)
            train_word2vec(model, corpus, Word2VecTrainingArguments(epochs=1, device=device, progress_bar=False))
            gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
        seconds = time.perf_counter() - start
        queue.put({"which": which, "device": "cpu" if which == "gensim" else device, "corpus": source,
                   "words": words, "seconds": seconds, "words_per_s": words / seconds,
                   "peak_rss_mib": _peak_rss_mib(), "rss_growth_mib": _peak_rss_mib() - before,
                   "gpu_peak_mib": gpu_peak})
    except Exception as e:  # noqa: BLE001
        queue.put({"which": which, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1500:]})


def word2vec(device, dry):
    report = {}
    for which in ("hf_seq", "gensim"):
        report[which] = call_in_fresh_process(_w2v_worker, which, str(device), dry, timeout=900)
    if "words_per_s" in report["hf_seq"] and "words_per_s" in report["gensim"]:
        report["hf_seq_over_gensim_speed"] = report["hf_seq"]["words_per_s"] / report["gensim"]["words_per_s"]
    return report


SECTIONS = {"correctness": correctness, "rnn": rnn, "attention": attention, "word2vec": word2vec}


def main(argv=None):
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "gpu"))
    cli.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    cli.add_argument("--dry-run", action="store_true", help="tiny shapes: checks that every section runs")
    cli.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    opts = cli.parse_args(argv)
    device = torch.device(opts.device)
    os.makedirs(opts.out, exist_ok=True)
    env = {"torch": torch.__version__, "device": opts.device, "python": platform.python_version(),
           "cpu_threads": torch.get_num_threads(), "dry_run": opts.dry_run}
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cudnn=torch.backends.cudnn.version(),
                   capability=torch.cuda.get_device_capability(device))
    failures = 0
    for name in opts.sections:
        start = time.time()
        try:
            result = {"ok": True, **SECTIONS[name](device, opts.dry_run)}
        except Exception as e:  # noqa: BLE001 - one broken section must not hide the others
            result = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
            failures += 1
        result["seconds"] = round(time.time() - start, 1)
        result["env"] = env
        with open(os.path.join(opts.out, f"{name}.json"), "w") as f:
            json.dump(result, f, indent=2, default=str)
        print(f"{name}: {'ok' if result['ok'] else 'FAILED'} ({result['seconds']} s) -> {opts.out}/{name}.json")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed of hf-seq's Transformer against transformers' MarianMTModel and torch.nn.Transformer of the same size.

    OMP_NUM_THREADS=1 python benchmarks/bench_transformer.py                 # ~10 min on a busy 2-core machine
    python benchmarks/bench_transformer.py --threads 2 --repeats 5

One process, same threads, same random batches for every model, runs interleaved (A, B, C, A, B, C, ...) so that
load from other processes hits every model alike; the median over repeats is reported. All models are random-init
(no download) with identical dimensions: post-LN, ReLU, sinusoidal positions, embeddings * sqrt(d_model), shared
source/target/output embeddings, SDPA attention.

- training: target tokens per second of forward + backward + AdamW step (batches of varying lengths with padding).
- generation: new tokens per second of `generate()` with greedy and beam-4 search, batch 1 and 32, a fixed number of
  new tokens (`min_new_tokens = max_new_tokens`, so random models stop at the same length).
- a profile of one training step of hf-seq's model (top operators by self CPU time): what dominates the time.

Results: benchmarks/results/transformer_speed.json and .md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers import MarianConfig, MarianMTModel

from hf_seq.io_utils import write_json_atomic
from hf_seq.models.transformer import (
    TransformerConfig,
    TransformerForConditionalGeneration,
    sinusoidal_position_encoding,
)

HERE = os.path.dirname(os.path.abspath(__file__))
PAD, BOS, EOS = 1, 2, 3


class TorchTransformerMT(nn.Module):
    """The same model written around `torch.nn.Transformer` (which adds a final LayerNorm to both stacks)."""

    def __init__(self, vocab, d_model, heads, layers, d_ff, dropout, max_len):
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(vocab, d_model, padding_idx=PAD)
        self.register_buffer("pe", sinusoidal_position_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.transformer = nn.Transformer(d_model, heads, layers, layers, d_ff, dropout, batch_first=True)
        self.out = nn.Linear(d_model, vocab, bias=False)
        self.out.weight = self.embed.weight

    def _embed(self, ids):
        return self.dropout(self.embed(ids) * math.sqrt(self.d_model) + self.pe[: ids.shape[1]])

    def forward(self, input_ids, attention_mask, labels):
        dec_in = torch.cat([labels.new_full((labels.shape[0], 1), BOS), labels[:, :-1]], 1).masked_fill(
            labels[:, :] == -100, PAD
        )
        T = dec_in.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(T)
        pad = attention_mask == 0
        h = self.transformer(
            self._embed(input_ids),
            self._embed(dec_in),
            tgt_mask=causal,
            src_key_padding_mask=pad,
            memory_key_padding_mask=pad,
            tgt_is_causal=True,
        )
        logits = self.out(h)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def build_models(a):
    # what both configurations say alike; then each names d_ff and the heads its own way
    same = dict(vocab_size=a.vocab, d_model=a.d_model, encoder_layers=a.layers, decoder_layers=a.layers, dropout=0.1,
                max_position_embeddings=256, attn_implementation="sdpa")
    ours = TransformerForConditionalGeneration(TransformerConfig(**same, d_ff=a.d_ff, num_heads=a.heads))
    marian = MarianMTModel(
        MarianConfig(
            **same,
            encoder_ffn_dim=a.d_ff,
            decoder_ffn_dim=a.d_ff,
            encoder_attention_heads=a.heads,
            decoder_attention_heads=a.heads,
            attention_dropout=0.0,
            activation_dropout=0.0,
            activation_function="relu",
            scale_embedding=True,
            pad_token_id=PAD,
            eos_token_id=EOS,
            bos_token_id=BOS,
            decoder_start_token_id=BOS,
            forced_eos_token_id=None,
            share_encoder_decoder_embeddings=True,
            tie_word_embeddings=True,
        )
    )
    torch_tf = TorchTransformerMT(a.vocab, a.d_model, a.heads, a.layers, a.d_ff, 0.1, 256)
    for m in (ours, marian):
        m.generation_config.pad_token_id, m.generation_config.eos_token_id = PAD, EOS
        m.generation_config.decoder_start_token_id = BOS
    return {"hf_seq": ours, "marian": marian, "torch_nn_transformer": torch_tf}


def make_batches(a, n, batch_size, g):
    batches = []
    for _ in range(n):
        src_len = torch.randint(a.min_len, a.max_len + 1, (batch_size,), generator=g)
        tgt_len = torch.randint(a.min_len, a.max_len + 1, (batch_size,), generator=g)
        S, T = int(src_len.max()), int(tgt_len.max())
        src = torch.randint(4, a.vocab, (batch_size, S), generator=g)
        mask = (torch.arange(S)[None] < src_len[:, None]).long()
        labels = torch.randint(4, a.vocab, (batch_size, T), generator=g)
        labels = labels.masked_fill(torch.arange(T)[None] >= tgt_len[:, None], -100)
        batches.append({"input_ids": src.masked_fill(mask == 0, PAD), "attention_mask": mask, "labels": labels})
    return batches


def train_steps(model, batches):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = 0
    start = time.perf_counter()
    for b in batches:
        out = model(**b)
        loss = out if torch.is_tensor(out) else out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tokens += int((b["labels"] != -100).sum())
    return tokens / (time.perf_counter() - start)


@torch.no_grad()
def generate_rate(model, src, mask, num_beams, new_tokens):
    model.eval()
    start = time.perf_counter()
    length = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens)  # random models stop at the same length
    out = model.generate(input_ids=src, attention_mask=mask, num_beams=num_beams, do_sample=False, **length)
    elapsed = time.perf_counter() - start
    assert out.shape[1] == new_tokens + 1, out.shape
    return src.shape[0] * new_tokens / elapsed


def profile_step(model, batch, top=8):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(2):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [
        {
            "op": e.key,
            "self_cpu_ms": round(e.self_cpu_time_total / 1000, 1),
            "share": round(e.self_cpu_time_total / total, 3),
        }
        for e in events[:top]
    ]
    # the output projection alone: (B*T, d) @ (d, V) forward + both backward products
    h = torch.randn(int((batch["labels"] != -100).numel()), model.config.d_model, requires_grad=True)
    w = model.lm_head.weight
    start = time.perf_counter()
    for _ in range(3):
        logits = h @ w.t()
        logits.backward(torch.ones_like(logits))
    proj = (time.perf_counter() - start) / 3 * 1000
    step_ms = total / 1000
    return {"top_ops": rows, "step_self_cpu_ms": round(step_ms, 1), "output_projection_fwd_bwd_ms": round(proj, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--d_ff", type=int, default=1024)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--train_batch", type=int, default=32)
    p.add_argument("--train_steps", type=int, default=6)
    p.add_argument("--min_len", type=int, default=8)
    p.add_argument("--max_len", type=int, default=32)
    p.add_argument("--new_tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=os.path.join(HERE, "results", "transformer_speed"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    models = build_models(a)
    params = {k: sum(t.numel() for t in m.parameters()) for k, m in models.items()}
    warm = make_batches(a, 2, a.train_batch, g)
    batches = make_batches(a, a.train_steps, a.train_batch, g)

    # training: warm up each model once, then interleave the timed repeats
    for m in models.values():
        train_steps(m, warm)
    train = {k: [] for k in models}
    for r in range(a.repeats):
        for k, m in models.items():
            train[k].append(train_steps(m, batches))
            print(f"train repeat {r} {k}: {train[k][-1]:.0f} tgt tok/s", flush=True)

    # generation: ours vs Marian on identical sources
    gen_models = {k: models[k] for k in ("hf_seq", "marian")}
    gen = {}
    for batch_size in (1, 32):
        src = make_batches(a, 1, batch_size, g)[0]
        for beams in (1, 4):
            key = f"{'greedy' if beams == 1 else 'beam4'}_batch{batch_size}"
            gen[key] = {k: [] for k in gen_models}
            for m in gen_models.values():  # warm-up
                generate_rate(m, src["input_ids"], src["attention_mask"], beams, 4)
            for r in range(a.repeats):
                for k, m in gen_models.items():
                    gen[key][k].append(generate_rate(m, src["input_ids"], src["attention_mask"], beams, a.new_tokens))
                print(f"{key} repeat {r}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in gen[key].items()), flush=True)

    prof = profile_step(models["hf_seq"], batches[0])
    med = statistics.median
    result = {
        "command": "OMP_NUM_THREADS={t} python benchmarks/bench_transformer.py --threads {t}".format(t=a.threads),
        "settings": vars(a) | {"out": None},
        "threads": torch.get_num_threads(),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_avg_at_end": os.getloadavg(),
        },
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "parameters": params,
        "training_tgt_tokens_per_s": {
            k: {"median": round(med(v), 1), "runs": [round(x, 1) for x in v]} for k, v in train.items()
        },
        "generation_new_tokens_per_s": {
            key: {k: {"median": round(med(v), 1), "runs": [round(x, 1) for x in v]} for k, v in d.items()}
            for key, d in gen.items()
        },
        "profile_hf_seq_training_step": prof,
    }
    ratios = {
        "train_vs_marian": med(train["hf_seq"]) / med(train["marian"]),
        "train_vs_torch_nn_transformer": med(train["hf_seq"]) / med(train["torch_nn_transformer"]),
    }
    for key, d in gen.items():
        ratios[f"{key}_vs_marian"] = med(d["hf_seq"]) / med(d["marian"])
    result["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    write_json_atomic(a.out + ".json", result)
    lines = [
        "# Transformer speed: hf-seq vs MarianMTModel vs torch.nn.Transformer",
        "",
        f"`{result['command']}` — {a.threads} thread(s), torch {torch.__version__}, transformers "
        f"{transformers.__version__}; d_model {a.d_model}, d_ff {a.d_ff}, {a.heads} heads, {a.layers}+{a.layers} "
        f"layers, vocab {a.vocab}; training batch {a.train_batch} sentences of {a.min_len}-{a.max_len} tokens; "
        f"{a.new_tokens} new tokens per generation; median of {a.repeats} interleaved runs; load average at the end "
        f"{tuple(round(x, 1) for x in os.getloadavg())} (shared machine).",
        "",
        "| measurement | hf-seq | Marian | torch.nn.Transformer | hf-seq / Marian | hf-seq / torch |",
        "|---|---|---|---|---|---|",
    ]
    t = result["training_tgt_tokens_per_s"]
    lines.append(
        f"| training, target tokens/s | {t['hf_seq']['median']} | {t['marian']['median']} | "
        f"{t['torch_nn_transformer']['median']} | {ratios['train_vs_marian']:.2f} | "
        f"{ratios['train_vs_torch_nn_transformer']:.2f} |"
    )
    for key, d in result["generation_new_tokens_per_s"].items():
        lines.append(
            f"| {key.replace('_', ', ')}, new tokens/s | {d['hf_seq']['median']} | {d['marian']['median']} | "
            f"– | {ratios[key + '_vs_marian']:.2f} | – |"
        )
    lines += [
        "",
        "Top operators of one hf-seq training step (self CPU time):",
        "",
        "| op | ms | share |",
        "|---|---|---|",
    ]
    lines += [f"| {r['op']} | {r['self_cpu_ms']} | {r['share']:.0%} |" for r in prof["top_ops"]]
    lines += [
        "",
        f"Output projection alone (forward + backward, {a.vocab} vocab): "
        f"{prof['output_projection_fwd_bwd_ms']} ms of a {prof['step_self_cpu_ms']} ms step.",
        "",
    ]
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

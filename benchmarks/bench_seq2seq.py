"""Speed of the hf-seq RNN encoder-decoder against a plain PyTorch implementation of the same network.

    OMP_NUM_THREADS=1 python benchmarks/bench_seq2seq.py                    # ~5 minutes on one thread
    python benchmarks/bench_seq2seq.py --attention luong --quick           # one attention type, fewer repeats

For each attention type the plain model gets the hf-seq model's weights (checked: equal logits and equal greedy
output), then both run on the same batches, interleaved (hf, plain, hf, plain, ...) so that load from other
processes hits both alike; the median of the repeats is reported.

- training: target tokens per second of forward + backward + Adam step, teacher forcing, batch 64.
- generation: new tokens per second, greedy and beam 4, batch 1 and 32, a fixed 24 new tokens (EOS disabled).
  hf-seq goes through `model.generate()`; the plain model through a hand-written loop (beam search included).

Writes benchmarks/results/seq2seq_speed.json and .md.
"""

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import hf_seq  # noqa: F401
from hf_seq.io_utils import write_json_atomic
from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class PlainSeq2Seq(nn.Module):
    """The same GRU encoder-decoder written directly in PyTorch (bidirectional GRU encoder, linear bridge, GRU decoder,
    attention `none` | `bahdanau` | `luong` general without input feeding)."""

    def __init__(self, V, E, H, A, attention):
        super().__init__()
        self.attention = attention
        self.src_embed = nn.Embedding(V, E, padding_idx=1)
        self.tgt_embed = nn.Embedding(V, E, padding_idx=1)
        self.enc = nn.GRU(E, H, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * H, H)
        self.dec = nn.GRU(E + (2 * H if attention == "bahdanau" else 0), H, batch_first=True)
        if attention == "bahdanau":
            self.W_q, self.W_k, self.v = nn.Linear(H, A, bias=False), nn.Linear(2 * H, A), nn.Linear(A, 1, bias=False)
            self.out_layer = nn.Linear(H + 2 * H + E, H)
        elif attention == "luong":
            self.W_a = nn.Linear(2 * H, H, bias=False)
            self.out_layer = nn.Linear(2 * H + H, H, bias=False)
        self.head = nn.Linear(H, V)
        # set by `transpose_head()`: the vocabulary projection as an (in, out) copy, the layout hf-seq's generate()
        # reads it in on CPU (issue 21); None = nn.Linear's own (out, in) layout
        self.head_t = None

    def transpose_head(self, on: bool = True):
        self.head_t = self.head.weight.t().contiguous() if on else None

    def project(self, x):
        if self.head_t is None:
            return self.head(x)
        return torch.addmm(self.head.bias, x.flatten(0, -2), self.head_t).view(*x.shape[:-1], -1)

    def load_from_hf(self, hf):
        m, d = hf.model, hf.model.decoder
        names = {
            "src_embed": m.encoder.embed_tokens, "tgt_embed": d.embed_tokens, "enc": m.encoder.rnn,
            "bridge": d.bridge_hidden, "dec": d.rnn, "head": hf.lm_head,
        }
        if self.attention == "bahdanau":
            names.update(W_q=d.attention.query_proj, W_k=d.attention.key_proj, v=d.attention.energy, out_layer=d.output_layer)
        elif self.attention == "luong":
            names.update(W_a=d.attention.key_proj, out_layer=d.output_layer)
        for name, module in names.items():
            getattr(self, name).load_state_dict(module.state_dict())

    def encode(self, src, mask):
        lengths = mask.sum(1)
        packed = pack_padded_sequence(self.src_embed(src), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.enc(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h0 = torch.tanh(self.bridge(torch.cat([h[0], h[1]], -1))).unsqueeze(0)  # (1, B, H)
        keys = self.W_k(out) if self.attention == "bahdanau" else self.W_a(out) if self.attention == "luong" else None
        return out, h0, keys, mask.bool()

    def attend(self, q, keys, memory, mask):  # q (B, T, H)
        if self.attention == "bahdanau":
            s = self.v(torch.tanh(self.W_q(q).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)
        else:
            s = torch.bmm(q, keys.transpose(1, 2))
        w = torch.softmax(s.masked_fill(~mask.unsqueeze(1), float("-inf")), -1)
        return torch.bmm(w, memory)

    def decode(self, y, state, memory, keys, mask):
        x = self.tgt_embed(y)
        if self.attention == "none":
            out, state = self.dec(x, state)
            return self.project(out), state
        if self.attention == "luong":
            out, state = self.dec(x, state)
            ctx = self.attend(out, keys, memory, mask)
            return self.project(torch.tanh(self.out_layer(torch.cat([ctx, out], -1)))), state
        outs, ctxs = [], []
        for t in range(x.shape[1]):
            x_t = x[:, t : t + 1]
            ctx = self.attend(state[-1].unsqueeze(1), keys, memory, mask)
            out, state = self.dec(torch.cat([x_t, ctx], -1), state)
            outs.append(out)
            ctxs.append(ctx)
        pre = torch.tanh(self.out_layer(torch.cat([torch.cat(outs, 1), torch.cat(ctxs, 1), x], -1)))
        return self.project(pre), state

    def forward(self, src, mask, dec_in):
        memory, h0, keys, m = self.encode(src, mask)
        return self.decode(dec_in, h0, memory, keys, m)[0]

    @torch.no_grad()
    def greedy(self, src, mask, steps, start=2):
        memory, state, keys, m = self.encode(src, mask)
        y = torch.full((src.shape[0], 1), start)
        out = [y]
        for _ in range(steps):
            logits, state = self.decode(y, state, memory, keys, m)
            y = logits[:, -1].argmax(-1, keepdim=True)
            out.append(y)
        return torch.cat(out, 1)

    @torch.no_grad()
    def beam(self, src, mask, steps, k=4, start=2):
        """Plain beam search (no EOS handling needed: fixed length), log-prob sum, best beam returned."""
        B = src.shape[0]
        memory, state, keys, m = self.encode(src, mask)
        rep = lambda t: t.repeat_interleave(k, 0)  # noqa: E731
        memory, keys, m, state = rep(memory), rep(keys) if keys is not None else None, rep(m), state.repeat_interleave(k, 1)
        scores = torch.zeros(B, k)
        scores[:, 1:] = float("-inf")
        seqs = torch.full((B * k, 1), start)
        for _ in range(steps):
            logits, state = self.decode(seqs[:, -1:], state, memory, keys, m)
            logp = F.log_softmax(logits[:, -1].float(), -1).view(B, k, -1)
            total = (scores.unsqueeze(-1) + logp).view(B, -1)
            scores, idx = total.topk(k, -1)
            beam_idx = (idx // logp.shape[-1] + torch.arange(B).unsqueeze(1) * k).view(-1)
            tokens = (idx % logp.shape[-1]).view(-1, 1)
            seqs = torch.cat([seqs[beam_idx], tokens], 1)
            state = state.index_select(1, beam_idx)
        return seqs.view(B, k, -1)[:, 0]


def make_batch(B, V, gen, lo=10, hi=24):
    src_len = torch.randint(lo, hi + 1, (B,), generator=gen)
    tgt_len = torch.randint(lo, hi + 1, (B,), generator=gen)
    S, T = int(src_len.max()), int(tgt_len.max())
    src = torch.randint(4, V, (B, S), generator=gen)
    mask = (torch.arange(S).unsqueeze(0) < src_len.unsqueeze(1)).long()
    src = src.masked_fill(mask == 0, 1)
    labels = torch.randint(4, V, (B, T), generator=gen)
    labels = labels.masked_fill(torch.arange(T).unsqueeze(0) >= tgt_len.unsqueeze(1), -100)
    return src, mask, labels


def bench(attention, args):
    V, E, H = args.vocab, args.embed, args.hidden
    config = RNNSeq2SeqConfig(
        vocab_size=V, encoder_embedding_size=E, decoder_embedding_size=E, hidden_size=H, attention=attention,
        attention_score="general", dropout=0.0, cell_type="gru",
    )
    torch.manual_seed(0)
    hf = RNNSeq2SeqForConditionalGeneration(config)
    plain = PlainSeq2Seq(V, E, H, config.attention_size, attention)
    plain.load_from_hf(hf)
    gen = torch.Generator().manual_seed(0)
    train_batches = [make_batch(64, V, gen) for _ in range(args.train_batches)]

    # 0. same network: equal logits, equal greedy output
    src, mask, labels = train_batches[0]
    hf.eval(), plain.eval()
    dec_in = hf.prepare_decoder_input_ids_from_labels(labels)
    with torch.no_grad():
        diff = (hf(input_ids=src, attention_mask=mask, decoder_input_ids=dec_in).logits - plain(src, mask, dec_in)).abs().max().item()
    g_hf = hf.generate(src[:4], attention_mask=mask[:4], max_new_tokens=8, min_new_tokens=8, eos_token_id=None)
    g_plain = plain.greedy(src[:4], mask[:4], 8)
    same_greedy = torch.equal(g_hf, g_plain)

    # 1. training tokens/s (interleaved repeats, median)
    def train_run(model, step_fn):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        tokens, start = 0, time.perf_counter()
        for src, mask, labels in train_batches:
            loss = step_fn(model, src, mask, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tokens += int((labels != -100).sum())
        return tokens / (time.perf_counter() - start)

    def hf_step(model, src, mask, labels):
        return model(input_ids=src, attention_mask=mask, labels=labels).loss

    def plain_step(model, src, mask, labels):
        dec_in = labels.masked_fill(labels == -100, 1).roll(1, 1)
        dec_in[:, 0] = 2
        logits = model(src, mask, dec_in)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    train_hf, train_plain = [], []
    for _ in range(args.repeats):
        train_hf.append(train_run(hf, hf_step))
        train_plain.append(train_run(plain, plain_step))

    # 2. generation tokens/s
    hf.eval(), plain.eval()
    steps = args.new_tokens
    rows = {}
    for B in (1, 32):
        batches = [make_batch(B, V, gen)[:2] for _ in range(args.gen_batches)]
        for mode, beams in (("greedy", 1), ("beam4", 4)):
            t_hf, t_plain, t_plain_t = [], [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                for src, mask in batches:
                    hf.generate(src, attention_mask=mask, max_new_tokens=steps, min_new_tokens=steps, num_beams=beams,
                                eos_token_id=None, do_sample=False)
                t_hf.append(B * steps * len(batches) / (time.perf_counter() - start))
                for transposed, times in ((False, t_plain), (True, t_plain_t)):
                    if transposed and beams > 1:
                        continue
                    start = time.perf_counter()
                    plain.transpose_head(transposed)  # once per call, as generate() builds (and keeps) its copy
                    for src, mask in batches:
                        (plain.greedy if beams == 1 else plain.beam)(src, mask, steps)
                    times.append(B * steps * len(batches) / (time.perf_counter() - start))
                    plain.transpose_head(False)
            rows[f"{mode}_batch{B}"] = {
                "hf_seq_tokens_per_s": round(statistics.median(t_hf), 1),
                "plain_tokens_per_s": round(statistics.median(t_plain), 1),
                "ratio": round(statistics.median(t_hf) / statistics.median(t_plain), 3),
            }
            if t_plain_t:
                rows[f"{mode}_batch{B}"].update(
                    plain_transposed_head_tokens_per_s=round(statistics.median(t_plain_t), 1),
                    ratio_vs_plain_transposed_head=round(statistics.median(t_hf) / statistics.median(t_plain_t), 3),
                )
    return {
        "attention": attention,
        "max_abs_logit_diff_vs_plain": diff,
        "same_greedy_output_as_plain": same_greedy,
        "training": {
            "hf_seq_tokens_per_s": round(statistics.median(train_hf), 1),
            "plain_tokens_per_s": round(statistics.median(train_plain), 1),
            "ratio": round(statistics.median(train_hf) / statistics.median(train_plain), 3),
            "all_hf": [round(x, 1) for x in train_hf],
            "all_plain": [round(x, 1) for x in train_plain],
        },
        "generation": rows,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attention", nargs="+", default=["none", "luong", "bahdanau"])
    p.add_argument("--vocab", type=int, default=6000)
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--train-batches", type=int, default=8)
    p.add_argument("--gen-batches", type=int, default=3)
    p.add_argument("--new-tokens", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="1 repeat, 3 training batches (a check, not a measurement)")
    p.add_argument("--out", default=os.path.join(RESULTS, "seq2seq_speed"))
    args = p.parse_args()
    if args.quick:
        args.repeats, args.train_batches, args.gen_batches = 1, 3, 1
    torch.set_num_threads(args.threads)
    results = {
        "command": "python benchmarks/bench_seq2seq.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if k not in ("out", "quick")),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other jobs)",
        "load_average_at_start": os.getloadavg()[0],
        "model": f"GRU, bidirectional encoder, emb {args.embed}, hidden {args.hidden}, vocab {args.vocab}",
        "data": "random token ids, source/target lengths uniform in 10-24 (Multi30k-like), same batches for both",
        "runs": [],
    }
    for attention in args.attention:
        r = bench(attention, args)
        results["runs"].append(r)
        print(json.dumps(r))
    results["load_average_at_end"] = os.getloadavg()[0]
    write_json_atomic(args.out + ".json", results)
    lines = [
        "# RNN seq2seq speed: hf-seq vs plain PyTorch (same network, same batches)",
        "",
        f"`{results['command']}` — torch {results['torch']}, {results['threads']} thread(s), {results['machine']}, "
        f"load average {results['load_average_at_start']:.1f} → {results['load_average_at_end']:.1f}. "
        f"{results['model']}; {results['data']}. Tokens/s, median of {args.repeats} interleaved repeats; "
        "ratio = hf-seq / plain.",
        "",
        "`plain, (in, out) head`: the same hand-written greedy loop with its vocabulary projection read from an (in, out) "
        "copy, as hf-seq's generate() reads it on CPU (issue 21): the ratio to it is what is left of framework "
        "overhead.",
        "",
        "| attention | measure | hf-seq tok/s | plain tok/s | ratio | plain, (in, out) head tok/s | ratio to it |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        t = r["training"]
        lines.append(f"| {r['attention']} | training (batch 64) | {t['hf_seq_tokens_per_s']} | {t['plain_tokens_per_s']} | {t['ratio']} | | |")
        for name, g in r["generation"].items():
            extra = (f"{g['plain_transposed_head_tokens_per_s']} | {g['ratio_vs_plain_transposed_head']}"
                     if "ratio_vs_plain_transposed_head" in g else " | ")
            lines.append(f"| {r['attention']} | {name} | {g['hf_seq_tokens_per_s']} | {g['plain_tokens_per_s']} | {g['ratio']} | {extra} |")
    lines += ["", "Equivalence checks: " + "; ".join(
        f"{r['attention']}: max |logit diff| {r['max_abs_logit_diff_vs_plain']:.1e}, same greedy output "
        f"{r['same_greedy_output_as_plain']}" for r in results["runs"])]
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

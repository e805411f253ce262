#!/usr/bin/env python
"""Why does Luong attention trail Bahdanau by 9 BLEU on Multi30k (issue #23.2)? One difference at a time.

Every variant is the translation runner (`hf-seq train`, task `translation`) on the shipped experiment
`seq2seq_multi30k_luong_cpu_1h` (joint BPE 6000, bidirectional GRU encoder, linear bridge, dropout 0.3, Adam 2e-3
linear decay, label smoothing 0.1, batch 64) shrunk to a CPU-minutes scale: a Multi30k training subset, 128-d
embeddings / 256-d GRUs, a fixed number of epochs (equal data for every variant, not equal wall time), greedy test
decoding of a test prefix. Variants that the config cannot express are applied by patching
`hf_seq.models.seq2seq.modeling_seq2seq.RNNSeq2SeqDecoder` in this process only (hf_seq/ is not edited):

    config variants (model.* overrides):        bahdanau, luong, luong_feed, luong_concat
    patched variants:                            luong_deep   (Luong's h~_t also reads E y_{t-1}, with a bias:
                                                               Bahdanau's deep output t_i = tanh(W_o[s_i; c_i; E y_{i-1}]))
                                                 luong_feed_deep (both)

    OMP_NUM_THREADS=1 python benchmarks/luong_bahdanau_ablation.py luong bahdanau --train-samples 6000 --epochs 2
    python benchmarks/luong_bahdanau_ablation.py --table      # the Markdown table from the finished runs

Each variant writes runs/ablation_luong_bahdanau/<tag>/<variant>/ (a normal run folder: eval_results.json with BLEU,
chrF, train CPU seconds) and one line per variant to benchmarks/results/study/luong_vs_bahdanau_ablation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results", "study", "luong_vs_bahdanau_ablation.json")
EXPERIMENT = "seq2seq_multi30k_luong_cpu_1h"

# variant -> (model overrides, patch name or None, what differs from `luong`)
VARIANTS = {
    "bahdanau": (["model.attention=bahdanau"], None,
                 "Bahdanau: additive score on s_{t-1}; context c_t enters the GRU step; deep output tanh(W_o[s;c;Ey_{t-1}]+b)"),
    "luong": ([], None, "Luong general, NO input feeding (the shipped 1-hour config): the GRU never sees the source "
                        "after its initial state; h~_t = tanh(W_c[c_t;h_t])"),
    "luong_feed": (["model.input_feeding=true"], None, "luong + input feeding (h~_{t-1} enters the GRU step, Luong §3.3)"),
    "luong_concat": (["model.attention_score=concat"], None, "luong with the concat (additive) score on h_t"),
    "luong_deep": ([], "deep", "luong + Bahdanau's deep output: h~_t = tanh(W_c[c_t;h_t;E y_{t-1}] + b)"),
    "luong_feed_deep": (["model.input_feeding=true"], "deep", "luong_feed + the deep output"),
}


def patch_deep_output() -> None:
    """Luong's attentional vector also reads the (dropped-out) embedding of the previous target token, with a bias:
    the one input Bahdanau's output layer has and Luong's lacks. Patched on the class, this process only."""
    from torch import nn

    from hf_seq.models.seq2seq import modeling_seq2seq as m

    Decoder = m.RNNSeq2SeqDecoder
    init, forward = Decoder.__init__, Decoder._forward

    def __init__(self, config):
        init(self, config)
        if config.attention == "luong":
            H, E = config.hidden_size, config.decoder_embedding_size
            self.output_layer = nn.Linear(config.encoder_output_size + H + E, H)

    def _forward(self, inputs_embeds, memory, source_mask, cache, output_hidden_states):
        if self.config.attention != "luong":
            return forward(self, inputs_embeds, memory, source_mask, cache, output_hidden_states)
        layer, W = self.output_layer, self.output_layer.weight
        Hc = W.shape[1] - self.config.decoder_embedding_size  # the [c; h] part of W_c
        x = self.dropout(inputs_embeds)  # the embeddings the step reads (dropout mask of this call)
        y_part = torch.nn.functional.linear(x, W[:, Hc:], layer.bias)  # (B, T, H): W_y E y_{t-1} + b
        steps = iter(range(x.shape[1]))

        class _Part(nn.Module):  # the [c; h] half of W_c, plus the embedding term of the step(s) it is called for
            def forward(_, ch):
                if ch.shape[1] == x.shape[1]:  # the fused path: every step at once
                    return torch.nn.functional.linear(ch, W[:, :Hc]) + y_part
                t = next(steps)  # input feeding: one step per call, in order
                return torch.nn.functional.linear(ch, W[:, :Hc]) + y_part[:, t : t + 1]

        saved_dropout, saved_layer = self.dropout, self.output_layer
        self.dropout = nn.Identity()  # x is already dropped out (the same mask feeds the GRU and the output)
        self.output_layer = _Part()
        try:
            return forward(self, x, memory, source_mask, cache, output_hidden_states)
        finally:
            self.dropout, self.output_layer = saved_dropout, saved_layer

    Decoder.__init__, Decoder._forward = __init__, _forward


def overrides(variant: str, a: argparse.Namespace, out_dir: str) -> list[str]:
    return [
        "model.input_feeding=false",  # the ablation's baseline (the shipped experiment now turns it on); variants add it
        *VARIANTS[variant][0],
        f"model.encoder_embedding_size={a.embedding}", f"model.decoder_embedding_size={a.embedding}",
        f"model.hidden_size={a.hidden}",
        f"data.max_train_samples={a.train_samples}", f"data.max_test_samples={a.test_samples}",
        "data.test_num_beams=1", "data.max_train_minutes=null", f"data.bpe_vocab_size={a.bpe}",
        f"training.num_train_epochs={a.epochs}", f"training.warmup_steps={a.warmup}",
        'training.save_strategy="no"', "training.logging_steps=20", f"training.seed={a.seed}",
        f"training.output_dir={out_dir}",
    ]


def run_variant(variant: str, a: argparse.Namespace) -> dict:
    from hf_seq.training.experiment import load_experiment, run_experiment

    torch.set_num_threads(1)
    if VARIANTS[variant][1] == "deep":
        patch_deep_output()
    out_dir = os.path.join(REPO, "runs", "ablation_luong_bahdanau", a.tag, variant)
    ov = overrides(variant, a, out_dir)
    exp = load_experiment(EXPERIMENT, ov, overwrite=True)
    t0, c0 = time.time(), time.process_time()
    r = run_experiment(exp)
    row = {
        "variant": variant, "what": VARIANTS[variant][2], "tag": a.tag, "seed": a.seed,
        "command": f"OMP_NUM_THREADS=1 python benchmarks/luong_bahdanau_ablation.py {variant} --tag {a.tag} "
                   f"--train-samples {a.train_samples} --test-samples {a.test_samples} --epochs {a.epochs} "
                   f"--embedding {a.embedding} --hidden {a.hidden} --seed {a.seed}",
        "hf_seq_train": f"hf-seq train {EXPERIMENT} " + " ".join(o for o in ov if not o.startswith("training.output")),
        "parameters": r["parameters"], "steps": r["steps"], "epochs": r["epochs"],
        "train_cpu_seconds": r["train_cpu_seconds"], "train_wall_seconds": r["train_seconds"],
        "train_loss_last_logged": r["train_loss_last_logged"], "train_loss_mean": r["train_loss_mean"],
        "test_bleu": r["test_bleu"], "test_chrf": r["test_chrf"], "test_pairs": r["test_pairs"],
        "process_cpu_seconds": round(time.process_time() - c0, 1), "wall_seconds": round(time.time() - t0, 1),
        "load_1min": os.getloadavg()[0], "threads": torch.get_num_threads(),
    }
    rows = json.load(open(RESULTS)) if os.path.isfile(RESULTS) else []
    rows = [x for x in rows if not (x["variant"] == variant and x["tag"] == a.tag and x["seed"] == a.seed)] + [row]
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS + ".tmp", "w") as f:
        json.dump(rows, f, indent=2)
    os.replace(RESULTS + ".tmp", RESULTS)
    print(json.dumps({k: row[k] for k in ("variant", "parameters", "train_cpu_seconds", "test_bleu", "test_chrf")}),
          flush=True)
    return row


ORDER = ["bahdanau", "luong", "luong_feed", "luong_deep", "luong_feed_deep", "luong_concat"]


def table(rows: list[dict]) -> str:
    """The ablation table (Markdown) of the finished variants, in ORDER, with their commands."""
    rows = sorted(rows, key=lambda r: (r["tag"], r["seed"], ORDER.index(r["variant"])))
    out = ["| Variant | What differs | Parameters | Steps | Epochs | Train CPU s | Load (1 min) | Threads | Seed | "
           "Train loss (last logged) | Train loss (mean) | Test BLEU | chrF |", "|" + "---|" * 13]
    for r in rows:
        out.append(f"| `{r['variant']}` | {r['what']} | {r['parameters']:,} | {r['steps']} | {r['epochs']} | "
                   f"{r['train_cpu_seconds']} | {r['load_1min']:.1f} | {r['threads']} | {r['seed']} | "
                   f"{r['train_loss_last_logged']:.3f} | {r['train_loss_mean']:.3f} | {r['test_bleu']:.2f} | "
                   f"{r['test_chrf']:.2f} |")
    out += ["", "Commands (one process each, `OMP_NUM_THREADS=1`; the `hf-seq train` line is the runner call the script "
            "makes, plus the class patch for `*_deep`):", ""]
    for r in rows:
        out.append(f"- `{r['variant']}`: `{r['command']}`  \n  = `{r['hf_seq_train']}`")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("variants", nargs="*", help=f"of {list(VARIANTS)}")
    p.add_argument("--tag", default="m30k")
    p.add_argument("--train-samples", type=int, default=6000)
    p.add_argument("--test-samples", type=int, default=500)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--embedding", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--bpe", type=int, default=4000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", action="store_true", help="print the Markdown table of the finished variants")
    a = p.parse_args(argv)
    if a.table:
        print(table(json.load(open(RESULTS))))
        return
    bad = [v for v in a.variants if v not in VARIANTS]
    if bad:
        p.error(f"unknown variant(s) {bad}; choose from {list(VARIANTS)}")
    for v in a.variants:
        if len(a.variants) > 1:  # one process per variant: the class patch must not leak into the next variant
            import subprocess

            rc = subprocess.call([sys.executable, __file__, v, *[x for x in (argv or sys.argv[1:]) if x not in VARIANTS]])
            if rc:
                print(f"{v}: exit {rc}", flush=True)
        else:
            run_variant(v, a)


if __name__ == "__main__":
    main()

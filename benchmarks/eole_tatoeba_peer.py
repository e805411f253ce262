#!/usr/bin/env python
"""A real peer toolkit in the translation table (issue #23.3): eole (OpenNMT-py's maintained successor), installed
from PyPI into its own virtual environment, trained through its own CLI on the embedded Tatoeba en->fr split that
hf-seq's translation runner uses, next to hf-seq's GRU encoder-decoders at the same sizes and number of steps.

    python -m venv --system-site-packages /tmp/eole_venv && /tmp/eole_venv/bin/pip install eole aiohttp
    OMP_NUM_THREADS=1 python benchmarks/eole_tatoeba_peer.py --work /tmp/eole_tatoeba --steps 470      # everything
    python benchmarks/eole_tatoeba_peer.py --work /tmp/eole_tatoeba --steps 470 --skip-train           # rescore

(`aiohttp`: eole 0.6.4's CLI imports it in every subcommand but does not declare it.) The venv reuses the global
torch (eole pins torch<2.15, >=2.10; 2.13 is installed), so nothing global changes.

Same data: the 5,000 / 200 / 500 train / validation / test pairs of `load_pairs("tatoeba", seed=0)` (the runner's
split and the runner's 200 validation pairs). Tokenisation differs and is each toolkit's own: eole's default
(whitespace tokens, vocabulary built by `eole build_vocab` on the training split), hf-seq's joint byte-level BPE.
Same model sizes (128-d embeddings, bidirectional GRU encoder, 256-d GRU decoder, a bridge from the encoder's final
state, dropout 0.3), Adam 2e-3 constant, batch 32 sentences, clip 1.0, `--steps` updates, greedy test decoding, one
CPU thread. eole's RNN decoder is Luong's: global attention, general score, input feeding (its defaults).
Scored here with sacreBLEU (default 13a BLEU, chrF) on the detokenized hypotheses of both.
Writes benchmarks/results/study/eole_tatoeba_peer.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "benchmarks", "results", "study", "eole_tatoeba_peer")
EOLE = "/tmp/eole_venv/bin/eole"

TRAIN_YAML = """# eole RNN encoder-decoder with global (Luong general) attention and input feeding (eole's RNN defaults), sized like
# hf-seq's seq2seq_tatoeba_bahdanau (128-d embeddings, bidirectional GRU encoder, 256-d GRU decoder, dropout 0.3,
# Adam 2e-3, batch 32), trained for a fixed number of steps on one CPU thread.
save_data: {work}/run/data
src_vocab: {work}/run/vocab.src
tgt_vocab: {work}/run/vocab.tgt
overwrite: true
seed: 0
report_every: 50
data:
  corpus_1:
    path_src: {work}/train.en
    path_tgt: {work}/train.fr
  valid:
    path_src: {work}/validation.en
    path_tgt: {work}/validation.fr
model:
  architecture: rnn
  embeddings:
    src_word_vec_size: 128
    tgt_word_vec_size: 128
  encoder:
    encoder_type: brnn
    rnn_type: GRU
    hidden_size: 256
    layers: 1
  decoder:
    rnn_type: GRU
    hidden_size: 256
    layers: 1
    global_attention: general
  bridge: true
training:
  model_path: {work}/run/model
  train_steps: {steps}
  valid_steps: 100000
  save_checkpoint_steps: {steps}
  batch_size: 32
  batch_type: sents
  optim: adam
  learning_rate: 0.002
  decay_method: none
  max_grad_norm: 1.0
  dropout: [0.3]
  world_size: 1
  gpu_ranks: []
  num_workers: 0
"""

# hf-seq rows: the runner on the shipped Tatoeba experiment, the same steps / constant rate / greedy decoding
HF_ROWS = {
    "hf-seq GRU + Luong general, input feeding": ["model.attention=luong", "model.attention_score=general",
                                                   "model.input_feeding=true"],
    "hf-seq GRU + Bahdanau": ["model.attention=bahdanau"],
}


def write_split(work: str) -> dict:
    sys.path.insert(0, REPO)
    from hf_seq.data.translation import load_pairs

    pairs = load_pairs("tatoeba", source_lang="en", target_lang="fr", data_dir=None, seed=0, heldout=500,
                       test_size=1000, max_words=12, toy=None, limits={"train": None, "validation": 200, "test": None})
    os.makedirs(work, exist_ok=True)
    for split, rows in pairs.items():
        for side, lang in ((0, "en"), (1, "fr")):
            with open(os.path.join(work, f"{split}.{lang}"), "w", encoding="utf-8") as f:
                f.writelines(r[side].replace("\n", " ") + "\n" for r in rows)
    return {k: len(v) for k, v in pairs.items()}


def eole(args: list[str], log: str) -> float:
    """Run an eole subcommand; returns the CPU seconds of its process tree (user + sys of the children)."""
    before = os.times()
    with open(log, "a") as f:
        subprocess.run([EOLE, *args], check=True, stdout=f, stderr=subprocess.STDOUT,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    after = os.times()
    return round((after.children_user - before.children_user) + (after.children_system - before.children_system), 1)


def score(hyp_path: str, ref_path: str) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    hyps = [line.rstrip("\n") for line in open(hyp_path, encoding="utf-8")]
    refs = [line.rstrip("\n") for line in open(ref_path, encoding="utf-8")]
    bleu, chrf = BLEU(), CHRF()
    return {"test_bleu": round(bleu.corpus_score(hyps, [refs]).score, 2),
            "test_chrf": round(chrf.corpus_score(hyps, [refs]).score, 2), "test_pairs": len(refs),
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


def detok(line: str) -> str:
    """eole's whitespace tokens are the source's own words (no tokenizer ran), so the line is already detokenized."""
    return re.sub(r"\s+", " ", line).strip()


def eole_row(work: str, steps: int, skip_train: bool) -> dict:
    run = os.path.join(work, "run")
    os.makedirs(run, exist_ok=True)
    cfg = os.path.join(work, "train.yaml")
    with open(cfg, "w") as f:
        f.write(TRAIN_YAML.format(work=work, steps=steps))
    cpu = {}
    if not skip_train:
        cpu["build_vocab"] = eole(["build_vocab", "-config", cfg], os.path.join(run, "build_vocab.log"))
        t0 = time.time()
        cpu["train"] = eole(["train", "-config", cfg], os.path.join(run, "train.log"))
        cpu["train_wall"] = round(time.time() - t0, 1)
    model = os.path.join(run, "model")
    hyp = os.path.join(run, "test_hypotheses.txt")
    cpu["predict"] = eole(["predict", "-model_path", model, "-src", os.path.join(work, "test.en"), "-output", hyp,
                           "-beam_size", "1"], os.path.join(run, "predict.log")) \
        if not os.path.isfile(hyp) else None
    with open(hyp, encoding="utf-8") as f:
        lines = [detok(x) for x in f]
    with open(hyp + ".detok", "w", encoding="utf-8") as f:
        f.writelines(x + "\n" for x in lines)
    params = None
    log = os.path.join(run, "train.log")
    if skip_train and os.path.isfile(log):  # trained earlier under `time`: its user + sys lines
        t = dict(re.findall(r"^(user|sys)\s+(\d+)m([\d.]+)s", open(log).read(), re.M) and
                 [(k, int(m) * 60 + float(x)) for k, m, x in re.findall(r"^(user|sys)\s+(\d+)m([\d.]+)s",
                                                                         open(log).read(), re.M)])
        if t:
            cpu["train"] = round(t.get("user", 0) + t.get("sys", 0), 1)
    if os.path.isfile(log):
        m = re.findall(r"[Tt]otal.*?params.*?(\d[\d,]*)|\* number of parameters: (\d+)", open(log).read())
        nums = [int((a or b).replace(",", "")) for a, b in m if (a or b)]
        params = nums[-1] if nums else None
    return {"system": "eole 0.6.4 RNN (brnn GRU + global general attention, input feeding)", "toolkit": "eole",
            "tokenization": "whitespace (eole build_vocab on the training split)", "steps": steps,
            "parameters": params, "cpu_seconds": cpu, "threads": 1, "seed": 0, "test_num_beams": 1,
            "config": cfg, **score(hyp + ".detok", os.path.join(work, "test.fr"))}


def hf_row(label: str, model_overrides: list[str], steps: int, work: str) -> dict:
    sys.path.insert(0, REPO)
    import torch

    from hf_seq.training.experiment import load_experiment, run_experiment

    torch.set_num_threads(1)
    out_dir = os.path.join(work, "hf_seq", re.sub(r"\W+", "_", label).strip("_"))
    ov = [*model_overrides, f"training.max_steps={steps}", "training.lr_scheduler_type=constant",
          "data.max_train_minutes=null", "data.test_num_beams=1", "training.seed=0"]
    r = run_experiment(load_experiment("seq2seq_tatoeba_bahdanau", ov, output_dir=out_dir, overwrite=True))
    return {"system": label, "toolkit": "hf-seq", "tokenization": r["tokenizer"], "steps": r["steps"],
            "parameters": r["parameters"], "cpu_seconds": {"train": r["train_cpu_seconds"]}, "threads": 1, "seed": 0,
            "test_num_beams": 1, "command": "hf-seq train seq2seq_tatoeba_bahdanau " + " ".join(ov),
            **score(os.path.join(out_dir, "test_hypotheses.txt"), os.path.join(work, "test.fr"))}


def render(rows: list[dict], meta: dict) -> str:
    out = ["# eole vs hf-seq on the embedded Tatoeba en->fr split (issue #23.3)", "",
           f"Command: `OMP_NUM_THREADS=1 python benchmarks/eole_tatoeba_peer.py --work {meta['work']} --steps "
           f"{meta['steps']}{' --skip-train' if meta.get('skip_train') else ''}` (see the script's docstring for "
           "the venv)" + (f"; eole was trained before by `eole train -config {meta['work']}/train.yaml`, the file the "
                          "script writes, under `time`" if meta.get("skip_train") else "")
           + f". Split: {meta['split']} pairs. "
           f"Machine: {meta['machine']}; 1-minute load {meta['load']} at the end (2 cores shared with other jobs); "
           "one thread per process; seed 0 only (one seed: no spread).", "",
           "| System | Tokenisation | Parameters | Steps | Train CPU s | Threads | Seed | Test BLEU | chrF |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['system']} | {r['tokenization']} | {r['parameters'] or 'n/a'} | {r['steps']} | "
                   f"{r['cpu_seconds'].get('train', 'n/a')} | {r['threads']} | {r['seed']} | {r['test_bleu']:.2f} | "
                   f"{r['test_chrf']:.2f} |")
    out += ["", f"Greedy decoding of the {rows[0]['test_pairs']} test pairs; sacreBLEU `{rows[0]['bleu_signature']}`, "
            f"chrF `{rows[0]['chrf_signature']}`. {meta['steps']} steps of 32 sentences = "
            f"{meta['steps'] * 32 / 5000:.1f} epochs: far from converged; the tokenisations differ (eole's default "
            "whitespace words vs hf-seq's BPE), which alone moves BLEU on 5,000 pairs.", "",
            "`Train CPU s`: for eole the whole `eole train` process (imports and its data bucketing included: an "
            "upper bound on its training loop), for hf-seq the training loop of the runner (Trainer). eole 0.6.4 from "
            "PyPI needed `aiohttp` installed beside it (its CLI imports it, its metadata does not declare it); the "
            "venv reused the global torch 2.13.", ""]
    eole = next((r for r in rows if r["toolkit"] == "eole"), None)
    same = next((r for r in rows if "Luong" in r["system"] and r["toolkit"] == "hf-seq"), None)
    if eole and same:
        out += [f"Where hf-seq stands: the same model family (Luong general attention with input feeding, equal "
                f"widths, equal steps) trails eole by {eole['test_bleu'] - same['test_bleu']:.2f} BLEU and "
                f"{eole['test_chrf'] - same['test_chrf']:.2f} chrF and spent "
                f"{same['cpu_seconds']['train'] / eole['cpu_seconds']['train']:.2f}x eole's CPU seconds; one seed, "
                "so the BLEU difference is not yet separated from seed noise and tokenisation.", ""]
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--render", action="store_true", help="rewrite the .md from the .json; run nothing")
    p.add_argument("--work", default="/tmp/eole_tatoeba")
    p.add_argument("--steps", type=int, default=470)
    p.add_argument("--skip-train", action="store_true", help="eole: reuse the trained model in --work")
    p.add_argument("--no-hf", action="store_true", help="score eole only")
    a = p.parse_args(argv)
    if a.render:
        data = json.load(open(OUT + ".json"))
        with open(OUT + ".md", "w") as f:
            f.write(render(data["rows"], data["meta"]))
        return
    split = write_split(a.work)
    rows = [eole_row(a.work, a.steps, a.skip_train)]
    if not a.no_hf:
        rows += [hf_row(label, ov, a.steps, a.work) for label, ov in HF_ROWS.items()]
    import platform

    meta = {"work": a.work, "steps": a.steps, "split": split, "skip_train": a.skip_train, "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
            "load": round(os.getloadavg()[0], 2)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    with open(OUT + ".md", "w") as f:
        f.write(render(rows, meta))
    print(render(rows, meta))


if __name__ == "__main__":
    main()

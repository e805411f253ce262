#!/usr/bin/env python
"""Check that multi-process (DDP) training matches one process with the same global batch (issue 9).

    python training/ddp_check.py --out runs/ddp/one                                  # 1 process, batch 8
    torchrun --nproc_per_node 2 training/ddp_check.py --out runs/ddp/two             # 2 processes x batch 4 (gloo)
    python training/ddp_check.py --compare runs/ddp/one runs/ddp/two                 # prints the comparison

Trains tiny models of three families with `Trainer` (the LSTM LM, the RNN seq2seq with attention, word2vec skip-gram
with hierarchical softmax) for a few steps, dropout off so the only difference is how the batch is split. Every rank
writes `<out>/<family>.rank<r>.json` (loss trajectory, world size) and `<out>/<family>.rank<r>.safetensors` (its
final weights). `--compare` checks: per-step losses of the two runs agree within `--tolerance`, the final weights of
the two runs agree within it, and all ranks of a run hold bit-identical weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, default_data_collator
from transformers.utils import logging

import hf_seq  # noqa: F401  (registers the Auto classes)
from hf_seq.data import group_into_blocks
from hf_seq.models.recurrent import LSTMConfig, LSTMForCausalLM
from hf_seq.models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration
from hf_seq.models.word2vec import Word2VecForPreTraining
from hf_seq.models.word2vec.training_word2vec import prepare_word2vec, word2vec_pair_dataset
from hf_seq.tokenization import build_word_level_tokenizer

FAMILIES = ("lm", "seq2seq", "word2vec")


def _lines(n=200, length=10, seed=0):
    rng = np.random.default_rng(seed)
    words = "the time traveller was expounding a recondite matter to us his grey eyes shone and twinkled".split()
    return [" ".join(rng.choice(words, length)) for _ in range(n)]


def lm_setup():
    tok = build_word_level_tokenizer(_lines())
    tokens = np.concatenate([np.array(tok(line)["input_ids"] + [tok.eos_token_id]) for line in _lines()])
    model = LSTMForCausalLM(LSTMConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                       embedding_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0))
    return model, group_into_blocks(tokens, 16), default_data_collator


def seq2seq_setup():
    from datasets import Dataset

    # every pair has the same lengths, so each rank's token-mean loss averages to the global token mean
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(15)]
    pairs = []
    for _ in range(256):
        src = list(rng.choice(words, 5))
        pairs.append((" ".join(src), " ".join(w.replace("w", "v") for w in reversed(src))))
    tok = build_word_level_tokenizer([t for p in pairs for t in p])
    src = tok([s for s, _ in pairs])["input_ids"]
    tgt = [ids + [tok.eos_token_id] for ids in tok([t for _, t in pairs])["input_ids"]]
    model = RNNSeq2SeqForConditionalGeneration(RNNSeq2SeqConfig(
        vocab_size=len(tok), hidden_size=24, encoder_embedding_size=16, decoder_embedding_size=16,
        attention="bahdanau", dropout=0.0))
    collator = DataCollatorForSeq2Seq(tok, model=model, label_pad_token_id=-100)
    return model, Dataset.from_dict({"input_ids": src, "labels": tgt}), collator


def word2vec_setup():
    _, config, corpus = prepare_word2vec(_lines(400), min_count=1, vector_size=16, window=3,
                                         objective="hierarchical_softmax", sample=0.0)
    model = Word2VecForPreTraining(config)
    with torch.no_grad():  # word2vec starts its output side at zero; a random start makes the check bite sooner
        model.output_layer.weight.normal_(0, 0.1)
    return model, word2vec_pair_dataset(corpus, config, seed=1), default_data_collator


SETUPS = {"lm": lm_setup, "seq2seq": seq2seq_setup, "word2vec": word2vec_setup}


def train(family: str, out: str, global_batch: int, steps: int, lr: float) -> None:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if global_batch % world:
        raise ValueError(f"global batch {global_batch} is not divisible by the {world} processes")
    torch.manual_seed(0)
    model, dataset, collator = SETUPS[family]()
    args = TrainingArguments(
        output_dir=os.path.join(out, f"{family}_trainer"), max_steps=steps, learning_rate=lr,
        per_device_train_batch_size=global_batch // world, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, seed=0, disable_tqdm=True, dataloader_num_workers=0,
        ddp_backend="gloo" if world > 1 else None,
        ddp_find_unused_parameters=False,  # every parameter gets a gradient; skips an extra graph traversal
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    os.makedirs(out, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
    save_file(state, os.path.join(out, f"{family}.rank{rank}.safetensors"))
    with open(os.path.join(out, f"{family}.rank{rank}.json"), "w") as f:
        json.dump({"family": family, "world_size": world, "rank": rank, "global_batch": global_batch,
                   "per_device_batch": global_batch // world, "losses": losses}, f)


def compare(one: str, two: str, tolerance: float) -> dict:
    """Compare a 1-process run folder with a multi-process one; returns a report dict (ok per family)."""
    report = {}
    for family in FAMILIES:
        ref_path = os.path.join(one, f"{family}.rank0.json")
        if not os.path.isfile(ref_path):
            continue
        with open(ref_path) as f:
            ref = json.load(f)
        ranks = sorted(p for p in os.listdir(two) if p.startswith(f"{family}.rank") and p.endswith(".json"))
        if not ranks:  # this family was not trained in the second run
            continue
        runs = []
        for p in ranks:
            with open(os.path.join(two, p)) as f:
                runs.append(json.load(f))
        weights = [load_file(os.path.join(two, p.replace(".json", ".safetensors"))) for p in ranks]
        ref_weights = load_file(os.path.join(one, f"{family}.rank0.safetensors"))
        ranks_identical = all(
            all(torch.equal(w[k], weights[0][k]) for k in weights[0]) for w in weights[1:]
        )
        loss_diff = max(abs(a - b) for a, b in zip(ref["losses"], runs[0]["losses"]))
        weight_diff = max(float((ref_weights[k] - weights[0][k]).abs().max()) for k in ref_weights)
        report[family] = {
            "world_size": runs[0]["world_size"], "ranks_found": len(runs), "steps": len(ref["losses"]),
            "losses_1proc": ref["losses"], "losses_ddp": runs[0]["losses"],
            "max_loss_diff": loss_diff, "max_weight_diff": weight_diff, "ranks_identical": ranks_identical,
            "ok": ranks_identical and loss_diff <= tolerance and weight_diff <= tolerance
            and len(ref["losses"]) == len(runs[0]["losses"]) and len(runs) == runs[0]["world_size"],
        }
    return report


def main(argv=None):
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--out", help="folder for this run's per-rank results")
    cli.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    cli.add_argument("--global_batch", type=int, default=8)
    cli.add_argument("--steps", type=int, default=6)
    cli.add_argument("--lr", type=float, default=1e-2)
    cli.add_argument("--compare", nargs=2, metavar=("ONE_PROCESS_DIR", "DDP_DIR"))
    cli.add_argument("--tolerance", type=float, default=1e-4)
    opts = cli.parse_args(argv)
    logging.set_verbosity_error()
    if opts.compare:
        report = compare(*opts.compare, opts.tolerance)
        print(json.dumps(report, indent=2))
        return 0 if report and all(r["ok"] for r in report.values()) else 1
    if not opts.out:
        cli.error("--out is required unless --compare is given")
    torch.set_num_threads(1)
    for family in opts.families:
        train(family, opts.out, opts.global_batch, opts.steps, opts.lr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

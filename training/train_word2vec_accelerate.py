#!/usr/bin/env python
"""word2vec in an `accelerate` training loop: the autograd path (`Word2VecForPreTraining.forward`, the loss word2vec
optimises) over `word2vec_pair_dataset`, with any torch optimizer, on one process, several (`accelerate launch`,
`torchrun`), a GPU, and in mixed precision.

    python training/train_word2vec_accelerate.py --epochs 5 --out runs/word2vec_accelerate      # embedded Time Machine
    torchrun --nproc_per_node 2 training/train_word2vec_accelerate.py --out runs/word2vec_accelerate_ddp
    accelerate launch --mixed_precision bf16 training/train_word2vec_accelerate.py --architecture cbow

The main way to train stays `hf-seq train word2vec_timemachine` (`train_word2vec`: word2vec.c's own updates,
compiled with numba on a CPU, a Triton kernel on a GPU, many times faster than autograd over small batches). This loop
is for word2vec inside your own PyTorch/accelerate code: another optimizer or schedule, an extra loss, a shared model.
Every epoch draws a fresh sub-sampling and dynamic windows (`word2vec_pair_dataset(seed, epoch)`), the pairs are
shuffled and sharded over the processes, and the learning rate falls linearly to `--min-lr` as in word2vec.c.
Writes the model (safetensors, with its tokenizer) and results.json (mean loss per epoch) to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import default_data_collator
from transformers.utils import logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hf_seq.models.word2vec import Word2VecForPreTraining  # noqa: E402
from hf_seq.models.word2vec.training_word2vec import prepare_word2vec, word2vec_pair_dataset  # noqa: E402

logger = logging.get_logger("hf_seq.train_word2vec_accelerate")
EMBEDDED_CORPUS = os.path.join(ROOT, "hf_seq", "data", "timemachine.txt")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=EMBEDDED_CORPUS, help="text file, one sentence or paragraph per line")
    p.add_argument("--max-lines", type=int, default=None)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--architecture", choices=("skipgram", "cbow"), default="skipgram")
    p.add_argument("--objective", choices=("negative_sampling", "hierarchical_softmax"), default="negative_sampling")
    p.add_argument("--vector-size", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256, help="pairs (skip-gram) or windows (CBOW) per process step")
    p.add_argument("--lr", type=float, default=0.025,
                   help="start rate per pair, as word2vec.c's alpha: the loss is a mean over the batch, so SGD runs "
                        "at lr x batch size")
    p.add_argument("--min-lr", type=float, default=1e-4, help="end rate per pair")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default=None,
                   help="default: what `accelerate launch` or its config says, else no")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where an accelerator exists")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="runs/word2vec_accelerate")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    # accelerate only runs several CPU processes (gloo) when told it is on the CPU: say so when no accelerator exists
    cpu = args.cpu or torch.accelerator.current_accelerator() is None
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=cpu)
    set_seed(args.seed)
    with open(args.corpus, encoding="utf-8") as f:
        lines = [line.lower() for line in f if line.strip()]
    lines = lines[: args.max_lines] if args.max_lines else lines
    tokenizer, config, corpus = prepare_word2vec(
        lines, min_count=args.min_count, vector_size=args.vector_size, window=args.window, negative=args.negative,
        sample=args.sample, architecture=args.architecture, objective=args.objective)
    model = Word2VecForPreTraining(config)
    # the loss is a mean over the global batch (DDP averages the processes' means): scale the per-pair rate by it
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr * args.batch_size * accelerator.num_processes)
    # the schedule runs over all epochs; epoch 0's size stands for every epoch's (sub-sampling varies them a little)
    first_epoch = word2vec_pair_dataset(corpus, config, args.seed, 0)
    steps_per_epoch = math.ceil(len(first_epoch) / (args.batch_size * accelerator.num_processes))
    total = max(1, steps_per_epoch * args.epochs)
    floor = args.min_lr / args.lr
    model, optimizer = accelerator.prepare(model, optimizer)
    # not handed to accelerate (which would step it once per process per step): one step per optimizer step
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(floor, 1.0 - step / total))
    history = []
    for epoch in range(args.epochs):
        dataset = first_epoch if epoch == 0 else word2vec_pair_dataset(corpus, config, args.seed, epoch)
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, collate_fn=default_data_collator,
                            generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        loader = accelerator.prepare(loader)
        model.train()
        summed = torch.zeros((), device=accelerator.device)
        steps = 0
        for batch in tqdm(loader, desc=f"epoch {epoch}", disable=not accelerator.is_local_main_process):
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            summed += loss.detach().float()
            steps += 1
        mean = accelerator.gather(summed.reshape(1)).sum().item() / max(1, steps * accelerator.num_processes)
        history.append({"epoch": epoch, "loss": mean, "steps": steps,
                        "lr_per_pair": scheduler.get_last_lr()[0] / (args.batch_size * accelerator.num_processes)})
        logger.warning("epoch %d: loss %.4f (%d steps per process)", epoch, mean, steps)
    accelerator.wait_for_everyone()
    results = {"history": history, "processes": accelerator.num_processes,
               "mixed_precision": accelerator.mixed_precision, "vocab_size": config.vocab_size, "out": args.out}
    if accelerator.is_main_process:
        os.makedirs(args.out, exist_ok=True)
        accelerator.unwrap_model(model).save_pretrained(args.out)
        tokenizer.save_pretrained(args.out)
        with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


if __name__ == "__main__":
    main()

"""Training helpers for the recurrent language models: stateful truncated BPTT on top of `Trainer`, and perplexity
over a contiguous token stream."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import SequentialSampler
from tqdm.auto import tqdm
from transformers import Trainer
from transformers.utils import logging

logger = logging.get_logger(__name__)


class StatefulLMTrainer(Trainer):
    """`Trainer` for truncated BPTT with the hidden state carried across consecutive batches (Zaremba et al. 2014;
    PyTorch's word_language_model). Expects rows from `hf_seq.data.contiguous_stream_blocks` with
    `per_device_train_batch_size` equal to the number of sub-streams; batches are read in order, never shuffled.

    The carried state is detached (gradients stop at the batch boundary) and reset at the start of every epoch.
    Single process only: a distributed sampler would break the contiguity of the sub-streams.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.world_size > 1:
            raise ValueError("StatefulLMTrainer needs one process: sharding would break the contiguous sub-streams")
        if self.args.gradient_accumulation_steps != 1:
            raise ValueError("StatefulLMTrainer carries state batch to batch; use gradient_accumulation_steps=1")
        self._carried = None
        self._epoch_of_state = None

    def _get_train_sampler(self, *args, **kwargs):
        return SequentialSampler(self.train_dataset)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        epoch = self.state.epoch if self.state.epoch is not None else 0.0
        if self._epoch_of_state is None or int(epoch) != self._epoch_of_state or not model.training:
            self._carried = None  # a new pass over the stream starts from a zero state
        self._epoch_of_state = int(epoch)
        targets = inputs.pop("target_ids")
        state = self._carried if model.training else None
        if state is not None and state.states[0][0].shape[1] != targets.shape[0]:
            state = None
        outputs = model(input_ids=inputs["input_ids"], cache=state, use_cache=True)
        if model.training:
            self._carried = outputs.cache.detach()
        loss = F.cross_entropy(outputs.logits.flatten(0, 1).float(), targets.flatten())
        return (loss, outputs) if return_outputs else loss


@torch.no_grad()
def evaluate_perplexity(model, tokens: np.ndarray, batch_size: int = 10, bptt: int = 35, progress: bool = True) -> dict:
    """Perplexity of `tokens` (one contiguous stream) = exp(token-weighted mean NLL), every token after the first
    predicted exactly once, the state carried across windows as in Zaremba et al.'s evaluation."""
    model.eval()
    device = next(model.parameters()).device
    n = (len(tokens) - 1) // batch_size
    if n < 1:
        raise ValueError(f"{len(tokens)} tokens are too few to evaluate with batch_size={batch_size}")
    data = torch.as_tensor(tokens[: batch_size * n + 1])
    x = data[:-1].view(batch_size, n).to(device)
    y = data[1:].view(batch_size, n).to(device)
    nll, count, cache = 0.0, 0, None
    for start in tqdm(range(0, n, bptt), desc="perplexity", disable=not progress, leave=False):
        xi, yi = x[:, start : start + bptt], y[:, start : start + bptt]
        out = model(input_ids=xi, cache=cache, use_cache=True)
        cache = out.cache
        nll += F.cross_entropy(out.logits.flatten(0, 1).float(), yi.flatten(), reduction="sum").item()
        count += yi.numel()
    mean = nll / count
    return {"loss": mean, "perplexity": math.exp(mean), "tokens": count}


__all__ = ["StatefulLMTrainer", "evaluate_perplexity"]

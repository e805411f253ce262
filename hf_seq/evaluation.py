"""Evaluation in one place: perplexity (state carried for the recurrent LMs, a sliding window for stateless ones).

Translation (BLEU/chrF), word similarity (Spearman) and tagging (seqeval F1) metrics join this module."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


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


def windowed_perplexity(
    model, tokens: np.ndarray, window: int, stride: int, batch_size: int = 16, progress: bool = True
) -> dict:
    """Perplexity of a stateless LM over one stream: windows of `window` tokens every `stride`; the first window
    scores all its targets, later ones only their last `stride` targets, so every token after the first is predicted
    exactly once with at least `window - stride` tokens of context. Token-weighted mean NLL, like
    `evaluate_perplexity`."""
    if not 0 < stride <= window:
        raise ValueError(f"stride ({stride}) must be in (0, window={window}]")
    model.eval()
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    data = torch.as_tensor(tokens)
    n_targets = len(tokens) - 1
    nll, count = 0.0, 0
    starts = list(range(0, max(n_targets - window, 0) + 1, stride)) if n_targets >= window else [0]
    # tail: targets after the last full window
    last_end = starts[-1] + min(window, n_targets)
    jobs = [(s, min(window, n_targets - s), 0 if k == 0 else window - stride) for k, s in enumerate(starts)]
    if last_end < n_targets:
        s = n_targets - window
        jobs.append((s, window, window - (n_targets - last_end)))
    bar = tqdm(total=len(jobs), desc="perplexity", disable=not progress, leave=False)
    with torch.no_grad():
        for length in sorted({j[1] for j in jobs}):
            group = [j for j in jobs if j[1] == length]
            for b in range(0, len(group), batch_size):
                bar.update(len(group[b : b + batch_size]))
                chunk = group[b : b + batch_size]
                x = torch.stack([data[s : s + length] for s, _, _ in chunk])
                y = torch.stack([data[s + 1 : s + length + 1] for s, _, _ in chunk])
                logits = model(input_ids=x.to(device), use_cache=False).logits.float()
                losses = F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(), reduction="none").view(len(chunk), length)
                for row, (_, _, skip) in enumerate(chunk):
                    nll += losses[row, skip:].sum().item()
                    count += length - skip
    bar.close()
    if count != n_targets:
        raise RuntimeError(f"windowed evaluation scored {count} targets, expected {n_targets}")
    mean = nll / count
    return {"loss": mean, "perplexity": math.exp(mean), "tokens": count}


__all__ = ["evaluate_perplexity", "windowed_perplexity"]

"""Long-range check: the vanishing gradient measured, not asserted.

For each cell (RNN, GRU, LSTM; one layer, equal width; float64) the loss at the last step T of a (T+1)-token window is
differentiated with respect to the input embedding at every earlier step, and the norm ||dL_T / dx_{T-k}|| is
averaged over a batch of real text windows, for k = 0..max_lag. Two settings: freshly initialised (the library
default U(-0.1, 0.1) and PyTorch's U(-1/sqrt(H), 1/sqrt(H))), and after a brief stateful training run on the
language-modelling stream. The decay per step is the geometric mean of the ratio between consecutive lags.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from .common import DATA_DIR, pyplot, save_figure, settings_from_overrides

CELLS = ("rnn", "gru", "lstm")


@dataclass
class LongRangeSettings:
    hidden_size: int = 128
    max_lag: int = 100
    windows: int = 32  # text windows averaged per curve
    train_steps: int = 150  # the "briefly trained" setting
    batch_size: int = 20
    bptt: int = 35
    learning_rate: float = 2e-3
    vocab_size: int | None = 2_000  # the rest of PTB maps to <unk>: a 5x cheaper softmax for the trained setting
    seed: int = 0
    threads: int = 1


QUICK = dict(hidden_size=16, max_lag=20, windows=4, train_steps=5, batch_size=4, bptt=10, vocab_size=200)


def _stream(settings: LongRangeSettings, quick: bool):
    from hf_seq.data import embedded_corpus_path, load_text_splits, stream, tokenize_lines
    from hf_seq.tokenization import build_word_level_tokenizer

    ptb = os.path.join(DATA_DIR, "ptb", "ptb.train.txt")
    if os.path.isfile(ptb) and not quick:
        raw, source = load_text_splits(ptb, split_fractions=(0.01, 0.01)), "PTB train"
    else:
        raw, source = load_text_splits(embedded_corpus_path()), "The Time Machine (embedded)"
    tok = build_word_level_tokenizer((t for t in raw["train"]["text"] if t.strip()), vocab_size=settings.vocab_size,
                                     lowercase=True)
    tokens = stream(tokenize_lines(raw, tok, "eos")["train"])
    if quick:
        tokens = tokens[:5000]
    return tokens, len(tok), source


def _model(cell: str, vocab: int, s: LongRangeSettings, init_range: float):
    import torch
    from transformers import AutoModelForCausalLM

    from hf_seq.models.recurrent import GRUConfig, LSTMConfig, RNNConfig

    torch.manual_seed(s.seed)
    cls = {"rnn": RNNConfig, "gru": GRUConfig, "lstm": LSTMConfig}[cell]
    config = cls(vocab_size=vocab, hidden_size=s.hidden_size, num_hidden_layers=1, embedding_dropout=0.0,
                 hidden_dropout=0.0, output_dropout=0.0, initializer_range=init_range)
    return AutoModelForCausalLM.from_config(config)


def gradient_norms(model, windows: np.ndarray) -> np.ndarray:
    """windows: (B, T+1) token ids. Returns mean over the batch of ||dL_T / dx_{T-k}||_2 for k = 0..T-1, where L_T is
    the cross-entropy of predicting token T+1 from the last position (summed over the batch, so each window's
    gradient is its own)."""
    import copy

    import torch
    import torch.nn.functional as F

    # float64: the plain RNN's gradient falls below float32's smallest number (1e-45) within 100 steps
    model = copy.deepcopy(model).double().eval()  # eval: no dropout; the gradient is still computed
    ids = torch.as_tensor(windows)
    x, target = ids[:, :-1], ids[:, -1]
    emb = model.get_input_embeddings()(x).detach().requires_grad_(True)
    logits = model(inputs_embeds=emb, use_cache=False).logits[:, -1]
    F.cross_entropy(logits, target, reduction="sum").backward()
    norms = emb.grad.norm(dim=-1)  # (B, T)
    return norms.flip(1).mean(0).numpy()  # index k = lag from the last step


def _train_briefly(model, tokens: np.ndarray, s: LongRangeSettings) -> float:
    import torch
    import torch.nn.functional as F

    from hf_seq.data import contiguous_stream_blocks

    ds = contiguous_stream_blocks(tokens, s.batch_size, s.bptt).with_format("numpy")
    xs = np.asarray(ds["input_ids"]).reshape(-1, s.batch_size, s.bptt)
    ys = np.asarray(ds["target_ids"]).reshape(-1, s.batch_size, s.bptt)
    opt = torch.optim.Adam(model.parameters(), lr=s.learning_rate)
    model.train()
    cache, loss = None, float("nan")
    for step in range(s.train_steps):
        i = step % len(xs)
        out = model(input_ids=torch.as_tensor(xs[i]), cache=None if i == 0 else cache, use_cache=True)
        cache = out.cache.detach()
        lossv = F.cross_entropy(out.logits.flatten(0, 1), torch.as_tensor(ys[i]).flatten())
        opt.zero_grad()
        lossv.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss = lossv.item()
    return loss


def run(s: LongRangeSettings, results_dir: str, quick: bool) -> dict:
    import torch

    torch.set_num_threads(s.threads)
    tokens, vocab, source = _stream(s, quick)
    rng = np.random.default_rng(s.seed)
    T = s.max_lag + 1
    starts = rng.integers(0, len(tokens) - T - 1, size=s.windows)
    windows = np.stack([tokens[a : a + T + 1] for a in starts])
    settings = {
        "init U(-0.1, 0.1) (hf-seq default)": 0.1,
        f"init U(-1/sqrt(H), 1/sqrt(H)) (PyTorch default, {1 / math.sqrt(s.hidden_size):.3f})": 1 / math.sqrt(s.hidden_size),
        f"after {s.train_steps} training steps": 0.1,
    }
    curves, rows = {}, []
    for name, r in settings.items():
        curves[name] = {}
        for cell in CELLS:
            model = _model(cell, vocab, s, r)
            final_loss = None
            if name.startswith("after"):
                final_loss = round(_train_briefly(model, tokens, s), 3)
            g = gradient_norms(model, windows)
            curves[name][cell] = [float(v) for v in g]
            k_max = len(g) - 1
            decay = (g[k_max] / g[1]) ** (1 / (k_max - 1)) if g[1] > 0 and k_max > 1 else None
            rows.append({
                "setting": name, "cell": cell.upper(), "grad_k1": float(g[1]), "grad_k10": float(g[min(10, k_max)]),
                "grad_kmax": float(g[k_max]), "ratio_kmax_k1": float(g[k_max] / g[1]) if g[1] > 0 else None,
                "decay_per_step": float(decay) if decay is not None else None, "train_loss": final_loss,
            })
    plot = plot_gradients(curves, os.path.join(results_dir, "long_range_gradients.png"), s)
    return {"data": {"source": source, "vocab_size": vocab}, "settings": asdict(s), "rows": rows, "curves": curves,
            "plots": {"gradients": os.path.basename(plot)}}


def plot_gradients(curves: dict, path: str, s: LongRangeSettings) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (name, by_cell) in zip(axes, curves.items()):
        for cell, g in by_cell.items():
            ks = np.arange(1, len(g))
            ax.plot(ks, np.maximum(np.asarray(g[1:]), 1e-300), label=cell.upper())
        ax.set_yscale("log")
        ax.set_xlabel("lag k (steps back from T)")
        ax.set_title(name, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(r"mean $\|\partial L_T / \partial x_{T-k}\|$")
    axes[0].legend()
    fig.suptitle(f"Gradient reaching step T-k (1 layer, hidden {s.hidden_size})")
    return save_figure(fig, path)


def settings_from(overrides: dict, quick: bool) -> LongRangeSettings:
    return settings_from_overrides(LongRangeSettings, QUICK, overrides, quick, "long_range")

"""Plots saved as PNG with matplotlib's Agg backend (the `plots` extra: `pip install hf-seq[plots]`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from transformers.utils import logging

logger = logging.get_logger(__name__)


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # optional extra: fail fast with its name
        raise ImportError("Plotting needs matplotlib: pip install 'hf-seq[plots]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_attention_heatmap(
    weights,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    path: str,
    title: str | None = None,
) -> str:
    """Draw one attention matrix (rows = target/query tokens, columns = source/key tokens) and save it as a PNG.

    `weights` is a (len(target_tokens), len(source_tokens)) array or tensor, e.g. the encoder-decoder attention of one
    head or the mean over heads. Returns `path`.
    """
    import numpy as np

    matrix = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=float)
    if matrix.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(
            f"weights shape {matrix.shape} does not match (target, source) token counts "
            f"({len(target_tokens)}, {len(source_tokens)})."
        )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(0.45 * len(source_tokens) + 2.5, 0.4 * len(target_tokens) + 2.0))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=0.0)
    ax.set_xticks(range(len(source_tokens)), labels=list(source_tokens), rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(len(target_tokens)), labels=list(target_tokens), fontsize=9)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training_curve(log_history: list[dict], path: str, title: str | None = None, metric: str = "loss") -> str:
    """Training loss and evaluation loss against the optimisation step, from `Trainer.state.log_history`."""
    train = [(e["step"], e[metric]) for e in log_history if metric in e and "step" in e]
    evals = [(e["step"], e[f"eval_{metric}"]) for e in log_history if f"eval_{metric}" in e and "step" in e]
    if not train and not evals:
        raise ValueError(f"log_history has no '{metric}' or 'eval_{metric}' entries to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train), label=f"train {metric}")
    if evals:
        ax.plot(*zip(*evals), marker="o", label=f"validation {metric}")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path




def plot_word_map(vectors, words: list[str], path: str, title: str = "word2vec: PCA of chosen words") -> list[str]:
    """Project the vectors of `words` (a `Word2VecKeyedVectors`) to 2-D with PCA and save a labelled PNG.

    Returns the words actually plotted (unknown ones are skipped with a warning)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    known = [w for w in words if w in vectors]
    missing = [w for w in words if w not in vectors]
    if missing:
        logger.warning("plot_word_map: skipping words not in the vocabulary: %s", missing)
    if len(known) < 2:
        raise ValueError(f"need at least 2 known words to plot, got {known}")
    x = np.stack([vectors[w] for w in known]).astype(np.float64)
    x -= x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(xy[:, 0], xy[:, 1], s=12)
    for (px, py), w in zip(xy, known):
        ax.annotate(w, (px, py), fontsize=9, xytext=(3, 3), textcoords="offset points")
    ax.set_title(title)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return known


__all__ = ["plot_attention_heatmap", "plot_training_curve", "plot_word_map"]

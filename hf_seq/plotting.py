"""Every picture hf-seq draws, saved as PNG with matplotlib's Agg backend: training curves, THE attention heatmap
(`plot_attention_heatmap`; `plot_translation_attention` runs a translation model, RNN seq2seq or Transformer, and draws
its cross-attention with it), BLEU by source length, and word-vector maps.

matplotlib is imported on the first plot, not with this module, so importing it never fails.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)


def _save(plt, fig, ax, path: str, title: str | None) -> str:
    """Title, tight layout, a 120-dpi PNG at `path`, figure closed."""
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # optional extra: fail fast with its name
        raise ImportError("Plotting needs matplotlib (a dependency of hf-seq): pip install matplotlib") from err
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
    return _save(plt, fig, ax, path, title)



def plot_bleu_by_length(runs: dict[str, list[dict]], path: str, title: str | None = None) -> str:
    """Grouped bars: one series per system (`{name: hf_seq.evaluation.bleu_by_source_length(...)}`), buckets on the x
    axis."""
    if not runs:
        raise ValueError("runs is empty: pass {system name: bleu_by_source_length rows}")
    labels = [r["bucket"] for r in next(iter(runs.values()))]
    for name, rows in runs.items():
        if [r["bucket"] for r in rows] != labels:
            raise ValueError(f"run {name!r} uses other buckets than the first run")
    plt = _pyplot()
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(1.3 * len(labels) + 2.5, 4))
    for k, (name, rows) in enumerate(runs.items()):
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, [r["bleu"] or 0.0 for r in rows], width=width, label=name)
    counts = [r["sentences"] for r in next(iter(runs.values()))]
    ax.set_xticks(range(len(labels)), labels=[f"{lab}\n(n={n})" for lab, n in zip(labels, counts)])
    ax.set_xlabel("source length (tokens)")
    ax.set_ylabel("BLEU")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _save(plt, fig, ax, path, title)


def _token_labels(tokenizer, ids) -> list[str]:
    # byte-level BPE pieces carry "Ġ" for a leading space; show it as "▁" like SentencePiece for readability
    return [tokenizer.convert_ids_to_tokens(int(i)).replace("Ġ", "▁") for i in ids]


@torch.no_grad()
def plot_translation_attention(
    model,
    tokenizer,
    source: str,
    path: str,
    *,
    target_tokenizer=None,
    layer: int = -1,
    head: int | None = None,
    title: str | None = None,
    **generate_kwargs,
) -> dict:
    """Translate `source` (greedy unless `generate_kwargs` say otherwise), then draw the cross-attention of the
    translation with `plot_attention_heatmap`: rows = generated target tokens, columns = source tokens.

    One code path for every encoder-decoder: the translation is fed back once as teacher-forced decoder input with
    `output_attentions=True` (equal to the attention during generation, since cached == uncached decoding), and
    `cross_attentions[layer]` is read as `(batch, heads, tgt, src)` (Transformer: one `head` or the mean over heads) or
    `(batch, tgt, src)` (RNN attention). Returns {"path", "translation", "source_tokens", "target_tokens", "weights"}
    (`weights`: the (target, source) matrix drawn).
    """
    from .evaluation import default_max_new_tokens

    target_tokenizer = target_tokenizer if target_tokenizer is not None else tokenizer
    was_training = model.training
    model.eval()
    try:
        enc = tokenizer(source, return_tensors="pt", truncation=True)
        inputs = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask")}
        generate_kwargs.setdefault("num_beams", 1)
        generate_kwargs.setdefault("do_sample", False)
        cap = default_max_new_tokens(model, inputs["input_ids"].shape[1], generate_kwargs)
        if cap is not None:
            limit = getattr(model.config, "max_position_embeddings", None)
            generate_kwargs["max_new_tokens"] = min(cap, limit) if limit else cap
        generated = model.generate(**inputs, **generate_kwargs)[:1]  # (1, T), starting with the decoder start token
        out = model(**inputs, decoder_input_ids=generated[:, :-1], output_attentions=True)
    finally:
        model.train(was_training)
    if not out.cross_attentions or out.cross_attentions[layer] is None:
        raise ValueError(f"{type(model).__name__} returns no cross-attention (e.g. an RNN seq2seq with attention='none')")
    weights = out.cross_attentions[layer][0].float()  # row t: the attention while predicting target token t + 1
    multi_head = weights.dim() == 3
    if multi_head:  # (heads, T-1, S)
        weights = weights.mean(0) if head is None else weights[head]
    target_ids = generated[0, 1:]
    source_tokens = _token_labels(tokenizer, inputs["input_ids"][0])
    target_tokens = _token_labels(target_tokenizer, target_ids)
    if title is None:
        layers = len(out.cross_attentions)
        which = ("mean over heads" if head is None else f"head {head}") if multi_head else "attention"
        title = f"encoder-decoder attention, layer {layer % layers + 1} of {layers}, {which}"
    plot_attention_heatmap(weights, source_tokens, target_tokens, path, title=title)
    translation = target_tokenizer.decode(target_ids, skip_special_tokens=True).strip()
    return {"path": path, "translation": translation, "source_tokens": source_tokens, "target_tokens": target_tokens,
            "weights": weights.cpu()}


def plot_word_map(vectors, words: list[str], path: str, title: str = "word2vec: PCA of chosen words") -> list[str]:
    """Project the vectors of `words` (a `Word2VecKeyedVectors`) to 2-D with PCA and save a labelled PNG.

    Returns the words actually plotted (unknown ones are skipped with a warning)."""
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
    plt = _pyplot()
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


__all__ = [
    "plot_attention_heatmap",
    "plot_bleu_by_length",
    "plot_training_curve",
    "plot_translation_attention",
    "plot_word_map",
]

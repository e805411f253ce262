"""Initialise a model's input embeddings from pre-trained word vectors (word2vec / GloVe text files).

The classic recipe for small labelled data (Collobert et al. 2011; Kim 2014): rows of the embedding matrix whose
token has a vector in the file are overwritten, the rest keep their random initialisation; the matrix is then frozen
("static") or fine-tuned ("non-static").
"""

from __future__ import annotations

import math
import os

import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)


def read_word_vectors(path: str | os.PathLike, words: set[str] | None = None) -> tuple[dict[str, list[float]], int]:
    """Read a word-vector text file: word2vec text format (a first line "count dim") or GloVe (no header line).

    Only the vectors of `words` (compared as written or lower-cased) are kept when given (GloVe files hold millions of
    words). Returns (vectors, dim).
    """
    vectors: dict[str, list[float]] = {}
    dim = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.rstrip("\n\r ").split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec header
                continue
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) != dim + 1:
                raise ValueError(f"{path}:{line_no}: expected a word and {dim} numbers, got {len(parts) - 1} numbers.")
            word = parts[0]
            if words is not None and word not in words and word.lower() not in words:
                continue
            if word not in vectors:  # first occurrence wins, as in gensim
                try:
                    values = [float(x) for x in parts[1:]]
                except ValueError as e:
                    raise ValueError(f"{path}:{line_no}: {e}") from e
                if not all(math.isfinite(v) for v in values):
                    raise ValueError(f"{path}:{line_no}: the vector of {word!r} has NaN or inf values.")
                vectors[word] = values
    if dim is None:
        raise ValueError(f"{path} holds no word vectors.")
    return vectors, dim


def load_pretrained_embeddings(
    model,
    tokenizer,
    path: str | os.PathLike,
    freeze: bool = False,
    lowercase_fallback: bool = True,
) -> int:
    """Copy the vectors of `path` into `model.get_input_embeddings()` for every token of `tokenizer`'s vocabulary.

    Args:
        model: a `PreTrainedModel` whose input embedding has one row per token id (`len(tokenizer)` rows at least).
        tokenizer: gives the token -> id map (`get_vocab()`), so rows line up with the ids the model will see.
        path: a word2vec (text) or GloVe file; its dimension must equal the embedding width.
        freeze: keep the embedding fixed during training (`requires_grad=False`; not stored by `save_pretrained`).
        lowercase_fallback: a token missing from the file takes the vector of the first file word equal to it up to
            case (a lower-cased vocabulary meets cased vectors, or the reverse).

    Returns:
        the number of vocabulary tokens that received a vector (special tokens such as `<pad>` never do).
    """
    embedding = model.get_input_embeddings()
    weight = embedding.weight
    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= weight.shape[0]:
        raise ValueError(
            f"the tokenizer has ids up to {max(vocab.values())} but the embedding has only {weight.shape[0]} rows; "
            "size the model with len(tokenizer) or call model.resize_token_embeddings(len(tokenizer))."
        )
    special = set(tokenizer.all_special_tokens)
    wanted = {w for w in vocab if w not in special}
    if lowercase_fallback:
        wanted |= {w.lower() for w in wanted}
    vectors, dim = read_word_vectors(path, wanted)
    by_lower: dict[str, list[float]] = {}
    if lowercase_fallback:
        for word, vec in vectors.items():
            by_lower.setdefault(word.lower(), vec)
    if dim != weight.shape[1]:
        raise ValueError(f"the vectors in {path} have dimension {dim}, the model's embedding has {weight.shape[1]}.")

    ids, rows = [], []
    for token, idx in vocab.items():
        if token in special:
            continue
        vec = vectors.get(token)
        if vec is None and lowercase_fallback:
            vec = by_lower.get(token.lower())
        if vec is not None:
            ids.append(idx)
            rows.append(vec)
    if ids:
        with torch.no_grad():
            weight[torch.tensor(ids)] = torch.tensor(rows, dtype=weight.dtype, device=weight.device)
    weight.requires_grad_(not freeze)
    found = len(ids)
    total = sum(token not in special for token in vocab)
    logger.info(f"initialised {found} of {total} embedding rows from {path} (frozen={freeze})")
    return found


__all__ = ["read_word_vectors", "load_pretrained_embeddings"]

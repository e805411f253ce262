"""Initialise a model's embeddings from pre-trained word vectors (word2vec text/binary, GloVe, fastText `.vec`
files, or an hf-seq word2vec folder such as `hf-seq import vectors` writes).

The classic recipe for small labelled data (Collobert et al. 2011; Kim 2014), also used for the encoder and decoder
of translation models (OpenNMT's `-pre_word_vecs_enc/-pre_word_vecs_dec`; Qi et al. 2018, "When and Why are
Pre-trained Word Embeddings Useful for NMT?"): rows of the embedding matrix whose token has a vector in the file are
overwritten, the rest keep their random initialisation (special tokens never get a file vector); the matrix is then
frozen ("static") or fine-tuned ("non-static").

    load_pretrained_embeddings(classifier, tokenizer, "glove.txt", freeze=True)               # the input embedding
    load_embeddings_for_side(lm, tokenizer, "glove.txt", side="input")                       # recurrent / Transformer LM
    load_seq2seq_embeddings(model, src_tok, tgt_tok, encoder="de.vec", decoder="en.vec",     # RNN seq2seq, Transformer
                            freeze_encoder=True)

Subword tokens are looked up as written, then as the text they decode to (`Ġhouse` → `house`), so whole-word
BPE/WordPiece tokens find their word's vector; coverage (the share of non-special tokens that got a vector) is returned
per side so runs can report it. When the decoder's embedding is tied to the output layer (`tie_word_embeddings`),
loading it initialises the output layer too, and freezing it freezes both.
"""

from __future__ import annotations

import math
import os

import numpy as np
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
        path: a word2vec (text) or GloVe file (or any source `load_embeddings_for_side` reads); its dimension must
            equal the embedding width.
        freeze: keep the embedding fixed during training (`requires_grad=False`; not stored by `save_pretrained`).
        lowercase_fallback: a token missing from the file takes the vector of the first file word equal to it up to
            case (a lower-cased vocabulary meets cased vectors, or the reverse).

    Returns:
        the number of vocabulary tokens that received a vector (special tokens such as `<pad>` never do).
    """
    return load_embeddings_for_side(model, tokenizer, path, side="input", freeze=freeze,
                                    lowercase_fallback=lowercase_fallback)["found"]


SIDES = ("input", "encoder", "decoder")


def embedding_for_side(model, side: str = "input"):
    """The `nn.Embedding` a side of `model` reads: `"input"` (`get_input_embeddings()`: a classifier's or a language
    model's, a seq2seq model's source side), `"encoder"` (the source embedding of an encoder-decoder) or `"decoder"`
    (its target embedding; the source one when the model shares them)."""
    if side not in SIDES:
        raise ValueError(f"side={side!r} is not one of {SIDES}")
    if side == "input":
        return model.get_input_embeddings()
    if not getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(f"side={side!r} needs an encoder-decoder; {type(model).__name__} has only side='input'")
    if side == "encoder":
        return model.get_input_embeddings()
    base = getattr(model, "model", model)
    if hasattr(base, "get_decoder_input_embeddings"):  # the RNN seq2seq (its decoder may share the source embedding)
        return base.get_decoder_input_embeddings()
    decoder = model.get_decoder()
    if hasattr(decoder, "get_input_embeddings"):
        return decoder.get_input_embeddings()
    return decoder.embed_tokens


def _read_vectors(path, wanted: set[str]) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of the `wanted` words from a text file (streamed, only wanted rows kept), a word2vec binary file or an
    hf-seq word2vec folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        from .interop.vectors import keyed_vectors_from_pretrained

        kv = keyed_vectors_from_pretrained(path)
        return {w: kv.vectors[i] for w, i in kv.key_to_index.items() if w in wanted}, kv.vector_size
    if path.endswith(".bin"):
        from .interop.vectors import read_vectors

        kv = read_vectors(path, format="word2vec-binary")
        return {w: kv.vectors[i] for w, i in kv.key_to_index.items() if w in wanted}, kv.vector_size
    vectors, dim = read_word_vectors(path, wanted)
    return vectors, dim


def _lookup_forms(tokenizer, token: str) -> list[str]:
    """The strings a token may be listed under in a word-vector file: as written, then as the text it decodes to."""
    forms = [token]
    try:
        text = tokenizer.convert_tokens_to_string([token]).strip()
    except Exception:  # a tokenizer without a decoder for lone tokens: the token as written only
        text = token
    if text and text != token:
        forms.append(text)
    return forms


def load_embeddings_for_side(
    model,
    tokenizer,
    path: str | os.PathLike,
    side: str = "input",
    freeze: bool = False,
    lowercase_fallback: bool = True,
) -> dict:
    """Initialise one side's embedding from word vectors (see the module docstring). `tokenizer` is that side's
    (the target tokenizer for `side="decoder"` when the vocabularies are separate).

    Returns a report: `found` / `total` non-special tokens, `coverage` (found / total), `dimension`, `frozen`,
    `tied_to_output` (the decoder embedding is also the output layer), `file`."""
    embedding = embedding_for_side(model, side)
    weight = embedding.weight
    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= weight.shape[0]:
        raise ValueError(
            f"the tokenizer has ids up to {max(vocab.values())} but the {side} embedding has only {weight.shape[0]} "
            "rows; size the model with len(tokenizer) or call model.resize_token_embeddings(len(tokenizer))."
        )
    special = set(tokenizer.all_special_tokens)
    forms = {token: _lookup_forms(tokenizer, token) for token in vocab if token not in special}
    wanted = {form for options in forms.values() for form in options}
    if lowercase_fallback:
        wanted |= {w.lower() for w in wanted}
    vectors, dim = _read_vectors(path, wanted)
    if dim != weight.shape[1]:
        raise ValueError(f"the vectors in {path} have dimension {dim}, the model's {side} embedding has "
                         f"{weight.shape[1]}.")
    by_lower: dict = {}
    if lowercase_fallback:
        for word, vec in vectors.items():
            by_lower.setdefault(word.lower(), vec)
    ids, rows = [], []
    for token, options in forms.items():
        vec = next((vectors[f] for f in options if f in vectors), None)
        if vec is None and lowercase_fallback:
            vec = next((by_lower[f.lower()] for f in options if f.lower() in by_lower), None)
        if vec is not None:
            ids.append(vocab[token])
            rows.append(np.asarray(vec, dtype=np.float32))
    if ids:
        with torch.no_grad():
            weight[torch.tensor(ids)] = torch.from_numpy(np.stack(rows)).to(dtype=weight.dtype, device=weight.device)
    weight.requires_grad_(not freeze)
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = output is not None and output.weight is weight
    total = len(forms)
    report = {"file": os.fspath(path), "side": side, "found": len(ids), "total": total,
              "coverage": len(ids) / total if total else 0.0, "dimension": dim, "frozen": freeze,
              "tied_to_output": tied}
    logger.info(f"initialised {len(ids)} of {total} {side} embedding rows ({report['coverage']:.1%}) from {path} "
                f"(frozen={freeze}{', tied to the output layer' if tied else ''})")
    return report


def load_seq2seq_embeddings(
    model,
    source_tokenizer,
    target_tokenizer=None,
    *,
    encoder: str | os.PathLike | None = None,
    decoder: str | os.PathLike | None = None,
    freeze_encoder: bool = False,
    freeze_decoder: bool = False,
    lowercase_fallback: bool = True,
) -> dict:
    """Per-side pre-trained embeddings for an encoder-decoder (RNN seq2seq or Transformer): `encoder` vectors for
    the source vocabulary, `decoder` vectors for the target one (`target_tokenizer`, or the source tokenizer for a
    joint vocabulary). Either side may be None (left as initialised). With shared source/target embeddings
    (`share_encoder_decoder_embeddings` / `share_embeddings`) there is one matrix: give one file (or the same for
    both sides). Returns `{"encoder": report, "decoder": report}` (see `load_embeddings_for_side`)."""
    if not getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(f"{type(model).__name__} is not an encoder-decoder; use load_embeddings_for_side(side='input')")
    target_tokenizer = target_tokenizer if target_tokenizer is not None else source_tokenizer
    shared = embedding_for_side(model, "encoder").weight is embedding_for_side(model, "decoder").weight
    if shared and encoder is not None and decoder is not None and os.fspath(encoder) != os.fspath(decoder):
        raise ValueError(f"the model shares one embedding between encoder and decoder; got two vector files "
                         f"({encoder!r}, {decoder!r}): give one")
    if shared and freeze_encoder != freeze_decoder and encoder is not None and decoder is not None:
        raise ValueError("the model shares one embedding between encoder and decoder: freeze_encoder and "
                         f"freeze_decoder must agree (got {freeze_encoder} and {freeze_decoder})")
    reports = {}
    if encoder is not None:
        reports["encoder"] = load_embeddings_for_side(model, source_tokenizer, encoder, "encoder", freeze_encoder,
                                                      lowercase_fallback)
    if decoder is not None and not (shared and encoder is not None):
        reports["decoder"] = load_embeddings_for_side(model, target_tokenizer, decoder, "decoder", freeze_decoder,
                                                      lowercase_fallback)
    elif decoder is not None:
        reports["decoder"] = dict(reports["encoder"], side="decoder", shared_with="encoder")
    return reports


__all__ = ["read_word_vectors", "load_pretrained_embeddings", "load_embeddings_for_side", "load_seq2seq_embeddings",
           "embedding_for_side"]

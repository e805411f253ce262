"""Between word vectors and hf-seq folders: a `Word2VecModel` + tokenizer from KeyedVectors, remote-code set-up."""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast
from transformers.utils import logging

from ...tokenization import MASK_TOKEN, SPECIAL_TOKENS
from . import (
    Word2VecConfig,
    Word2VecForMaskedLM,
    Word2VecForPreTraining,
    Word2VecKeyedVectors,
    Word2VecModel,
)
from .corpus_word2vec import word_level_tokenizer_from_vocab

logger = logging.get_logger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# 5. interop: vectors from gensim or word2vec C files into a model
# ---------------------------------------------------------------------------------------------------------------------
def model_from_keyed_vectors(vectors, **config_kwargs) -> tuple[Word2VecModel, PreTrainedTokenizerFast]:
    """A `Word2VecModel` + tokenizer holding `vectors` (a `Word2VecKeyedVectors`, a gensim `KeyedVectors` or a
    gensim `Word2Vec`). A gensim `Word2Vec` trained with negative sampling gives a `Word2VecForPreTraining` whose
    output vectors are gensim's `syn1neg`, so training can go on here."""
    source = vectors
    if not isinstance(vectors, Word2VecKeyedVectors):
        vectors = Word2VecKeyedVectors.from_gensim(vectors)
    specials = list(SPECIAL_TOKENS.values()) + [MASK_TOKEN]
    clash = [w for w in vectors.index_to_key if w in specials]
    if clash:
        raise ValueError(f"the vectors contain words spelled like special tokens: {clash}")
    tokenizer = word_level_tokenizer_from_vocab(vectors.index_to_key)
    counts = vectors.counts if vectors.counts is not None else np.arange(len(vectors), 0, -1)
    word_counts = [0] * len(specials) + [max(int(c), 1) for c in counts]
    syn1neg = getattr(source, "syn1neg", None)
    with_output = syn1neg is not None and getattr(source, "negative", 0) > 0
    defaults = {}
    if with_output:
        defaults = {
            "architecture": "skipgram" if source.sg else "cbow",
            "cbow_mean": bool(source.cbow_mean),
            "negative": int(source.negative),
            "ns_exponent": float(source.ns_exponent),
            "window": int(source.window),
            "sample": float(source.sample),
            "min_count": int(source.min_count),
        }
    defaults.update(config_kwargs)
    config = Word2VecConfig(
        vocab_size=len(word_counts),
        vector_size=vectors.vector_size,
        word_counts=word_counts,
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        **defaults,
    )
    model = Word2VecForPreTraining(config) if with_output else Word2VecModel(config)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(specials) :] = torch.from_numpy(vectors.vectors)
        if with_output:
            model.output_layer.weight[len(specials) :] = torch.from_numpy(np.asarray(syn1neg, dtype=np.float32))
    return model, tokenizer


def prepare_remote_code(model) -> None:
    """Make `model.save_pretrained` ship the model code and an `auto_map` for every head, so one folder loads with
    `trust_remote_code=True` as AutoModel (vectors), AutoModelForPreTraining (continue training) and
    AutoModelForMaskedLM (fill-mask) where hf_seq is not installed."""
    Word2VecConfig.register_for_auto_class()
    type(model).register_for_auto_class(
        {Word2VecModel: "AutoModel", Word2VecForMaskedLM: "AutoModelForMaskedLM"}.get(
            type(model), "AutoModelForPreTraining"
        )
    )
    module = "modeling_word2vec"
    model.config.auto_map = {
        "AutoConfig": "configuration_word2vec.Word2VecConfig",
        "AutoModel": f"{module}.Word2VecModel",
        "AutoModelForPreTraining": f"{module}.Word2VecForPreTraining",
        "AutoModelForMaskedLM": f"{module}.Word2VecForMaskedLM",
    }



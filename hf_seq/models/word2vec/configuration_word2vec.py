"""word2vec configuration (Mikolov et al. 2013, "Efficient Estimation of Word Representations in Vector Space" and
"Distributed Representations of Words and Phrases and their Compositionality")."""

import numpy as np
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import PreTrainedConfig

_ARCHITECTURES = ("skipgram", "cbow")
_OBJECTIVES = ("negative_sampling", "hierarchical_softmax")


# Copied from hf_seq.models.recurrent.configuration_recurrent.ConfigFieldTypeError
class ConfigFieldTypeError(StrictDataclassFieldValidationError, TypeError):
    """A config field given a value of the wrong type: a `TypeError`, and huggingface_hub's strict-dataclass error."""


# Copied from hf_seq.models.recurrent.configuration_recurrent.ConfigFieldValueError
class ConfigFieldValueError(StrictDataclassFieldValidationError, ValueError):
    """A config field given a refused value: a `ValueError`, and huggingface_hub's strict-dataclass error."""


# Copied from hf_seq.models.recurrent.configuration_recurrent.readable_field_errors
def readable_field_errors(cls):
    """Make the strict field checks of `cls` raise errors that are also `TypeError` / `ValueError` (the types
    Python code catches for bad arguments), naming the field and the value as before. Apply above `@strict`."""
    strict_setattr = cls.__setattr__

    def __setattr__(self, name, value):
        try:
            strict_setattr(self, name, value)
        except StrictDataclassFieldValidationError as e:
            kind = ConfigFieldTypeError if isinstance(e.__cause__, TypeError) else ConfigFieldValueError
            raise kind(field=name, cause=e.__cause__) from e.__cause__

    cls.__setattr__ = __setattr__
    return cls


@readable_field_errors
class Word2VecConfig(PreTrainedConfig):
    r"""
    Configuration of a word2vec model. Defaults are the original `word2vec.c` / gensim 4 settings.

    Args:
        vocab_size (`int`): number of rows of both vector tables (use `len(tokenizer)`).
        vector_size (`int`): dimension of the word vectors.
        architecture (`str`): `"skipgram"` (predict each context word from the centre word) or `"cbow"` (predict the
            centre word from the mean or sum of its context).
        cbow_mean (`bool`): CBOW averages the context vectors (`True`, as `-cbow 1` in word2vec.c) or sums them.
        objective (`str`): `"negative_sampling"` (`negative` noise words drawn from counts**`ns_exponent`) or
            `"hierarchical_softmax"` (binary decisions along the word's path in a Huffman tree of `word_counts`).
        negative (`int`): noise words per positive pair for negative sampling.
        ns_exponent (`float`): exponent of the noise distribution (0.75 in the paper).
        window (`int`): maximum distance between centre and context word; each centre word draws its own effective
            window uniformly from 1..window ("dynamic window" of word2vec.c).
        sample (`float`): sub-sampling threshold of frequent words (0 disables it).
        min_count (`int`): words rarer than this were dropped from the vocabulary (recorded for reference).
        word_counts (`list[int]`): corpus count of every vocabulary id (0 for special tokens). Drives the noise
            distribution, the Huffman tree and sub-sampling; required for training.
        mask_token_id (`int`, *optional*): id of `<mask>`, never predicted by the fill-mask head.
        initializer_range (`float`): input vectors start uniform in [-r/vector_size, r/vector_size]; 1.0 is gensim 4's
            draw, 0.5 word2vec.c's. The output side starts at zero.
        num_hidden_layers (`int`): always 1, the projection layer of the paper (the input vectors); there for tools
            that read the standard name. `hidden_size` is an alias of `vector_size`.
    """

    model_type = "hf_seq_word2vec"
    # the standard transformers names, so generic tools (PEFT, pipelines, model cards) find the width
    attribute_map = {"hidden_size": "vector_size"}

    vocab_size: int = 100
    vector_size: int = 100
    architecture: str = "skipgram"
    cbow_mean: bool = True
    objective: str = "negative_sampling"
    negative: int = 5
    ns_exponent: float = 0.75
    window: int = 5
    sample: float = 1e-3
    min_count: int = 5
    word_counts: list[int] | None = None
    pad_token_id: int | None = 1
    mask_token_id: int | None = None
    initializer_range: float = 1.0
    tie_word_embeddings: bool = False
    num_hidden_layers: int = 1

    def __post_init__(self, **kwargs):
        # plain dataclass (no @strict): accept ints for floats and numpy ints for counts, then validate with
        # ValueErrors that name the value
        for name in ("vocab_size", "vector_size", "negative", "window", "min_count", "num_hidden_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name}={value!r} must be an integer, got {type(value).__name__}")
        for name in ("sample", "ns_exponent", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"{name}={value!r} must be a number, got {type(value).__name__}")
        self.sample, self.ns_exponent = float(self.sample), float(self.ns_exponent)
        if self.architecture not in _ARCHITECTURES:
            raise ValueError(f"architecture={self.architecture!r} is not one of {_ARCHITECTURES}")
        if self.objective not in _OBJECTIVES:
            raise ValueError(f"objective={self.objective!r} is not one of {_OBJECTIVES}")
        if self.vocab_size < 1 or self.vector_size < 1:
            raise ValueError(
                f"vocab_size ({self.vocab_size}) and vector_size ({self.vector_size}) must both be positive"
            )
        if self.num_hidden_layers != 1:
            raise ValueError(f"num_hidden_layers={self.num_hidden_layers}: word2vec has exactly one (projection) layer")
        if self.window < 1:
            raise ValueError(f"window={self.window} must be >= 1")
        if self.objective == "negative_sampling" and self.negative < 1:
            raise ValueError(f"negative={self.negative} must be >= 1 for objective='negative_sampling'")
        if self.sample < 0:
            raise ValueError(f"sample={self.sample} must be >= 0 (0 disables sub-sampling)")
        if self.min_count < 1:
            raise ValueError(f"min_count={self.min_count} must be >= 1")
        if self.word_counts is not None:
            self.word_counts = [int(c) for c in self.word_counts]
            if len(self.word_counts) != self.vocab_size:
                raise ValueError(
                    f"word_counts has {len(self.word_counts)} entries but vocab_size is {self.vocab_size}"
                )
            if min(self.word_counts) < 0:
                raise ValueError(f"word_counts must be >= 0, got min {min(self.word_counts)}")
            if sum(self.word_counts) == 0:
                raise ValueError("word_counts are all zero: the corpus had no word in the vocabulary")
        for name in ("pad_token_id", "mask_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"{name}={value} is outside the vocabulary [0, {self.vocab_size})")
        super().__post_init__(**kwargs)


__all__ = ["Word2VecConfig"]

"""Configurations of the recurrent family: vanilla RNN (Elman), GRU (Cho et al. 2014) and LSTM (Hochreiter &
Schmidhuber 1997).

Defaults are the "medium" PTB model of Zaremba et al. 2014 (2 layers x 650, dropout 0.5 on non-recurrent connections,
uniform init in [-0.05, 0.05], vocabulary 10k).
"""

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import PreTrainedConfig


class ConfigFieldTypeError(StrictDataclassFieldValidationError, TypeError):
    """A config field given a value of the wrong type: a `TypeError`, and huggingface_hub's strict-dataclass error."""


class ConfigFieldValueError(StrictDataclassFieldValidationError, ValueError):
    """A config field given a refused value: a `ValueError`, and huggingface_hub's strict-dataclass error."""


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
@strict
class RecurrentConfig(PreTrainedConfig):
    r"""
    Base configuration shared by [`RNNConfig`], [`GRUConfig`] and [`LSTMConfig`]; not registered itself.

    Args:
        vocab_size (`int`): size of the token vocabulary.
        embedding_size (`int`, *optional*): width of the token embeddings; defaults to `hidden_size`.
        hidden_size (`int`): width of each recurrent layer (per direction).
        num_hidden_layers (`int`): number of stacked recurrent layers (a deep RNN).
        bidirectional (`bool`): run a second layer right-to-left and concatenate (encoders/classifiers only; a causal
            LM cannot see the future).
        embedding_dropout, hidden_dropout, output_dropout (`float`): dropout on the embeddings, between recurrent
            layers and on the top layer's output (Zaremba et al. 2014 apply it to all non-recurrent connections).
        tie_word_embeddings (`bool`): share the input embedding with the output projection (Press & Wolf 2017; Inan
            et al. 2017). Needs `hidden_size == embedding_size` or `output_projection=True`.
        output_projection (`bool`): add a linear map hidden_size -> embedding_size before the LM head.
        initializer_range (`float`): weights are drawn from U(-initializer_range, initializer_range).
        classifier_pooling (`str`): how sequence classifiers pool over time: `"last"` (final state of each
            direction), `"mean"` or `"max"` over real tokens.
        feature_vocab_size (`int`): token classifiers only: size of a second per-token input (e.g. POS tags) whose
            embedding is added to the word embedding; 0 turns it off.
        use_crf (`bool`): token classifiers only: a linear-chain CRF output layer (the BiLSTM-CRF tagger of Huang et
            al. 2015). The loss is the sequence negative log-likelihood per labelled token, `logits` are the CRF's
            log marginals log p(y_t | x) (their arg-max is posterior decoding) and `decode()` gives the Viterbi path.
    """

    model_type = "hf_seq_recurrent"
    cell_type = None  # set by each architecture's subclass
    keys_to_ignore_at_inference = ["cache", "emissions"]  # Trainer's predictions are the logits alone

    vocab_size: int = 10000
    embedding_size: int | None = None
    hidden_size: int = 650
    num_hidden_layers: int = 2
    bidirectional: bool = False
    embedding_dropout: float | int = 0.5
    hidden_dropout: float | int = 0.5
    output_dropout: float | int = 0.5
    tie_word_embeddings: bool = False
    output_projection: bool = False
    initializer_range: float | int = 0.05
    classifier_pooling: str = "last"
    classifier_dropout: float | int | None = None
    feature_vocab_size: int = 0
    use_crf: bool = False
    use_cache: bool = True
    pad_token_id: int | None = 1
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3

    def __post_init__(self, **kwargs):
        if self.embedding_size is None:
            self.embedding_size = self.hidden_size
        super().__post_init__(**kwargs)
        self._check_values()

    def _check_values(self):
        # Plain ValueError (not @strict's wrapper) so callers can catch the usual exception type.
        for name in ("vocab_size", "hidden_size", "embedding_size", "num_hidden_layers"):
            value = getattr(self, name)
            if value is None or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        for name in ("embedding_dropout", "hidden_dropout", "output_dropout", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {value!r}.")
        if self.feature_vocab_size < 0:
            raise ValueError(f"`feature_vocab_size` must be >= 0, got {self.feature_vocab_size!r}.")
        if self.initializer_range <= 0:
            raise ValueError(f"`initializer_range` must be positive, got {self.initializer_range!r}.")
        if self.tie_word_embeddings and not self.output_projection and self.hidden_size != self.embedding_size:
            raise ValueError(
                f"`tie_word_embeddings=True` needs `hidden_size` ({self.hidden_size}) == `embedding_size` "
                f"({self.embedding_size}), or `output_projection=True` to map one onto the other."
            )
        if self.tie_word_embeddings and self.bidirectional and not self.output_projection:
            raise ValueError(
                "`tie_word_embeddings=True` with `bidirectional=True` gives outputs of width "
                f"{2 * self.hidden_size} != embedding_size {self.embedding_size}; set `output_projection=True`."
            )
        if self.classifier_pooling not in ("last", "mean", "max"):
            raise ValueError(f"`classifier_pooling` must be one of 'last', 'mean', 'max', got {self.classifier_pooling!r}.")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"`{name}` ({value}) must be in [0, vocab_size={self.vocab_size}).")

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1


@readable_field_errors
@strict
class RNNConfig(RecurrentConfig):
    r"""
    Configuration of the vanilla (Elman) RNN: h_t = nonlinearity(W_ih x_t + W_hh h_{t-1} + b).

    Args:
        nonlinearity (`str`): `"tanh"` or `"relu"`.
    """

    model_type = "hf_seq_rnn"
    cell_type = "rnn"

    nonlinearity: str = "tanh"

    def _check_values(self):
        super()._check_values()
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"`nonlinearity` must be 'tanh' or 'relu', got {self.nonlinearity!r}.")


@readable_field_errors
@strict
class GRUConfig(RecurrentConfig):
    r"""Configuration of the gated recurrent unit (Cho et al. 2014)."""

    model_type = "hf_seq_gru"
    cell_type = "gru"


@readable_field_errors
@strict
class LSTMConfig(RecurrentConfig):
    r"""Configuration of the long short-term memory network (Hochreiter & Schmidhuber 1997)."""

    model_type = "hf_seq_lstm"
    cell_type = "lstm"


__all__ = ["RecurrentConfig", "RNNConfig", "GRUConfig", "LSTMConfig"]

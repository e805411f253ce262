"""Configuration of the RNN encoder-decoder (seq2seq) with optional attention.

Defaults follow the GRU + attention setting commonly used on Multi30k (one-layer bidirectional GRU encoder, one-layer
GRU decoder, 256-d embeddings, 512-d hidden state, Bahdanau attention).
"""

from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import PreTrainedConfig

_CELL_TYPES = ("rnn", "gru", "lstm")
_ATTENTION_TYPES = ("none", "bahdanau", "luong")
_LUONG_SCORES = ("dot", "general", "concat", "mlp")
_BRIDGES = ("linear", "copy", "zero", "concat")


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
class RNNSeq2SeqConfig(PreTrainedConfig):
    r"""
    Args:
        vocab_size (`int`): source vocabulary size (also the target one when `target_vocab_size` is None).
        target_vocab_size (`int`, *optional*): target vocabulary size for separate source/target vocabularies.
        cell_type (`str`): `"rnn"` (tanh), `"gru"` or `"lstm"`, for both encoder and decoder.
        encoder_layers / decoder_layers (`int`): stacked recurrent layers.
        bidirectional_encoder (`bool`): run the encoder in both directions; outputs are `2 * hidden_size` wide
            (`hidden_size` with `bridge="concat"`).
        bridge (`str`): how the decoder's initial state is built from the encoder's final state:
            `"linear"` (tanh of a linear map of the top encoder layer's final state(s), Bahdanau et al. 2015 §A.2.2),
            `"copy"` (layer-by-layer copy, Sutskever et al. 2014; unidirectional encoder, equal layers), `"zero"`,
            or `"concat"` (OpenNMT's bidirectional encoder, `encoder_type: brnn`: each direction has `hidden_size // 2`
            units, so encoder outputs are `hidden_size` wide, and each decoder layer starts from the concatenated
            final states of the matching encoder layer's two directions; bidirectional encoder, equal layers).
        encoder_embedding_size / decoder_embedding_size (`int`): embedding widths.
        hidden_size (`int`): recurrent state width (per direction in the encoder, except with `bridge="concat"`).
        attention (`str`): `"none"` (the encoder's final state is the only context), `"bahdanau"` (additive,
            Bahdanau et al. 2015) or `"luong"` (Luong et al. 2015, with `attention_score`).
        attention_score (`str`): Luong score: `"dot"`, `"general"`, `"concat"`, or `"mlp"` (OpenNMT's `mlp` global
            attention: the additive score v^T tanh(W_q h_t + b + W_c h_s) with the bias on the query side, and the
            attentional vector W_o [c_t; h_t] + b_o with a bias and without the tanh of Luong eq. 5).
        input_feeding (`bool`): Luong input feeding (the previous attentional vector is fed to the next step).
        attention_size (`int`, *optional*): width of the additive (Bahdanau / Luong concat) score layer;
            defaults to `hidden_size`.
        position_encoding (`str`): `"none"`, or `"sinusoidal"`: embeddings scaled by sqrt(embedding size) plus the
            interleaved sin/cos table of Vaswani et al. 2017 §3.5, as OpenNMT/eole add to RNN inputs by default.
            Source positions count real tokens (padding takes none); target positions continue across cached steps.
        dropout (`float`): dropout on embeddings, between recurrent layers and before the output layer.
        share_encoder_decoder_embeddings (`bool`): one embedding matrix for source and target (needs a shared
            vocabulary and equal embedding sizes).
        tie_word_embeddings (`bool`): tie the decoder input embedding and the output projection (Press & Wolf 2017).
        embedding_init_std (`float`): embeddings start as N(0, std^2) (1.0 = PyTorch's default). Small embeddings
            (e.g. U(-0.1, 0.1)) leave every activation tiny at the start, where attention scores are flat and their
            gradients second-order: attention models then learn far slower than the attention-free one.
    """

    model_type = "hf_seq_rnn_seq2seq"
    keys_to_ignore_at_inference = ["cache"]
    attribute_map = {"num_hidden_layers": "decoder_layers"}

    vocab_size: int = 8000
    target_vocab_size: int | None = None
    cell_type: str = "gru"
    encoder_layers: int = 1
    decoder_layers: int = 1
    bidirectional_encoder: bool = True
    bridge: str = "linear"
    encoder_embedding_size: int = 256
    decoder_embedding_size: int = 256
    hidden_size: int = 512
    attention: str = "bahdanau"
    attention_score: str = "general"
    input_feeding: bool = False
    attention_size: int | None = None
    position_encoding: str = "none"
    dropout: float = 0.2
    share_encoder_decoder_embeddings: bool = False
    tie_word_embeddings: bool = False
    embedding_init_std: float = 1.0
    pad_token_id: int | None = 1
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    decoder_start_token_id: int | None = 2
    is_encoder_decoder: bool = True
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        if self.attention_size is None:
            self.attention_size = self.hidden_size
        super().__post_init__(**kwargs)
        self._validate()

    @property
    def decoder_vocab_size(self) -> int:
        return self.target_vocab_size if self.target_vocab_size is not None else self.vocab_size

    @property
    def encoder_hidden_size(self) -> int:
        """Units per encoder direction."""
        return self.hidden_size // 2 if self.bridge == "concat" else self.hidden_size

    @property
    def encoder_output_size(self) -> int:
        return self.encoder_hidden_size * (2 if self.bidirectional_encoder else 1)

    def _validate(self):
        if self.cell_type not in _CELL_TYPES:
            raise ValueError(f"cell_type={self.cell_type!r} is not supported; expected one of {_CELL_TYPES}.")
        if self.attention not in _ATTENTION_TYPES:
            raise ValueError(f"attention={self.attention!r} is not supported; expected one of {_ATTENTION_TYPES}.")
        if self.attention_score not in _LUONG_SCORES:
            raise ValueError(
                f"attention_score={self.attention_score!r} is not supported; expected one of {_LUONG_SCORES}."
            )
        if self.bridge not in _BRIDGES:
            raise ValueError(f"bridge={self.bridge!r} is not supported; expected one of {_BRIDGES}.")
        if self.position_encoding not in ("none", "sinusoidal"):
            raise ValueError(
                f"position_encoding={self.position_encoding!r} is not supported; expected 'none' or 'sinusoidal'."
            )
        for name in ("vocab_size", "encoder_layers", "decoder_layers", "hidden_size", "encoder_embedding_size",
                     "decoder_embedding_size", "attention_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer.")
        if self.target_vocab_size is not None and self.target_vocab_size < 1:
            raise ValueError(f"target_vocab_size={self.target_vocab_size!r} must be a positive integer or None.")
        if not self.embedding_init_std > 0:
            raise ValueError(f"embedding_init_std={self.embedding_init_std!r} must be positive.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout!r} must be in [0, 1).")
        if self.input_feeding and self.attention != "luong":
            raise ValueError(
                f"input_feeding=True only applies to attention='luong' (Luong et al. 2015), got attention={self.attention!r}."
            )
        if (
            self.attention == "luong"
            and self.attention_score == "dot"
            and self.encoder_output_size != self.hidden_size
        ):
            raise ValueError(
                f"Luong 'dot' attention needs encoder outputs ({self.encoder_output_size}, bidirectional_encoder="
                f"{self.bidirectional_encoder}) as wide as the decoder state (hidden_size={self.hidden_size}); use "
                "attention_score='general' or bidirectional_encoder=False."
            )
        if self.bridge == "copy" and (self.bidirectional_encoder or self.encoder_layers != self.decoder_layers):
            raise ValueError(
                f"bridge='copy' needs a unidirectional encoder with as many layers as the decoder, got "
                f"bidirectional_encoder={self.bidirectional_encoder}, encoder_layers={self.encoder_layers}, "
                f"decoder_layers={self.decoder_layers}; use bridge='linear'."
            )
        if self.bridge == "concat" and (
            not self.bidirectional_encoder or self.hidden_size % 2 or self.encoder_layers != self.decoder_layers
        ):
            raise ValueError(
                f"bridge='concat' needs a bidirectional encoder with as many layers as the decoder and an even "
                f"hidden_size (hidden_size // 2 units per direction), got bidirectional_encoder="
                f"{self.bidirectional_encoder}, hidden_size={self.hidden_size}, encoder_layers={self.encoder_layers}, "
                f"decoder_layers={self.decoder_layers}."
            )
        if self.position_encoding == "sinusoidal":
            for name in ("encoder_embedding_size", "decoder_embedding_size"):
                if getattr(self, name) % 2:
                    raise ValueError(
                        f"position_encoding='sinusoidal' pairs sin/cos dimensions and needs even embedding sizes, "
                        f"got {name}={getattr(self, name)}."
                    )
        if self.share_encoder_decoder_embeddings:
            if self.target_vocab_size is not None and self.target_vocab_size != self.vocab_size:
                raise ValueError(
                    f"share_encoder_decoder_embeddings=True needs one shared vocabulary, but vocab_size="
                    f"{self.vocab_size} and target_vocab_size={self.target_vocab_size}."
                )
            if self.encoder_embedding_size != self.decoder_embedding_size:
                raise ValueError(
                    f"share_encoder_decoder_embeddings=True needs equal embedding sizes, got encoder_embedding_size="
                    f"{self.encoder_embedding_size} and decoder_embedding_size={self.decoder_embedding_size}."
                )
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.decoder_vocab_size:
                raise ValueError(f"{name}={value} is outside the target vocabulary [0, {self.decoder_vocab_size}).")
        if self.decoder_start_token_id is None:
            raise ValueError("decoder_start_token_id must be set for an encoder-decoder model.")


__all__ = ["RNNSeq2SeqConfig"]

"""Configuration of the Transformer of Vaswani et al. (2017), "Attention Is All You Need" (arXiv:1706.03762)."""

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import PreTrainedConfig


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
@strict
class TransformerConfig(PreTrainedConfig):
    r"""
    Configuration of the encoder-decoder [`TransformerModel`] and [`TransformerForConditionalGeneration`]; the
    decoder-only models use the subclass [`TransformerDecoderConfig`]. Defaults are the paper's base model (Table 3,
    row "base"): d_model 512, d_ff 2048, 8 heads, 6 + 6 layers, P_drop 0.1, shared source/target/output embeddings
    over a joint 37k BPE vocabulary.

    The paper's names are aliases (`attribute_map`): `d_model` → `hidden_size`, `d_ff` → `intermediate_size`,
    `num_heads` → `num_attention_heads`, `N` → `encoder_layers`.

    Args:
        vocab_size (`int`): size of the (joint) vocabulary.
        hidden_size (`int`): d_model.
        intermediate_size (`int`): d_ff, inner size of the position-wise feed-forward network.
        num_attention_heads (`int`): h, heads of every attention layer (d_k = d_v = d_model / h).
        encoder_layers (`int`), decoder_layers (`int`): N for the encoder and the decoder stacks. A decoder-only
            [`TransformerForCausalLM`] uses `decoder_layers` only.
        dropout (`float`): P_drop, applied to each sub-layer output before the residual add and to the sums of the
            embeddings and the positional encodings (§5.4).
        attention_dropout (`float`): dropout on the attention weights (not in the paper; 0 by default).
        activation_dropout (`float`): dropout after the feed-forward activation (not in the paper; 0 by default).
        activation_function (`str`): `"relu"` (paper, eq. 2) or `"gelu"`.
        max_position_embeddings (`int`): longest sequence (source or target) the position table covers.
        position_embedding_type (`str`): `"sinusoidal"` (§3.5) or `"learned"` (the variant of Table 3, row E).
        norm_first (`bool`): `False` = post-LN, LayerNorm(x + Sublayer(x)) as in the paper; `True` = pre-LN,
            x + Sublayer(LayerNorm(x)) with a final LayerNorm on each stack.
        layer_norm_eps (`float`): epsilon of every LayerNorm.
        scale_embedding (`bool`): multiply token embeddings by sqrt(d_model) (§3.4).
        share_embeddings (`bool`): one embedding matrix for source and target tokens (§3.4, joint BPE). In
            transformers weight tying is switched by `tie_word_embeddings`, so this needs it `True`.
        tie_word_embeddings (`bool`): the pre-softmax projection is the target embedding matrix (§3.4).
        pad_token_id, bos_token_id, eos_token_id, decoder_start_token_id (`int`): ids of hf-seq's tokenizers
            (`<pad>`=1, `<bos>`=2, `<eos>`=3); decoding starts from `<bos>`.
    """

    model_type = "hf_seq_transformer"
    keys_to_ignore_at_inference = ["cache"]
    attribute_map = {
        "d_model": "hidden_size",
        "d_ff": "intermediate_size",
        "num_heads": "num_attention_heads",
        "N": "encoder_layers",
        # a decoder-only model and the generation cache count decoder layers
        "num_hidden_layers": "decoder_layers",
    }

    vocab_size: int = 37000
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_attention_heads: int = 8
    encoder_layers: int = 6
    decoder_layers: int = 6
    dropout: float | int = 0.1
    attention_dropout: float | int = 0.0
    activation_dropout: float | int = 0.0
    activation_function: str = "relu"
    max_position_embeddings: int = 1024
    position_embedding_type: str = "sinusoidal"
    norm_first: bool = False
    layer_norm_eps: float = 1e-5
    scale_embedding: bool = True
    share_embeddings: bool = True
    tie_word_embeddings: bool = True
    is_encoder_decoder: bool = True
    use_cache: bool = True
    pad_token_id: int | None = 1
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    decoder_start_token_id: int | None = 2

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """As `PreTrainedConfig.from_dict`, except that a decoder-only folder saved before the decoder-only model had
        its own model_type (issue #19: `hf_seq_transformer` with `architectures: ["TransformerForCausalLM"]` or
        `is_encoder_decoder: false`) loads as a [`TransformerDecoderConfig`], so the Auto classes build its LM."""
        config_dict = _upgrade_decoder_only_layout(config_dict)
        if cls is TransformerConfig and config_dict.get("model_type") == TransformerDecoderConfig.model_type:
            return TransformerDecoderConfig.from_dict(config_dict, **kwargs)
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs) -> tuple[dict, dict]:
        # the same upgrade before `from_pretrained` compares model types (no "model of type ..." warning)
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        return _upgrade_decoder_only_layout(config_dict), kwargs

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)  # resolves the paper-name aliases (d_model=...) first
        # checked here too (not only in `validate_architecture`) so that a bad value raises a plain ValueError
        self._check_values()

    def validate_architecture(self):
        """Part of `@strict` validation (`config.validate()`)."""
        self._check_values()

    def _check_values(self):
        """Every size positive, heads dividing d_model, dropouts in [0, 1), known option names."""
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_attention_heads",
            "max_position_embeddings",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        for name in ("encoder_layers", "decoder_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"`hidden_size` (d_model={self.hidden_size}) must be divisible by `num_attention_heads` "
                f"(h={self.num_attention_heads})."
            )
        if self.hidden_size % 2 != 0 and self.position_embedding_type == "sinusoidal":
            raise ValueError(f"sinusoidal positions need an even `hidden_size`, got {self.hidden_size}.")
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {value}.")
        if self.activation_function not in ("relu", "gelu"):
            raise ValueError(f"`activation_function` must be 'relu' or 'gelu', got {self.activation_function!r}.")
        if self.position_embedding_type not in ("sinusoidal", "learned"):
            raise ValueError(
                f"`position_embedding_type` must be 'sinusoidal' or 'learned', got {self.position_embedding_type!r}."
            )
        if self.share_embeddings and not self.tie_word_embeddings:
            raise ValueError(
                "`share_embeddings=True` needs `tie_word_embeddings=True` (transformers only ties weights when "
                "`tie_word_embeddings` is set); use share_embeddings=False for separate source/target embeddings."
            )
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"`{name}`={value} is outside the vocabulary [0, {self.vocab_size}).")


def _upgrade_decoder_only_layout(config_dict: dict) -> dict:
    """An old decoder-only config.json (the encoder-decoder's model_type) with the decoder-only model_type."""
    decoder_only = "TransformerForCausalLM" in (config_dict.get("architectures") or ()) or (
        config_dict.get("is_encoder_decoder") is False
    )
    if decoder_only and config_dict.get("model_type") == TransformerConfig.model_type:
        return {**config_dict, "model_type": TransformerDecoderConfig.model_type}
    return config_dict


@readable_field_errors
@strict
class TransformerDecoderConfig(TransformerConfig):
    r"""
    Configuration of the decoder-only [`TransformerForCausalLM`] and its body [`TransformerDecoderModel`]: the
    fields of [`TransformerConfig`] with the encoder switched off (`is_encoder_decoder=False`, `encoder_layers=0`,
    separate from any source embedding). A model type of its own (issue #19) so that the Auto classes and pipelines
    never mistake a translation folder for a language model, or the reverse.
    """

    model_type = "hf_seq_transformer_lm"

    encoder_layers: int = 0
    share_embeddings: bool = False
    is_encoder_decoder: bool = False

    def to_diff_dict(self) -> dict:
        # written although it is the base default: the key that tools (and hf-seq before #19) read for "decoder-only"
        return {**super().to_diff_dict(), "is_encoder_decoder": False}

    def _check_values(self):
        super()._check_values()
        if self.is_encoder_decoder:
            raise ValueError(
                "`TransformerDecoderConfig` is decoder-only: `is_encoder_decoder` must be False; use TransformerConfig "
                "for the encoder-decoder."
            )


__all__ = ["TransformerConfig", "TransformerDecoderConfig"]

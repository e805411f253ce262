from .configuration_transformer import TransformerConfig, TransformerDecoderConfig
from .modeling_transformer import (
    TransformerDecoderModel,
    TransformerForCausalLM,
    TransformerForConditionalGeneration,
    TransformerModel,
    TransformerPreTrainedModel,
    sinusoidal_position_encoding,
)

__all__ = [
    "TransformerConfig",
    "TransformerDecoderConfig",
    "TransformerPreTrainedModel",
    "TransformerModel",
    "TransformerDecoderModel",
    "TransformerForConditionalGeneration",
    "TransformerForCausalLM",
    "sinusoidal_position_encoding",
]

from .configuration_transformer import TransformerConfig
from .modeling_transformer import (
    TransformerForCausalLM,
    TransformerForConditionalGeneration,
    TransformerModel,
    TransformerPreTrainedModel,
    sinusoidal_position_encoding,
)

__all__ = [
    "TransformerConfig",
    "TransformerPreTrainedModel",
    "TransformerModel",
    "TransformerForConditionalGeneration",
    "TransformerForCausalLM",
    "sinusoidal_position_encoding",
]

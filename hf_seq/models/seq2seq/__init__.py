from .configuration_seq2seq import RNNSeq2SeqConfig
from .modeling_seq2seq import (
    RNNSeq2SeqCache,
    RNNSeq2SeqEncoderOutput,
    RNNSeq2SeqForConditionalGeneration,
    RNNSeq2SeqModel,
    RNNSeq2SeqPreTrainedModel,
)

__all__ = [
    "RNNSeq2SeqConfig",
    "RNNSeq2SeqCache",
    "RNNSeq2SeqEncoderOutput",
    "RNNSeq2SeqPreTrainedModel",
    "RNNSeq2SeqModel",
    "RNNSeq2SeqForConditionalGeneration",
]

"""hf-seq: the classic sequence models as first-class Hugging Face models.

`import hf_seq` registers every config and model with the transformers Auto classes and the `hf-seq-translation`
pipeline task; saved folders also load without hf-seq through `trust_remote_code=True`.
"""

__version__ = "0.1.0"

from . import pipelines  # noqa: F401  (registers the hf-seq-translation task)
from .auto import register_auto_classes
from .models.recurrent import (
    GRUConfig,
    GRUForCausalLM,
    GRUForSequenceClassification,
    GRUForTokenClassification,
    GRUModel,
    LSTMConfig,
    LSTMForCausalLM,
    LSTMForSequenceClassification,
    LSTMForTokenClassification,
    LSTMModel,
    RecurrentCache,
    RNNConfig,
    RNNForCausalLM,
    RNNForSequenceClassification,
    RNNForTokenClassification,
    RNNModel,
)
from .models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration, RNNSeq2SeqModel
from .models.transformer import (
    TransformerConfig,
    TransformerDecoderConfig,
    TransformerDecoderModel,
    TransformerForCausalLM,
    TransformerForConditionalGeneration,
    TransformerModel,
)
from .models.word2vec import Word2VecConfig, Word2VecForMaskedLM, Word2VecForPreTraining, Word2VecModel
from .tokenization import build_bpe_tokenizer, build_char_level_tokenizer, build_word_level_tokenizer

register_auto_classes()

__all__ = [
    "register_auto_classes",
    "RNNConfig", "GRUConfig", "LSTMConfig",
    "RNNModel", "GRUModel", "LSTMModel",
    "RNNForCausalLM", "GRUForCausalLM", "LSTMForCausalLM",
    "RNNForSequenceClassification", "GRUForSequenceClassification", "LSTMForSequenceClassification",
    "RNNForTokenClassification", "GRUForTokenClassification", "LSTMForTokenClassification",
    "RecurrentCache",
    "RNNSeq2SeqConfig", "RNNSeq2SeqModel", "RNNSeq2SeqForConditionalGeneration",
    "TransformerConfig", "TransformerDecoderConfig", "TransformerModel", "TransformerDecoderModel", "TransformerForConditionalGeneration", "TransformerForCausalLM",
    "Word2VecConfig", "Word2VecModel", "Word2VecForPreTraining", "Word2VecForMaskedLM",
    "build_word_level_tokenizer", "build_char_level_tokenizer", "build_bpe_tokenizer",
]  # fmt: skip

"""Registers every hf-seq config and model with the transformers Auto classes.

One block per model family. `register_auto_classes()` runs once on `import hf_seq`; it is idempotent.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

_DONE = False


AUTO_CLASSES = {
    cls.__name__: cls
    for cls in (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForPreTraining,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )
}


def _register(config_cls, **auto_to_model):
    """`_register(LSTMConfig, AutoModel=LSTMModel, ...)`: the config's model_type plus one model per Auto class."""
    AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
    for auto_name, model_cls in auto_to_model.items():
        AUTO_CLASSES[auto_name].register(config_cls, model_cls, exist_ok=True)


# --- recurrent family (RNN / GRU / LSTM) ---
def _register_recurrent():
    from .models.recurrent import (
        GRUConfig,
        GRUForCausalLM,
        GRUModel,
        LSTMConfig,
        LSTMForCausalLM,
        LSTMModel,
        RNNConfig,
        RNNForCausalLM,
        RNNModel,
    )

    _register(RNNConfig, AutoModel=RNNModel, AutoModelForCausalLM=RNNForCausalLM)
    _register(GRUConfig, AutoModel=GRUModel, AutoModelForCausalLM=GRUForCausalLM)
    _register(LSTMConfig, AutoModel=LSTMModel, AutoModelForCausalLM=LSTMForCausalLM)


# --- recurrent classifiers and taggers (sequence / token classification heads on RNN / GRU / LSTM) ---
def _register_recurrent_classification():
    from .models.recurrent import (
        GRUConfig,
        GRUForSequenceClassification,
        GRUForTokenClassification,
        LSTMConfig,
        LSTMForSequenceClassification,
        LSTMForTokenClassification,
        RNNConfig,
        RNNForSequenceClassification,
        RNNForTokenClassification,
    )

    for config_cls, seq_cls, tok_cls in (
        (RNNConfig, RNNForSequenceClassification, RNNForTokenClassification),
        (GRUConfig, GRUForSequenceClassification, GRUForTokenClassification),
        (LSTMConfig, LSTMForSequenceClassification, LSTMForTokenClassification),
    ):
        _register(config_cls, AutoModelForSequenceClassification=seq_cls, AutoModelForTokenClassification=tok_cls)


# --- RNN encoder-decoder (seq2seq, with or without attention) ---
def _register_seq2seq():
    from .models.seq2seq import RNNSeq2SeqConfig, RNNSeq2SeqForConditionalGeneration, RNNSeq2SeqModel

    _register(RNNSeq2SeqConfig, AutoModel=RNNSeq2SeqModel, AutoModelForSeq2SeqLM=RNNSeq2SeqForConditionalGeneration)


# --- Transformer (Vaswani et al. 2017): encoder-decoder and decoder-only ---
def _register_transformer():
    from .models.transformer import (
        TransformerConfig,
        TransformerForCausalLM,
        TransformerForConditionalGeneration,
        TransformerModel,
    )

    _register(
        TransformerConfig,
        AutoModel=TransformerModel,
        AutoModelForSeq2SeqLM=TransformerForConditionalGeneration,
        AutoModelForCausalLM=TransformerForCausalLM,
    )


# --- word2vec (skip-gram / CBOW, negative sampling / hierarchical softmax) ---
def _register_word2vec():
    from .models.word2vec import Word2VecConfig, Word2VecForMaskedLM, Word2VecForPreTraining, Word2VecModel

    _register(
        Word2VecConfig,
        AutoModel=Word2VecModel,
        AutoModelForPreTraining=Word2VecForPreTraining,
        AutoModelForMaskedLM=Word2VecForMaskedLM,
    )


def register_auto_classes():
    global _DONE
    if _DONE:
        return
    _register_recurrent()
    _register_recurrent_classification()
    _register_transformer()
    _register_seq2seq()
    _register_word2vec()
    _DONE = True


__all__ = ["register_auto_classes"]

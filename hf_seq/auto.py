"""The static table of every hf-seq model class and the Auto class it is registered under.

Like transformers' `models/auto/modeling_auto.py` (`MODEL_MAPPING_NAMES`), the table is plain data: publishing, the
command line, the model cards and the tests read `REGISTRY`, and `register_auto_classes()` (run once on
`import hf_seq`) hands the same rows to `AutoConfig.register` / `AutoModel*.register`.
"""

from __future__ import annotations

import dataclasses

import transformers

from .models import recurrent, seq2seq, transformer, word2vec  # the four families; `hf_seq` re-exports their names

# Auto class -> (pipeline task, model-card / Hub task type)
TASKS = {
    "AutoModelForCausalLM": ("text-generation", "text-generation"),
    "AutoModelForSeq2SeqLM": ("hf-seq-translation", "translation"),
    "AutoModelForSequenceClassification": ("text-classification", "text-classification"),
    "AutoModelForTokenClassification": ("token-classification", "token-classification"),
    "AutoModelForMaskedLM": ("fill-mask", "fill-mask"),
    "AutoModelForPreTraining": ("feature-extraction", "feature-extraction"),
    "AutoModel": ("feature-extraction", "feature-extraction"),
}


@dataclasses.dataclass(frozen=True)
class RegisteredClass:
    """One row of the registry: a model class, its config class, its family and the Auto class that loads it."""

    family: str  # recurrent | seq2seq | transformer | word2vec
    config_class: type
    auto_class: str
    model_class: type

    @property
    def task(self) -> str:
        return TASKS[self.auto_class][0]


def _rows(family: str, config_class: type, **auto_to_model) -> list[RegisteredClass]:
    return [RegisteredClass(family, config_class, auto, model) for auto, model in auto_to_model.items()]


REGISTRY: tuple[RegisteredClass, ...] = (
    # --- recurrent family: language models and encoders, classifiers and taggers on RNN / GRU / LSTM ---
    *_rows("recurrent", recurrent.RNNConfig, AutoModel=recurrent.RNNModel,
           AutoModelForCausalLM=recurrent.RNNForCausalLM,
           AutoModelForSequenceClassification=recurrent.RNNForSequenceClassification,
           AutoModelForTokenClassification=recurrent.RNNForTokenClassification),
    *_rows("recurrent", recurrent.GRUConfig, AutoModel=recurrent.GRUModel,
           AutoModelForCausalLM=recurrent.GRUForCausalLM,
           AutoModelForSequenceClassification=recurrent.GRUForSequenceClassification,
           AutoModelForTokenClassification=recurrent.GRUForTokenClassification),
    *_rows("recurrent", recurrent.LSTMConfig, AutoModel=recurrent.LSTMModel,
           AutoModelForCausalLM=recurrent.LSTMForCausalLM,
           AutoModelForSequenceClassification=recurrent.LSTMForSequenceClassification,
           AutoModelForTokenClassification=recurrent.LSTMForTokenClassification),
    # --- Transformer (Vaswani et al. 2017): encoder-decoder and decoder-only ---
    *_rows("transformer", transformer.TransformerConfig, AutoModel=transformer.TransformerModel,
           AutoModelForSeq2SeqLM=transformer.TransformerForConditionalGeneration),
    *_rows("transformer", transformer.TransformerDecoderConfig, AutoModel=transformer.TransformerDecoderModel,
           AutoModelForCausalLM=transformer.TransformerForCausalLM),
    # --- RNN encoder-decoder (seq2seq, with or without attention) ---
    *_rows("seq2seq", seq2seq.RNNSeq2SeqConfig, AutoModel=seq2seq.RNNSeq2SeqModel,
           AutoModelForSeq2SeqLM=seq2seq.RNNSeq2SeqForConditionalGeneration),
    # --- word2vec (skip-gram / CBOW, negative sampling / hierarchical softmax) ---
    *_rows("word2vec", word2vec.Word2VecConfig, AutoModel=word2vec.Word2VecModel,
           AutoModelForPreTraining=word2vec.Word2VecForPreTraining, AutoModelForMaskedLM=word2vec.Word2VecForMaskedLM),
)  # fmt: skip


class UnknownModelClassError(ValueError):
    """A class name that is not in the registry."""


def class_by_name(name: str) -> RegisteredClass:
    """The registry row of a model class name (a config.json `architectures` entry)."""
    for entry in REGISTRY:
        if entry.model_class.__name__ == name:
            return entry
    known = ", ".join(sorted(e.model_class.__name__ for e in REGISTRY))
    raise UnknownModelClassError(f"{name!r} is not an hf-seq model class; known: {known}")


def base_class_for(entry: RegisteredClass) -> type | None:
    """The `AutoModel` class (the body without a head) of the same config."""
    for other in REGISTRY:
        if other.config_class is entry.config_class and other.auto_class == "AutoModel":
            return other.model_class
    return None


_DONE = False


def register_auto_classes() -> None:
    """Register every row with `AutoConfig` and its `AutoModel*` class; idempotent."""
    global _DONE
    if _DONE:
        return
    for entry in REGISTRY:
        transformers.AutoConfig.register(entry.config_class.model_type, entry.config_class, exist_ok=True)
        getattr(transformers, entry.auto_class).register(entry.config_class, entry.model_class, exist_ok=True)
    _DONE = True
    from .peft_defaults import register_peft_defaults  # PEFT's default LoRA targets (a no-op without PEFT)

    register_peft_defaults()


__all__ = ["REGISTRY", "TASKS", "RegisteredClass", "UnknownModelClassError", "class_by_name", "base_class_for",
           "register_auto_classes"]

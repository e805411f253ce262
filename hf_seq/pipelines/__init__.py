"""hf-seq pipelines, registered with transformers' pipeline registry on import.

`hf-seq-translation`: any `AutoModelForSeq2SeqLM` + tokenizer (transformers 5 removed `translation`).
"""

import os

from transformers import AutoModelForSeq2SeqLM
from transformers.pipelines import PIPELINE_REGISTRY

from .translation import Seq2SeqTranslationPipeline

TRANSLATION_TASK = "hf-seq-translation"


def register_pipelines():
    if TRANSLATION_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            TRANSLATION_TASK, pipeline_class=Seq2SeqTranslationPipeline, pt_model=AutoModelForSeq2SeqLM
        )


def save_translation_pipeline(model, tokenizer, save_directory, target_tokenizer=None):
    """Save model + tokenizer(s) + this pipeline's code so that, in a process without hf_seq,
    `pipeline(model=save_directory, trust_remote_code=True)` translates. Model classes are registered for remote
    code (`auto_map`) too."""
    register_pipelines()
    model.config.__class__.register_for_auto_class()
    model.__class__.register_for_auto_class("AutoModelForSeq2SeqLM")
    pipe = Seq2SeqTranslationPipeline(model=model, tokenizer=tokenizer, target_tokenizer=target_tokenizer)
    pipe.save_pretrained(save_directory)
    if target_tokenizer is not None and target_tokenizer is not tokenizer:
        target_tokenizer.save_pretrained(os.path.join(save_directory, "target_tokenizer"))
    return pipe


register_pipelines()

__all__ = ["TRANSLATION_TASK", "Seq2SeqTranslationPipeline", "register_pipelines", "save_translation_pipeline"]

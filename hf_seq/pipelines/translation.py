"""A translation pipeline for any `AutoModelForSeq2SeqLM` (transformers 5 removed the built-in `translation` task).

This file is saved next to the model (`custom_pipelines` in config.json) and loaded with `trust_remote_code=True`,
so it imports only torch and public transformers.
"""

import os

import torch
from transformers import AutoTokenizer, Pipeline
from transformers.utils import logging

logger = logging.get_logger(__name__)

_PREPROCESS_KEYS = ("truncation", "max_source_length")
_POSTPROCESS_KEYS = ("skip_special_tokens", "clean_up_tokenization_spaces", "return_tensors")
_TOKENIZER_INPUTS = ("input_ids", "attention_mask")


class Seq2SeqTranslationPipeline(Pipeline):
    """Translate text with an encoder-decoder: `pipe("a sentence")` -> `[{"translation_text": ...}]`.

    Batch input (`pipe([...], batch_size=8)`) pads the sources with the tokenizer's pad token. Generation keywords
    (`num_beams`, `max_new_tokens`, `do_sample`, `num_return_sequences`, ...) go to `model.generate()`. When target
    text uses its own vocabulary, pass `target_tokenizer=` or save it in a `target_tokenizer/` subfolder of the model.
    Without `max_length` / `max_new_tokens` (here or in the model's generation config) a translation may be up to
    `2 * source_length + 10` tokens long.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, target_tokenizer=None, **kwargs):
        super().__init__(*args, **kwargs)
        if target_tokenizer is None:
            folder = getattr(self.model, "name_or_path", None) or ""
            sub = os.path.join(folder, "target_tokenizer")
            if os.path.isdir(sub):
                target_tokenizer = AutoTokenizer.from_pretrained(sub)
        self.target_tokenizer = target_tokenizer if target_tokenizer is not None else self.tokenizer

    def _sanitize_parameters(self, **kwargs):
        preprocess = {k: kwargs.pop(k) for k in _PREPROCESS_KEYS if k in kwargs}
        postprocess = {k: kwargs.pop(k) for k in _POSTPROCESS_KEYS if k in kwargs}
        return preprocess, kwargs, postprocess  # everything else is a generate() keyword

    def preprocess(self, text, truncation=False, max_source_length=None):
        if not isinstance(text, str):
            raise TypeError(f"Expected a source sentence (str), got {type(text).__name__}.")
        encoded = self.tokenizer(
            text, return_tensors="pt", truncation=truncation or max_source_length is not None,
            max_length=max_source_length,
        )
        return {k: encoded[k] for k in _TOKENIZER_INPUTS if k in encoded}

    def _forward(self, model_inputs, **generate_kwargs):
        in_b, src_len = model_inputs["input_ids"].shape
        set_length = any(k in generate_kwargs for k in ("max_length", "max_new_tokens"))
        model_defaults = self.model.generation_config.to_diff_dict()
        if not set_length and not any(k in model_defaults for k in ("max_length", "max_new_tokens")):
            generate_kwargs["max_new_tokens"] = 2 * src_len + 10
        output_ids = self.model.generate(**model_inputs, **generate_kwargs)
        if not isinstance(output_ids, torch.Tensor):
            output_ids = output_ids.sequences
        out_b = output_ids.shape[0]
        return {"output_ids": output_ids.reshape(in_b, out_b // in_b, -1)}  # (batch, num_return_sequences, len)

    def postprocess(self, model_outputs, skip_special_tokens=True, clean_up_tokenization_spaces=True, return_tensors=False):
        records = []
        for ids in model_outputs["output_ids"][0]:
            if return_tensors:
                records.append({"translation_token_ids": ids.tolist()})
                continue
            text = self.target_tokenizer.decode(
                ids, skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=clean_up_tokenization_spaces
            )
            records.append({"translation_text": text.strip()})
        return records


__all__ = ["Seq2SeqTranslationPipeline"]

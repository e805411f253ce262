"""Fast inference: CTranslate2 (the Transformer) and ONNX Runtime (every generative model) exports, with runners.

    from hf_seq.export import to_ctranslate2, to_onnx, load_runner
    to_ctranslate2("my-transformer", "my-transformer-ct2", quantization="int8")
    load_runner("my-transformer-ct2").translate(["ein Satz"], num_beams=4)

An exported folder carries `hf_seq_export.json` (format, task, family), the tokenizer and generation_config.json;
`load_runner(folder)` returns the matching runner: `.translate(list[str], num_beams=None, max_new_tokens=None)`
for translation models, `.generate_text(prompt, max_new_tokens=32, num_beams=None)` for language models. ONNX runners
are `GenerationMixin` models too, so `runner.generate(input_ids=...)` is transformers' own `generate()`.
The engines are optional (`pip install hf-seq[export]`); importing this package does not need them.
"""

from __future__ import annotations

import os

from ._common import MARKER_FILE, is_exported_folder, read_marker
from .ctranslate2_export import CT2_QUANTIZATIONS, CTranslate2Generator, CTranslate2Translator, to_ctranslate2
from .onnx_export import ONNX_QUANTIZATIONS, quantize_onnx_int8, to_onnx
from .onnx_runners import (
    ONNX_RUNNERS,
    ORTRecurrentForCausalLM,
    ORTRNNSeq2SeqForConditionalGeneration,
    ORTStateCache,
    ORTTransformerForCausalLM,
    ORTTransformerForConditionalGeneration,
)
from .torch_quantization import quantize_dynamic_int8


def load_runner(folder, **kwargs):
    """The runner of an exported folder, chosen by its `hf_seq_export.json`.

    kwargs go to the runner: CTranslate2 (`device`, `compute_type`, `intra_threads`, `inter_threads`) or ONNX Runtime
    (`num_threads`)."""
    marker = read_marker(folder)
    if marker is None:
        raise ValueError(
            f"{os.fspath(folder)!r} holds no {MARKER_FILE}: not a folder written by hf_seq.export.to_ctranslate2 / "
            "to_onnx (or `hf-seq export`)"
        )
    if marker["format"] == "ctranslate2":
        cls = CTranslate2Translator if marker["task"] == "translation" else CTranslate2Generator
        return cls(folder, **kwargs)
    key = (marker["family"], marker["task"])
    if key not in ONNX_RUNNERS:
        raise ValueError(f"{folder}: no ONNX runner for family {key[0]!r} and task {key[1]!r}")
    return ONNX_RUNNERS[key](folder, **kwargs)


__all__ = [
    "to_ctranslate2",
    "to_onnx",
    "load_runner",
    "is_exported_folder",
    "read_marker",
    "MARKER_FILE",
    "CT2_QUANTIZATIONS",
    "ONNX_QUANTIZATIONS",
    "CTranslate2Translator",
    "CTranslate2Generator",
    "ORTStateCache",
    "ORTRecurrentForCausalLM",
    "ORTRNNSeq2SeqForConditionalGeneration",
    "ORTTransformerForConditionalGeneration",
    "ORTTransformerForCausalLM",
    "quantize_onnx_int8",
    "quantize_dynamic_int8",
]

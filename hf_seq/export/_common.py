"""What every export format shares: loading the model to export, the folder's marker file, the tokenizer copy."""

from __future__ import annotations

import json
import os
import shutil

from transformers import PreTrainedModel
from transformers.utils import logging

from ..io_utils import write_json_atomic

logger = logging.get_logger(__name__)

MARKER_FILE = "hf_seq_export.json"
MARKER_VERSION = 1
FORMATS = ("ctranslate2", "onnx")
# files `tokenizer.save_pretrained` writes; copied next to the exported model
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


def model_family(model: PreTrainedModel) -> str:
    """`transformer`, `recurrent` or `seq2seq` from the model class (static table, no discovery)."""
    from ..models.recurrent import RecurrentForCausalLM
    from ..models.seq2seq import RNNSeq2SeqForConditionalGeneration
    from ..models.transformer import TransformerForCausalLM, TransformerForConditionalGeneration

    if isinstance(model, (TransformerForConditionalGeneration, TransformerForCausalLM)):
        return "transformer"
    if isinstance(model, RecurrentForCausalLM):
        return "recurrent"
    if isinstance(model, RNNSeq2SeqForConditionalGeneration):
        return "seq2seq"
    raise TypeError(
        f"cannot export a {type(model).__name__}: expected one of TransformerForConditionalGeneration, "
        "TransformerForCausalLM, RNN/GRU/LSTMForCausalLM or RNNSeq2SeqForConditionalGeneration"
    )


def task_of(model: PreTrainedModel) -> str:
    return "translation" if model.config.is_encoder_decoder else "text-generation"


def load_model_and_tokenizer(folder_or_model, tokenizer=None):
    """(model in eval mode, tokenizer or None, source folder or None) from a saved folder or a model object."""
    if isinstance(folder_or_model, PreTrainedModel):
        return folder_or_model.eval(), tokenizer, None
    if not isinstance(folder_or_model, (str, os.PathLike)):
        raise TypeError(
            f"expected a saved model folder (str or path) or a PreTrainedModel, got {type(folder_or_model).__name__}"
        )
    folder = os.fspath(folder_or_model)
    if os.path.isfile(os.path.join(folder, MARKER_FILE)):
        raise ValueError(f"{folder} is already an exported folder ({MARKER_FILE}); export the original model folder")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from .. import register_auto_classes
    from ..hub.loading import load_checked

    register_auto_classes()
    config = AutoConfig.from_pretrained(folder)
    auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    model = load_checked(folder, auto)
    if tokenizer is None and os.path.isfile(os.path.join(folder, "tokenizer.json")):
        tokenizer = AutoTokenizer.from_pretrained(folder)
    return model.eval(), tokenizer, folder


def prepare_output_dir(output_dir) -> str:
    """Create `output_dir`; refuse a non-empty folder that is not an earlier export (never overwrite user files)."""
    output_dir = os.fspath(output_dir)
    if os.path.isfile(output_dir):
        raise ValueError(f"output_dir {output_dir!r} is a file; give a folder")
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not os.path.isfile(os.path.join(output_dir, MARKER_FILE)):
            raise ValueError(
                f"output_dir {output_dir!r} is not empty and holds no {MARKER_FILE}; give a new or empty folder"
            )
        shutil.rmtree(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    return output_dir


def save_tokenizer(tokenizer, source_folder: str | None, output_dir: str) -> bool:
    """Save the tokenizer (and a `target_tokenizer/` subfolder of the source folder) into the exported folder."""
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    if source_folder is not None:
        target = os.path.join(source_folder, "target_tokenizer")
        if os.path.isdir(target):
            shutil.copytree(target, os.path.join(output_dir, "target_tokenizer"), dirs_exist_ok=True)
    return tokenizer is not None


def write_marker(output_dir: str, **fields) -> dict:
    from .. import __version__

    marker = {"marker_version": MARKER_VERSION, "hf_seq_version": __version__, **fields}
    write_json_atomic(os.path.join(output_dir, MARKER_FILE), marker, sort_keys=True)
    return marker


def finish_export(output_dir: str, model: PreTrainedModel, tokenizer, source_folder: str | None, **fields) -> dict:
    """What every export writes beside the engine's files: the tokenizer, generation_config.json, the marker (format,
    task, model type, architecture, `fields`) and the README. Returns the marker."""
    has_tokenizer = save_tokenizer(tokenizer, source_folder, output_dir)
    model.generation_config.save_pretrained(output_dir)
    marker = write_marker(output_dir, task=task_of(model), model_type=model.config.model_type,
                          architecture=type(model).__name__, has_tokenizer=has_tokenizer, **fields)  # fmt: skip
    write_readme(output_dir, marker)
    return marker


def read_marker(folder) -> dict | None:
    """The folder's `hf_seq_export.json`, or None when the folder is not an hf-seq export."""
    path = os.path.join(os.fspath(folder), MARKER_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        marker = json.load(f)
    if marker.get("format") not in FORMATS:
        raise ValueError(f"{path}: unknown export format {marker.get('format')!r}; expected one of {FORMATS}")
    return marker


def is_exported_folder(folder) -> bool:
    """True when `folder` was written by `to_ctranslate2` / `to_onnx` (the `hf-seq translate` switch)."""
    return os.path.isfile(os.path.join(os.fspath(folder), MARKER_FILE))


def default_max_new_tokens(source_length: int) -> int:
    # the translation pipeline's default (hf_seq/pipelines/translation.py)
    return 2 * source_length + 10


def require(module: str, extra: str = "export"):
    """Import an optional engine or fail fast naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is required for this export path; install it with `pip install hf-seq[{extra}]` "
            f"(or `pip install {module}`)"
        ) from e


README_TEMPLATE = """# {architecture} exported by hf-seq ({format}{quant})

```python
from hf_seq.export import load_runner
runner = load_runner("{folder}")
print({call})
```

Command line: `{cli}`. Exported with `hf_seq.export.to_{format}`; `hf_seq_export.json` says how.
"""


def write_readme(output_dir: str, marker: dict) -> None:
    """The exported folder's README: the three-line snippet that runs it."""
    if marker["task"] == "translation":
        call, cli = 'runner.translate(["a sentence"], num_beams=4)', f'hf-seq translate {output_dir} "a sentence"'
    else:
        call, cli = 'runner.generate_text("a prompt", max_new_tokens=32)', f'hf-seq generate {output_dir} "a prompt"'
    quant = f", {marker['quantization']}" if marker.get("quantization") else ""
    text = README_TEMPLATE.format(
        architecture=marker["architecture"], format=marker["format"], quant=quant, folder=output_dir, call=call, cli=cli
    )
    tmp = os.path.join(output_dir, ".README.md.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, os.path.join(output_dir, "README.md"))

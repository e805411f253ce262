"""Language-modelling data through `datasets`: local text files or a Hub dataset, tokenised with `map(batched=True)`,
then grouped into fixed-length blocks (shuffled training) or laid out as contiguous streams (stateful truncated BPTT).
"""

from __future__ import annotations

import os
from importlib import resources

import numpy as np
from datasets import Dataset, DatasetDict, load_dataset
from transformers.utils import logging

logger = logging.get_logger(__name__)

SPLITS = ("train", "validation", "test")


def embedded_corpus_path(name: str = "timemachine.txt") -> str:
    """Path of a corpus shipped inside the package (The Time Machine, public domain)."""
    return str(resources.files("hf_seq").joinpath("data", name))


def _check_files(files):
    files = [files] if isinstance(files, str) else list(files or [])
    for f in files:
        if not os.path.isfile(f):
            raise FileNotFoundError(f"data file {f!r} does not exist")
    return files


def load_text_splits(
    train_files: str | list[str] | None = None,
    validation_files: str | list[str] | None = None,
    test_files: str | list[str] | None = None,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    text_column: str = "text",
    split_fractions: tuple[float, float] = (0.05, 0.05),
) -> DatasetDict:
    """Load train/validation/test text as a `DatasetDict` with one `text` column of lines.

    With only `train_files`, the last `split_fractions` of its lines (in order, so the text stays contiguous) become
    validation and test. With neither files nor a dataset name, the embedded Time Machine is used.
    """
    if dataset_name:
        raw = load_dataset(dataset_name, dataset_config)
        raw = DatasetDict({("validation" if k == "valid" else k): v for k, v in raw.items()})
        if text_column != "text":
            raw = raw.rename_column(text_column, "text")
        return raw
    if not train_files:
        train_files = embedded_corpus_path()
    files = {"train": _check_files(train_files)}
    if validation_files:
        files["validation"] = _check_files(validation_files)
    if test_files:
        files["test"] = _check_files(test_files)
    # keep empty lines: they are paragraph breaks and the text must stay in order
    raw = load_dataset("text", data_files=files, keep_linebreaks=False)
    if "validation" not in raw:
        n = len(raw["train"])
        n_val, n_test = (max(1, int(n * f)) for f in split_fractions)
        if n < n_val + n_test + 1:
            raise ValueError(f"{files['train']} has {n} lines: too few to split off validation and test sets")
        train = raw["train"]
        raw = DatasetDict(
            train=train.select(range(n - n_val - n_test)),
            validation=train.select(range(n - n_val - n_test, n - n_test)),
            test=train.select(range(n - n_test, n)),
        )
    return raw


def tokenize_lines(raw: DatasetDict, tokenizer, line_separator: str = "eos", num_proc: int | None = None) -> DatasetDict:
    """Tokenise every line. `line_separator`: "eos" appends `<eos>` to each non-empty line (Zaremba et al.'s PTB
    setup), "space" joins lines with a space (hard-wrapped prose), "none" concatenates them as they are."""
    if line_separator not in ("eos", "space", "none"):
        raise ValueError(f"line_separator must be 'eos', 'space' or 'none', got {line_separator!r}")
    eos = tokenizer.eos_token_id
    space = tokenizer.convert_tokens_to_ids(" ") if line_separator == "space" else None
    if line_separator == "space" and space == tokenizer.unk_token_id:
        space = None  # word-level vocabularies have no space token: the word boundary is implicit

    def encode(batch):
        ids = tokenizer([t.strip() for t in batch["text"]], add_special_tokens=False)["input_ids"]
        out = []
        for seq in ids:
            if seq and line_separator == "eos":
                seq = seq + [eos]
            elif seq and space is not None:
                seq = seq + [space]
            out.append(seq)
        return {"input_ids": out}

    return raw.map(encode, batched=True, remove_columns=raw["train"].column_names, num_proc=num_proc,
                   desc="Tokenizing")


def stream(tokenized: Dataset) -> np.ndarray:
    """The whole split as one int64 token stream."""
    parts = [np.asarray(ids, dtype=np.int64) for ids in tokenized["input_ids"] if len(ids)]
    if not parts:
        raise ValueError("the split contains no tokens")
    return np.concatenate(parts)


def group_into_blocks(tokens: np.ndarray, block_size: int) -> Dataset:
    """Fixed-length blocks for shuffled training: each row is `block_size` tokens, labels = input_ids (the model
    shifts them); the remainder that does not fill a block is dropped."""
    n = len(tokens) // block_size
    if n == 0:
        raise ValueError(f"{len(tokens)} tokens cannot fill one block of block_size={block_size}")
    blocks = tokens[: n * block_size].reshape(n, block_size)
    return Dataset.from_dict({"input_ids": blocks, "labels": blocks.copy()})


def contiguous_stream_blocks(tokens: np.ndarray, batch_size: int, bptt: int) -> Dataset:
    """Rows for stateful truncated BPTT (Zaremba et al. 2014; PyTorch's word_language_model `batchify`).

    The stream is cut into `batch_size` contiguous sub-streams; row `k * batch_size + b` holds tokens
    `[k*bptt, (k+1)*bptt)` of sub-stream `b` as inputs and the next token of each as `target_ids`. Read in order in
    batches of `batch_size`, batch k+1 continues every row of batch k, so the recurrent state can be carried over.
    """
    per_stream = (len(tokens) - 1) // batch_size
    steps = per_stream // bptt
    if steps == 0:
        raise ValueError(f"{len(tokens)} tokens are too few for batch_size={batch_size} x bptt={bptt}")
    inputs = tokens[: batch_size * per_stream].reshape(batch_size, per_stream)
    targets = tokens[1 : batch_size * per_stream + 1].reshape(batch_size, per_stream)
    # (B, steps, bptt) -> (steps, B, bptt) -> rows
    x = inputs[:, : steps * bptt].reshape(batch_size, steps, bptt).transpose(1, 0, 2).reshape(-1, bptt)
    y = targets[:, : steps * bptt].reshape(batch_size, steps, bptt).transpose(1, 0, 2).reshape(-1, bptt)
    return Dataset.from_dict({"input_ids": x, "target_ids": y})


__all__ = [
    "embedded_corpus_path",
    "load_text_splits",
    "tokenize_lines",
    "stream",
    "group_into_blocks",
    "contiguous_stream_blocks",
]

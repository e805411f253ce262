"""Word vectors in: word2vec text/binary, GloVe (no header) and fastText `.vec` files → a `Word2VecModel` folder.

    import_vectors("glove.6B.300d.txt", "glove-300d")          # format guessed: no "count dim" header → GloVe
    kv = keyed_vectors_from_pretrained("glove-300d")            # or a Hub repo id with the same layout
    pipeline("feature-extraction", model="glove-300d")          # one vector per word

Files are streamed into one preallocated float32 array (GloVe needs a first pass to count its lines), so reading a
400k x 300 file peaks near the array's size, not at several times it as a list of Python floats would. The model's
embedding is that same array (no copy): special tokens take the first rows (`<unk> <pad> <bos> <eos> <mask>`,
zero vectors unless the file itself holds a vector for that spelling, as GloVe's `<unk>`), then the file's words in
file order. Nothing is unpickled anywhere: folders are read through safetensors and tokenizer.json only.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch import nn
from transformers.utils import logging

from ..models.word2vec import Word2VecConfig, Word2VecKeyedVectors, Word2VecModel
from ..models.word2vec.corpus_word2vec import word_level_tokenizer_from_vocab
from ..models.word2vec.keyed_vectors_word2vec import _is_float
from ..tokenization import MASK_TOKEN, SPECIAL_TOKENS

logger = logging.get_logger(__name__)

FORMATS = ("word2vec", "word2vec-binary", "glove", "fasttext")
SPECIALS = list(SPECIAL_TOKENS.values()) + [MASK_TOKEN]
_CHUNK = 1 << 20


def detect_format(path: str | os.PathLike) -> str:
    """`word2vec-binary` for a `.bin` file, `word2vec` for text with a `count dim` first line (fastText's `.vec` is
    the same layout), else `glove` (the first line is already a word and its numbers)."""
    path = os.fspath(path)
    if path.endswith(".bin"):
        return "word2vec-binary"
    with open(path, "rb") as f:
        first = f.readline(1 << 16)
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return "fasttext" if path.endswith(".vec") else "word2vec"
    if len(parts) < 2:
        raise ValueError(f"{path}:1: neither a 'count dim' header nor 'word v1 .. vd': {first[:80]!r}")
    return "glove"


def _count_lines(path: str) -> int:
    """Lines of a file (a last line without newline counts), reading 1 MiB at a time."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _parse_row(text: str, dim: int, where: str, word: str) -> np.ndarray:
    try:  # numpy's C parser: several times faster than float() per value
        row = np.fromstring(text, dtype=np.float32, sep=" ") if text else np.empty(0, np.float32)
    except ValueError:  # a value that is not a number: found and named below
        row = np.empty(0, np.float32)
    if row.shape[0] != dim:
        bad = next((v for v in text.split() if not _is_float(v)), None)
        if bad is not None:
            raise ValueError(f"{where}: {bad!r} (word {word!r}) is not a number")
        raise ValueError(f"{where}: {row.shape[0]} values for {word!r}, expected {dim}")
    if not np.isfinite(row).all():
        raise ValueError(f"{where}: the vector of {word!r} holds NaN or inf")
    return row


class _Table:
    """The preallocated `(len(SPECIALS) + rows, dim)` array and the words, filled row by row. A word spelled like a
    special token fills that token's row; a repeated word keeps its first vector (gensim's rule) and is counted."""

    def __init__(self, rows: int, dim: int):
        self.array = np.zeros((len(SPECIALS) + rows, dim), dtype=np.float32)
        self.words: list[str] = []
        self.seen: dict[str, int] = {}
        self.special_rows = {w: i for i, w in enumerate(SPECIALS)}
        self.repeated = 0
        self.specials_found: list[str] = []

    def slot(self, word: str) -> np.ndarray | None:
        """The row to write `word`'s vector into, or None to skip it."""
        if word in self.special_rows:
            if word in self.specials_found:
                self.repeated += 1
                return None
            self.specials_found.append(word)
            return self.array[self.special_rows[word]]
        if word in self.seen:
            self.repeated += 1
            return None
        row = len(SPECIALS) + len(self.words)
        if row >= self.array.shape[0]:
            raise ValueError(f"more words than the {self.array.shape[0] - len(SPECIALS)} announced")
        self.seen[word] = row
        self.words.append(word)
        return self.array[row]

    def finish(self, path: str) -> tuple[np.ndarray, list[str]]:
        if self.repeated:
            logger.warning(f"{path}: {self.repeated} repeated word(s) skipped (the first vector of each is kept)")
        if self.specials_found:
            logger.info(f"{path}: vectors for {self.specials_found} fill those special tokens' rows")
        self.seen.clear()
        # a prefix of the rows: a view, not a copy
        return self.array[: len(SPECIALS) + len(self.words)], self.words


def _read_text(path: str, has_header: bool, limit: int | None, errors: str) -> _Table:
    with open(path, "rb") as f:
        first = f.readline()
        if has_header:
            try:
                total, dim = (int(x) for x in first.split())
            except ValueError:
                raise ValueError(f"{path}:1: the first line must be 'count dim' (two integers), got {first[:80]!r}") from None
            start = 2
        else:
            parts = first.rstrip().split(b" ")
            dim = len(parts) - 1
            if dim < 1:
                raise ValueError(f"{path}:1: expected 'word v1 .. vd', got {first[:80]!r}")
            total = _count_lines(path) - (first.strip() == b"")
            f.seek(0)
            start = 1
        if total < 0 or dim < 1:
            raise ValueError(f"{path}:1: count {total} and dim {dim} must be >= 0 and >= 1")
        count = total if limit is None else min(limit, total)
        table = _Table(count, dim)
        number = start - 1
        read = 0
        while read < count:
            raw = f.readline()
            number += 1
            if not raw:
                raise ValueError(f"{path}:{number}: the file ends after {read} of the {count} words expected")
            if not raw.strip():
                if has_header:
                    raise ValueError(f"{path}:{number}: empty line")
                continue
            try:
                line = raw.decode("utf-8", errors=errors)
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({e.reason} at byte {e.start}); pass "
                                 "unicode_errors='replace' to read it anyway") from None
            line = line.rstrip("\r\n").rstrip(" ")
            word, _, rest = line.partition(" ")
            read += 1
            slot = table.slot(word)
            if slot is not None:
                slot[:] = _parse_row(rest, dim, f"{path}:{number}", word)
    return table


def _read_binary(path: str, limit: int | None, errors: str) -> _Table:
    with open(path, "rb") as f:
        first = f.readline()
        try:
            total, dim = (int(x) for x in first.split())
        except ValueError:
            raise ValueError(f"{path}:1: the first line must be 'count dim' (two integers), got {first[:80]!r}") from None
        count = total if limit is None else min(limit, total)
        table, row_bytes = _Table(count, dim), 4 * dim
        buffer, pos, offset = b"", 0, len(first)  # buffer[pos:] is unread; offset = file position of buffer[0]
        for i in range(count):
            while True:  # the word: skip separators, read up to the next space
                while pos < len(buffer) and buffer[pos] in b"\n ":
                    pos += 1
                space = buffer.find(b" ", pos)
                if space >= 0 and space + 1 + row_bytes <= len(buffer):
                    break
                more = f.read(_CHUNK + row_bytes)
                if not more:
                    raise ValueError(f"{path}: word {i + 1} (byte {offset + pos}): truncated binary file, {count} "
                                     "words expected")
                offset += pos
                buffer, pos = buffer[pos:] + more, 0
            try:
                word = buffer[pos:space].decode("utf-8", errors=errors)
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}: word {i + 1} (byte {offset + pos}): not valid UTF-8 ({e.reason})") from None
            slot = table.slot(word)
            if slot is not None:
                slot[:] = np.frombuffer(buffer, dtype="<f4", count=dim, offset=space + 1)
                if not np.isfinite(slot).all():
                    raise ValueError(f"{path}: word {i + 1} ({word!r}): the vector holds NaN or inf")
            pos = space + 1 + row_bytes
    return table


def read_vectors_array(
    path: str | os.PathLike, format: str | None = None, limit: int | None = None, unicode_errors: str = "strict"
) -> tuple[np.ndarray, list[str]]:
    """Stream a vector file into one array: returns `(table, words)` where `table` is `(5 + len(words), dim)`
    float32, rows 0-4 the special tokens (`<unk> <pad> <bos> <eos> <mask>`), then `words` in file order."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vector file {path!r} does not exist")
    if format is None:
        format = detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not supported; expected one of {FORMATS} or None (guess)")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    if format == "word2vec-binary":
        table = _read_binary(path, limit, unicode_errors)
    else:
        table = _read_text(path, has_header=format != "glove", limit=limit, errors=unicode_errors)
    if not table.words:
        raise ValueError(f"{path} holds no word vectors")
    return table.finish(path)


def read_vectors(
    path: str | os.PathLike, format: str | None = None, limit: int | None = None, unicode_errors: str = "strict"
) -> Word2VecKeyedVectors:
    """A `Word2VecKeyedVectors` of the file's words (file order); the special-token rows are left out."""
    table, words = read_vectors_array(path, format, limit, unicode_errors)
    return Word2VecKeyedVectors(words, table[len(SPECIALS) :])


def model_from_vector_table(table: np.ndarray, words: list[str], lowercase: bool = False):
    """A `Word2VecModel` whose embedding IS `table` (shared memory, no copy) and its word-level tokenizer.

    Word counts are unknown in these files; the config records the file order as descending pseudo-counts (as
    `model_from_keyed_vectors` does), so `Word2VecKeyedVectors.from_model` gives the words back in file order."""
    tokenizer = word_level_tokenizer_from_vocab(words, lowercase=lowercase)
    n = len(words)
    config = Word2VecConfig(
        vocab_size=table.shape[0],
        vector_size=table.shape[1],
        word_counts=[0] * len(SPECIALS) + list(range(n, 0, -1)),
        min_count=1,
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
    )
    with torch.device("meta"):  # no second (V, d) table allocated and randomly initialised
        model = Word2VecModel(config)
    model.embeddings = nn.Embedding.from_pretrained(torch.from_numpy(table), freeze=False)
    model.eval()
    return model, tokenizer


def import_vectors(
    path: str | os.PathLike,
    output_dir: str | os.PathLike,
    format: str | None = None,
    *,
    limit: int | None = None,
    lowercase: bool = False,
    unicode_errors: str = "strict",
) -> str:
    """Convert a word2vec text/binary, GloVe or fastText `.vec` file into a hf-seq word2vec folder (config,
    model.safetensors, tokenizer) that loads with `AutoModel` / `pipeline("feature-extraction")` (remote code
    included) and with `keyed_vectors_from_pretrained`. `format` is guessed when None (see `detect_format`);
    `limit` keeps the first rows; `lowercase` makes the tokenizer lower-case its input (for lower-cased vectors
    such as glove.6B). Returns the output folder."""
    from ..io_utils import atomic_folder
    from ..models.word2vec.conversion_word2vec import prepare_remote_code

    table, words = read_vectors_array(path, format, limit, unicode_errors)
    model, tokenizer = model_from_vector_table(table, words, lowercase=lowercase)
    prepare_remote_code(model)
    output_dir = os.fspath(output_dir)
    os.makedirs(os.path.dirname(os.path.abspath(output_dir)), exist_ok=True)
    with atomic_folder(output_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    logger.info(f"{path}: {len(words)} words x {table.shape[1]} dims written to {output_dir}")
    return output_dir


# ---------------------------------------------------------------------------------------------------------------------
# reading a folder back without transformers' model classes (and without unpickling)
# ---------------------------------------------------------------------------------------------------------------------
_EMBEDDING_KEYS = ("embeddings.weight", "word2vec.embeddings.weight")


def keyed_vectors_from_pretrained(
    folder_or_repo_id: str | os.PathLike, revision: str | None = None, include_unseen: bool = False
) -> Word2VecKeyedVectors:
    """`Word2VecKeyedVectors` of a hf-seq word2vec folder or Hub repo (`Word2VecModel`, `Word2VecForPreTraining` or
    `Word2VecForMaskedLM` weights; any safetensors repo with the same config.json / tokenizer.json layout).

    Only config.json, tokenizer.json and *.safetensors are read (a repo is fetched with those patterns only), so a
    pickled `pytorch_model.bin` is never opened. Words come most frequent first (the config's `word_counts`); words
    of count 0 (special tokens, words never seen) are left out unless `include_unseen`."""
    from safetensors import safe_open

    folder = os.fspath(folder_or_repo_id)
    if not os.path.isdir(folder):
        if os.path.exists(folder) or folder.startswith((".", "/", "~")):
            raise ValueError(f"{folder!r} is not a folder: expected a word2vec model folder or a Hub repo id")
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            folder, revision=revision, allow_patterns=["config.json", "tokenizer.json", "*.safetensors"]
        )
    config_path = os.path.join(folder, "config.json")
    tokenizer_path = os.path.join(folder, "tokenizer.json")
    for needed in (config_path, tokenizer_path):
        if not os.path.isfile(needed):
            raise ValueError(f"{folder_or_repo_id}: {os.path.basename(needed)} is missing (a word2vec folder has "
                             "config.json, tokenizer.json and model.safetensors)")
    weights = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    if not weights:
        raise ValueError(f"{folder_or_repo_id}: no *.safetensors file (pickled weights are not read)")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("model_type") != Word2VecConfig.model_type:
        raise ValueError(f"{folder_or_repo_id}: model_type {config.get('model_type')!r} is not "
                         f"{Word2VecConfig.model_type!r}: not a word2vec folder")
    table = None
    for name in weights:
        with safe_open(os.path.join(folder, name), framework="np") as st:
            key = next((k for k in _EMBEDDING_KEYS if k in st.keys()), None)
            if key is not None:
                table = st.get_tensor(key)
                break
    if table is None:
        raise ValueError(f"{folder_or_repo_id}: none of {weights} holds {' or '.join(_EMBEDDING_KEYS)}")
    with open(tokenizer_path, encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    id_to_word = {i: w for w, i in vocab.items()}
    counts = np.asarray(config.get("word_counts") or [1] * table.shape[0])
    if counts.shape[0] != table.shape[0]:
        raise ValueError(f"{folder_or_repo_id}: {counts.shape[0]} word_counts for {table.shape[0]} vectors")
    order = np.argsort(-counts, kind="stable")
    if not include_unseen:
        order = order[counts[order] > 0]
    order = np.asarray([i for i in order if i in id_to_word], dtype=np.int64)
    if len(order) and np.array_equal(order, np.arange(order[0], order[0] + len(order))):
        rows = table[order[0] : order[0] + len(order)]  # file order (an imported folder): a view, no second copy
    else:
        rows = table[order]
    return Word2VecKeyedVectors([id_to_word[int(i)] for i in order], rows, counts[order])


__all__ = [
    "FORMATS",
    "detect_format",
    "read_vectors",
    "read_vectors_array",
    "model_from_vector_table",
    "import_vectors",
    "keyed_vectors_from_pretrained",
]

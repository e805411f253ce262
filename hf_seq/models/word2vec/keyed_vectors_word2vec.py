"""Word vectors with the query API gensim users know, and the word2vec C text/binary formats.

    kv = Word2VecKeyedVectors.from_model(model, tokenizer)      # words ordered by corpus count
    kv.most_similar(positive=["king", "woman"], negative=["man"], topn=5)
    kv.evaluate_word_analogies("questions-words.txt")           # 30k most frequent words, as gensim
    kv.save_word2vec_format("vectors.bin", binary=True)         # readable by gensim and word2vec.c tools

Only numpy is needed here (the module is not part of the remote-code model files: modeling_word2vec does not import
it). Files are written atomically; a reader's error names the file and the line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np
from transformers.utils import logging

from ...io_utils import atomic_write

logger = logging.get_logger(__name__)


def _check_count(name: str, value, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}")


def spearman(x, y) -> float:
    """Spearman rank correlation: `scipy.stats.spearmanr` (the one the package uses everywhere)."""
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)).statistic)


class Word2VecKeyedVectors:
    """Words and their vectors (`[V, d]` float32), most frequent first when counts are known."""

    def __init__(self, words: list[str], vectors: np.ndarray, counts: Iterable[int] | None = None):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"need one row per word: {len(words)} words but vectors of shape {vectors.shape}")
        self.index_to_key = list(words)
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            seen, repeated = set(), None
            for w in self.index_to_key:
                if w in seen:
                    repeated = w
                    break
                seen.add(w)
            raise ValueError(f"duplicate words in the vocabulary (first: {repeated!r})")
        self.vectors = vectors
        self.counts = None if counts is None else np.asarray(list(counts), dtype=np.int64)
        self._normed = None

    # --- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, tokenizer, include_unseen: bool = False) -> Word2VecKeyedVectors:
        """Input vectors of a word2vec model, words sorted by count (descending), words of count 0 left out."""
        config = model.config
        table = model.get_input_embeddings().weight.detach().float().cpu().numpy()
        id_to_word = {i: w for w, i in tokenizer.get_vocab().items()}
        counts = np.asarray(config.word_counts if config.word_counts is not None else [1] * config.vocab_size)
        order = np.argsort(-counts, kind="stable")
        if not include_unseen:
            order = order[counts[order] > 0]
        order = [i for i in order if i in id_to_word]
        return cls([id_to_word[i] for i in order], table[order], counts[order])

    @classmethod
    def from_gensim(cls, keyed_vectors) -> Word2VecKeyedVectors:
        """From a gensim `KeyedVectors` (or a `Word2Vec` model's `.wv`), keeping its order and counts."""
        kv = getattr(keyed_vectors, "wv", keyed_vectors)
        counts = None
        if "count" in getattr(kv, "expandos", {}):
            counts = [int(c) for c in kv.expandos["count"]]
        return cls(list(kv.index_to_key), np.asarray(kv.vectors), counts)

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: str) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self._index(word)]

    @property
    def vector_size(self) -> int:
        return int(self.vectors.shape[1])

    def _index(self, word: str) -> int:
        try:
            return self.key_to_index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self)} words)") from None

    @property
    def normed_vectors(self) -> np.ndarray:
        if self._normed is None or self._normed.shape != self.vectors.shape:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._normed = self.vectors / np.maximum(norms, 1e-12)
        return self._normed

    # --- queries (gensim semantics) -----------------------------------------------------------------------------
    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words."""
        normed = self.normed_vectors
        return float(normed[self._index(w1)] @ normed[self._index(w2)])

    def _query(self, positive, negative):
        if isinstance(positive, str):
            positive = [positive]
        if isinstance(negative, str):
            negative = [negative]
        positive, negative = list(positive or []), list(negative or [])
        if not positive and not negative:
            raise ValueError("most_similar needs at least one positive or negative word")
        return positive, negative

    def most_similar(self, positive=None, negative=None, topn: int = 10, restrict_vocab: int | None = None):
        """Words closest (cosine) to the mean of the unit vectors of `positive` minus those of `negative`.

        `restrict_vocab` limits the candidates to the first (most frequent) words. Query words are excluded."""
        _check_count("topn", topn, 0)
        _check_count("restrict_vocab", restrict_vocab, 1, allow_none=True)
        positive, negative = self._query(positive, negative)
        normed = self.normed_vectors
        ids = [self._index(w) for w in positive + negative]
        weights = np.array([1.0] * len(positive) + [-1.0] * len(negative), dtype=np.float32)
        mean = (weights[:, None] * normed[ids]).mean(0)
        mean /= max(np.linalg.norm(mean), 1e-12)
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
        scores = normed[:limit] @ mean
        return self._top(scores, set(ids), topn)

    def most_similar_cosmul(self, positive=None, negative=None, topn: int = 10, restrict_vocab: int | None = None):
        """Levy & Goldberg (2014) 3CosMul: prod (1+cos(w, p))/2 over positives / (prod over negatives + 1e-6)."""
        _check_count("topn", topn, 0)
        _check_count("restrict_vocab", restrict_vocab, 1, allow_none=True)
        positive, negative = self._query(positive, negative)
        normed = self.normed_vectors
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
        pos_ids, neg_ids = [self._index(w) for w in positive], [self._index(w) for w in negative]
        pos = [(1 + normed[:limit] @ normed[i]) / 2 for i in pos_ids]
        neg = [(1 + normed[:limit] @ normed[i]) / 2 for i in neg_ids]
        scores = np.prod(pos, axis=0) / (np.prod(neg, axis=0) + 1e-6)
        return self._top(scores, set(pos_ids + neg_ids), topn)

    def _top(self, scores: np.ndarray, exclude: set[int], topn: int):
        scores = scores.astype(np.float64, copy=True)
        exclude_ids = [i for i in exclude if i < scores.shape[0]]
        scores[exclude_ids] = -np.inf
        topn = min(topn, scores.shape[0] - len(exclude_ids))
        best = np.argpartition(-scores, topn - 1)[:topn] if topn > 0 else np.array([], dtype=np.int64)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.index_to_key[i], float(scores[i])) for i in best]

    def doesnt_match(self, words: list[str]) -> str:
        """The word furthest from the mean of the unit vectors of `words` (gensim's rule)."""
        if len(words) < 2:
            raise ValueError(f"doesnt_match needs at least 2 words, got {words}")
        normed = self.normed_vectors[[self._index(w) for w in words]]
        mean = normed.mean(0)
        mean /= max(np.linalg.norm(mean), 1e-12)
        return words[int(np.argmin(normed @ mean))]

    # --- evaluation ---------------------------------------------------------------------------------------------
    def _restricted_vocab(self, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
        keys = self.index_to_key[:restrict_vocab]
        if not case_insensitive:
            return {w: i for i, w in enumerate(keys)}
        # the most frequent spelling wins, as in gensim
        return {w.upper(): i for i, w in reversed(list(enumerate(keys)))}

    def evaluate_word_analogies(self, path: str, restrict_vocab: int = 30000, case_insensitive: bool = True) -> dict:
        """Mikolov's analogy test (a : b :: c : ?) with 3CosAdd over the `restrict_vocab` most frequent words.

        Questions with a word outside those are skipped (reported in `oov_questions`), as gensim does. Sections whose
        name starts with "gram" are syntactic, the others semantic. Returns accuracies (fractions) and counts.
        A file without any question is refused (ValueError), rather than scored 0.0."""
        _check_count("restrict_vocab", restrict_vocab, 1)
        vocab = self._restricted_vocab(restrict_vocab, case_insensitive)
        limit = min(restrict_vocab, len(self))
        normed = self.normed_vectors[:limit]
        sections: dict[str, list[tuple[int, int, int, int]]] = {}
        section, total_questions = None, 0
        for number, line in _text_lines(path):
            line = line.strip()
            if not line:
                continue
            if line.startswith(":"):
                section = line.lstrip(": ").strip()
                sections.setdefault(section, [])
                continue
            if section is None:
                raise ValueError(f"{path}:{number}: question before the first ': section' line: {line!r}")
            words = line.upper().split() if case_insensitive else line.split()
            if len(words) != 4:
                raise ValueError(f"{path}:{number}: expected 4 words per question, got {line!r}")
            total_questions += 1
            if all(w in vocab for w in words):
                sections[section].append(tuple(vocab[w] for w in words))
        if total_questions == 0:
            raise ValueError(f"{path}: no analogy questions ('a b c d' lines under ': section' lines); an accuracy "
                             "over no questions is undefined")
        results = {"sections": {}}
        tallies = {"semantic": [0, 0], "syntactic": [0, 0], "total": [0, 0]}
        for name, questions in sections.items():
            if not questions:
                results["sections"][name] = {"correct": 0, "total": 0, "accuracy": None}
                continue
            q = np.asarray(questions)
            correct = 0
            for start in range(0, len(q), 1024):
                a, b, c, expected = q[start : start + 1024].T
                query = normed[b] - normed[a] + normed[c]  # 3CosAdd; normalising the query does not change argmax
                scores = query @ normed.T
                rows = np.arange(len(a))
                scores[rows, a] = scores[rows, b] = scores[rows, c] = -np.inf
                correct += int((scores.argmax(1) == expected).sum())
            kind = "syntactic" if name.startswith("gram") else "semantic"
            for key in (kind, "total"):
                tallies[key][0] += correct
                tallies[key][1] += len(q)
            results["sections"][name] = {"correct": correct, "total": len(q), "accuracy": correct / len(q)}
        for key, (correct, total) in tallies.items():
            results[key] = correct / total if total else 0.0
            results[f"{key}_questions"] = total
        results["oov_questions"] = total_questions - tallies["total"][1]
        results["oov_ratio"] = results["oov_questions"] / max(total_questions, 1)
        if tallies["total"][1] == 0:
            logger.warning("%s: none of the %d questions has all its words among the %d most frequent words: the "
                           "accuracies are 0.0 over 0 questions", path, total_questions, limit)
        return results

    def evaluate_word_pairs(
        self, path: str, restrict_vocab: int = 300000, case_insensitive: bool = True, delimiter: str | None = None
    ) -> dict:
        """Spearman (and Pearson) correlation between cosine similarities and human scores of a word-pair file
        (`word1 word2 score` per line, `#` comments); pairs with an unknown word are skipped and counted.

        A score that is not a finite number is refused with the file and line; so is a correlation that is undefined
        (every human score, or every similarity, equal) instead of returning NaN."""
        _check_count("restrict_vocab", restrict_vocab, 1)
        vocab = self._restricted_vocab(restrict_vocab, case_insensitive)
        normed = self.normed_vectors
        model_sims, human_sims, skipped, total = [], [], 0, 0
        for number, line in _text_lines(path):
            if not line.strip() or line.startswith("#"):
                continue
            parts = re.split(r"\s+", line.strip()) if delimiter is None else line.strip().split(delimiter)
            if len(parts) < 3:
                raise ValueError(f"{path}:{number}: expected 'word1 word2 score', got {line.rstrip()!r}")
            try:
                score = float(parts[2])
            except ValueError:
                raise ValueError(f"{path}:{number}: the score {parts[2]!r} is not a number") from None
            if not math.isfinite(score):
                raise ValueError(f"{path}:{number}: the score {parts[2]!r} is not a finite number")
            a, b = (parts[0].upper(), parts[1].upper()) if case_insensitive else (parts[0], parts[1])
            total += 1
            if a not in vocab or b not in vocab:
                skipped += 1
                continue
            model_sims.append(float(normed[vocab[a]] @ normed[vocab[b]]))
            human_sims.append(score)
        if len(model_sims) < 2:
            raise ValueError(f"{path}: fewer than 2 pairs with both words in the vocabulary ({skipped} skipped)")
        for name, values in (("human score", human_sims), ("model similarity", model_sims)):
            if min(values) == max(values):
                raise ValueError(f"{path}: every {name} of the {len(values)} pairs in the vocabulary is {values[0]!r}: "
                                 "the correlation is undefined")
        return {
            "spearman": spearman(model_sims, human_sims),
            "pearson": float(np.corrcoef(model_sims, human_sims)[0, 1]),
            "pairs": len(model_sims),
            "oov_pairs": skipped,
            "coverage": len(model_sims) / total,
        }

    # --- word2vec C formats -------------------------------------------------------------------------------------
    def save_word2vec_format(self, path: str, binary: bool = False, unicode_errors: str = "strict") -> None:
        """Write the original word2vec format: a `V d` header line, then `word v1 .. vd` per line (text), or
        `word ` followed by d little-endian float32 and a newline (binary, as word2vec.c writes it).
        Text values use 9 significant digits, enough to read back the same float32 bits.

        Everything is checked before the first byte is written (a word the format cannot store, a word that is not
        valid UTF-8 unless `unicode_errors="surrogateescape"` writes back the bytes `load_word2vec_format` escaped,
        a NaN/inf vector), and the file is written atomically: on any error, a full disk included, a previous file
        at `path` is left as it was."""
        encoded = []
        for w in self.index_to_key:
            if not w or any(ch.isspace() for ch in w):
                raise ValueError(f"word {w!r} is empty or contains whitespace: the word2vec format cannot store it")
            try:
                encoded.append(w.encode("utf-8", errors=unicode_errors))
            except UnicodeEncodeError:
                raise ValueError(
                    f"word {w!r} cannot be written as UTF-8 (a lone surrogate, as load_word2vec_format("
                    "unicode_errors='surrogateescape') makes of invalid bytes): pass unicode_errors='surrogateescape' "
                    "to write those bytes back, or remove the word"
                ) from None
        vectors = np.ascontiguousarray(self.vectors, dtype="<f4")
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        if bad.size:
            raise ValueError(f"the vector of word {self.index_to_key[bad[0]]!r} (and {bad.size - 1} more) holds NaN or "
                             "inf: the file could not be read back")
        with atomic_write(path, "wb") as f:
            f.write(f"{len(self)} {self.vector_size}\n".encode())
            if binary:
                for w, row in zip(encoded, vectors):
                    f.write(w + b" " + row.tobytes() + b"\n")
            else:
                for w, row in zip(encoded, vectors):
                    f.write(w + b" " + " ".join("%.9g" % v for v in row.tolist()).encode() + b"\n")

    @classmethod
    def from_pretrained(cls, folder_or_repo_id, **kwargs) -> Word2VecKeyedVectors:
        """The vectors of an hf-seq word2vec folder or Hub repo (safetensors only, nothing unpickled); see
        `hf_seq.interop.keyed_vectors_from_pretrained`."""
        from ...interop.vectors import keyed_vectors_from_pretrained  # not remote code: the package's interop layer

        return keyed_vectors_from_pretrained(folder_or_repo_id, **kwargs)

    @classmethod
    def load_word2vec_format(
        cls, path: str, binary: bool = False, limit: int | None = None, unicode_errors: str = "strict"
    ) -> Word2VecKeyedVectors:
        """Read a word2vec C text or binary file (e.g. GoogleNews-vectors-negative300.bin); `limit` reads the first
        rows only. The file order is kept (word2vec.c writes the most frequent words first).

        Every error names the file and the line (text) or the word's number and byte offset (binary): a bad header,
        bytes that are not UTF-8 (pass `unicode_errors="replace"` or `"surrogateescape"` to read them anyway), a value
        that is not a number, a NaN/inf value, a file shorter than its header says, a repeated word."""
        _check_count("limit", limit, 0, allow_none=True)
        with open(path, "rb") as f:
            first = f.readline()
            try:
                header = first.decode("utf-8").split()
                total, dim = int(header[0]), int(header[1])
                if len(header) != 2:
                    raise ValueError
            except (UnicodeDecodeError, ValueError, IndexError):
                raise ValueError(f"{path}:1: the first line must be 'vocab_size vector_size' (two integers), got "
                                 f"{first[:80]!r}") from None
            if total < 0 or dim < 1:
                raise ValueError(f"{path}:1: vocab_size {total} and vector_size {dim} must be >= 0 and >= 1")
            count = total if limit is None else min(limit, total)
            words, vectors = [], np.empty((count, dim), dtype=np.float32)
            if binary:
                data = f.read()
                pos, row_bytes = 0, 4 * dim
                for i in range(count):
                    while pos < len(data) and data[pos : pos + 1] in (b"\n", b" "):
                        pos += 1
                    space = data.find(b" ", pos)
                    where = f"{path}: word {i + 1} (byte {len(first) + pos})"
                    if space < 0 or space + 1 + row_bytes > len(data):
                        raise ValueError(f"{where}: truncated binary file, {count} words expected")
                    try:
                        word = data[pos:space].decode("utf-8", errors=unicode_errors)
                    except UnicodeDecodeError as e:
                        raise ValueError(f"{where}: not valid UTF-8 ({e.reason}); pass unicode_errors='replace' or "
                                         "'surrogateescape' to read it anyway") from None
                    row = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
                    if not np.isfinite(row).all():
                        raise ValueError(f"{where}: the vector of {word!r} holds NaN or inf")
                    words.append(word)
                    vectors[i] = row
                    pos = space + 1 + row_bytes
            else:
                for i in range(count):
                    number, raw = i + 2, f.readline()
                    if not raw:
                        raise ValueError(f"{path}:{number}: the file ends after {i} of the {count} words its header "
                                         "announces")
                    try:
                        line = raw.decode("utf-8", errors=unicode_errors)
                    except UnicodeDecodeError as e:
                        raise ValueError(f"{path}:{number}: not valid UTF-8 ({e.reason} at byte {e.start}); pass "
                                         "unicode_errors='replace' or 'surrogateescape' to read it anyway") from None
                    parts = line.rstrip("\n").rstrip(" ").split(" ")
                    if len(parts) != dim + 1:
                        raise ValueError(f"{path}:{number}: {len(parts) - 1} values, expected {dim}")
                    try:
                        row = np.asarray(parts[1:], dtype=np.float32)
                    except ValueError:
                        bad = next(v for v in parts[1:] if not _is_float(v))
                        raise ValueError(f"{path}:{number}: {bad!r} (word {parts[0]!r}) is not a number") from None
                    if not np.isfinite(row).all():
                        raise ValueError(f"{path}:{number}: the vector of {parts[0]!r} holds NaN or inf")
                    words.append(parts[0])
                    vectors[i] = row
        try:
            return cls(words, vectors)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _text_lines(path: str):
    """(line number, text) of a UTF-8 file; a line that is not UTF-8 is refused naming the file and the line."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({e.reason} at byte {e.start})") from None


__all__ = ["Word2VecKeyedVectors", "spearman"]

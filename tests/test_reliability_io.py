"""Issue 20, "nothing lost, nothing silent": atomic writes (`hf_seq.io_utils`), the word2vec file formats (atomic
writer, readers that name the file and the line, NaN refused), the word-vector evaluations (no NaN or 0.0 for an
undefined score), and the run fingerprint that stops a run from resuming another configuration's checkpoint."""

import errno
import json
import os

import numpy as np
import pytest
import torch
from conftest import refused_file
from transformers import Trainer, TrainingArguments, default_data_collator

import hf_seq  # noqa: F401
from hf_seq import io_utils
from hf_seq.io_utils import atomic_folder, atomic_write
from hf_seq.models.word2vec import Word2VecKeyedVectors
from hf_seq.training.checkpointing import (
    FINGERPRINT,
    RunFingerprintCallback,
    RunMismatchError,
    check_fingerprint,
    checkpoint_problems,
    checkpoint_to_resume,
    fingerprint_differences,
    read_fingerprint,
    write_fingerprint,
)


def _leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".")]


class _DiskFull:
    """A file whose writes fail with ENOSPC once `room` bytes were written (what a full disk does)."""

    def __init__(self, f, room):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            self.f.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.fixture
def full_disk(monkeypatch):
    """After this fixture, files opened by `atomic_write` hold at most 40 bytes."""
    def fake_open(*args, **kwargs):
        return _DiskFull(open(*args, **kwargs), 40)

    monkeypatch.setattr(io_utils, "open", fake_open, raising=False)


# ----------------------------------------------------------------------------------------------------- atomic writes
def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    with atomic_write(path) as f:
        f.write("first\n")
    assert path.read_text() == "first\n" and _leftovers(tmp_path) == []
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path) as f:
            f.write("second, half")
            raise RuntimeError("boom")
    assert path.read_text() == "first\n" and _leftovers(tmp_path) == []
    with atomic_write(path, "wb") as f:
        f.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert os.stat(path).st_mode == os.stat(plain).st_mode  # the umask's permissions, not mkstemp's 0600
    with pytest.raises(ValueError, match="'a'"):
        with atomic_write(path, "a"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "nope" / "x.txt"):
            pass


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path, full_disk):
    path = tmp_path / "a.txt"
    path.write_text("old content\n")
    with pytest.raises(OSError, match="No space"):
        with atomic_write(path) as f:
            f.write("new content " * 10)
    assert path.read_text() == "old content\n" and _leftovers(tmp_path) == []


def test_atomic_folder_swaps_or_leaves_the_old_folder(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out) as tmp:
        (open(os.path.join(tmp, "a"), "w")).write("1")
    assert os.listdir(out) == ["a"]
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as tmp:
            (open(os.path.join(tmp, "b"), "w")).write("2")
            raise RuntimeError("crash")
    assert os.listdir(out) == ["a"] and _leftovers(tmp_path) == []
    with atomic_folder(out) as tmp:
        (open(os.path.join(tmp, "c"), "w")).write("3")
    assert os.listdir(out) == ["c"] and _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ word2vec formats
def _kv(words=("cat", "dog", "fish", "bird")):
    rng = np.random.default_rng(0)
    return Word2VecKeyedVectors(list(words), rng.standard_normal((len(words), 3)).astype(np.float32))


@pytest.mark.parametrize("binary", [False, True])
def test_save_word2vec_format_refuses_before_writing_and_keeps_the_old_file(tmp_path, binary):
    path = tmp_path / "vectors.txt"
    _kv().save_word2vec_format(str(path), binary=binary)
    before = path.read_bytes()
    # a lone surrogate (what load_word2vec_format(unicode_errors="surrogateescape") makes of invalid bytes)
    with pytest.raises(ValueError, match=r"'dog\\udcff'.*surrogateescape"):
        _kv(("cat", "dog\udcff", "fish", "bird")).save_word2vec_format(str(path), binary=binary)
    bad = _kv()
    bad.vectors[2, 1] = np.nan
    with pytest.raises(ValueError, match="'fish'.*NaN"):
        bad.save_word2vec_format(str(path), binary=binary)
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


def test_save_word2vec_format_on_a_full_disk_keeps_the_old_file(tmp_path, full_disk):
    path = tmp_path / "vectors.txt"
    path.write_bytes(b"1 3\nold 1 2 3\n")
    with pytest.raises(OSError, match="No space"):
        _kv().save_word2vec_format(str(path))
    assert path.read_bytes() == b"1 3\nold 1 2 3\n" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("binary", [False, True])
def test_surrogateescape_round_trip_writes_the_original_bytes(tmp_path, binary):
    kv = _kv()
    path, again = tmp_path / "v", tmp_path / "again"
    kv.save_word2vec_format(str(path), binary=binary)
    raw = path.read_bytes().replace(b"dog", b"d\xffg", 1)  # a word that is not UTF-8
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=rf"{path}.*UTF-8.*surrogateescape"):
        Word2VecKeyedVectors.load_word2vec_format(str(path), binary=binary)
    loaded = Word2VecKeyedVectors.load_word2vec_format(str(path), binary=binary, unicode_errors="surrogateescape")
    loaded.save_word2vec_format(str(again), binary=binary, unicode_errors="surrogateescape")
    assert again.read_bytes() == raw


@pytest.mark.parametrize("content,match", [
    ("2 3\ncat 1 2 3\nd\xffg 4 5 6\n", r":3: not valid UTF-8"),
    ("two three\ncat 1 2 3\n", r":1: the first line must be 'vocab_size vector_size'"),
    ("2 3 4\ncat 1 2 3\n", r":1: the first line"),
    ("2 0\ncat\ndog\n", r":1: vocab_size 2 and vector_size 0"),
    ("2 3\ncat 1 2 3\ndog 4 x 6\n", r":3: 'x' \(word 'dog'\) is not a number"),
    ("2 3\ncat 1 nan 3\ndog 4 5 6\n", r":2: the vector of 'cat' holds NaN or inf"),
    ("2 3\ncat 1 2 3\ndog 4 5 inf\n", r":3: the vector of 'dog' holds NaN or inf"),
    ("3 3\ncat 1 2 3\ndog 4 5 6\n", r":4: the file ends after 2 of the 3 words"),
    ("2 3\ncat 1 2 3\ndog 4 5\n", r":3: 2 values, expected 3"),
    ("2 3\ncat 1 2 3\ncat 4 5 6\n", r"duplicate words.*'cat'"),
])
def test_text_reader_names_the_file_and_line(tmp_path, content, match):
    path = tmp_path / "vectors.txt"
    path.write_bytes(content.encode("utf-8", errors="surrogateescape").replace(b"\xc3\xbf", b"\xff"))
    with pytest.raises(ValueError, match=match) as info:
        Word2VecKeyedVectors.load_word2vec_format(str(path))
    assert str(path) in str(info.value)


def test_binary_reader_refuses_nan_and_names_the_word(tmp_path):
    path = tmp_path / "v.bin"
    _kv().save_word2vec_format(str(path), binary=True)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"fish ") + len(b"fish ")
    raw[at : at + 4] = np.float32(np.nan).tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{path}: word 3 \(byte \d+\): the vector of 'fish' holds NaN"):
        Word2VecKeyedVectors.load_word2vec_format(str(path), binary=True)
    with pytest.raises(ValueError, match="limit must be an integer >= 0"):
        Word2VecKeyedVectors.load_word2vec_format(str(path), binary=True, limit=-1)


def test_evaluations_refuse_undefined_scores(tmp_path):
    kv = _kv()
    pairs = tmp_path / "pairs.txt"

    def pair_scores(path):
        return kv.evaluate_word_pairs(str(path))

    refused_file(pairs, "cat dog 1.0\ncat fish nan\ndog bird 3\n", pair_scores,
                 rf"{pairs}:2: the score 'nan' is not a finite number")
    refused_file(pairs, "cat dog 1.0\ncat fish high\n", pair_scores, rf"{pairs}:2: the score 'high' is not a number")
    refused_file(pairs, "cat dog 5\ncat fish 5\ndog bird 5\n", pair_scores, "every human score.*undefined")
    pairs.write_text("cat dog 1\ncat fish 2\ndog bird 3\n")
    assert np.isfinite(pair_scores(pairs)["spearman"])
    questions = tmp_path / "questions.txt"

    def analogies(path):
        return kv.evaluate_word_analogies(str(path))

    refused_file(questions, "", analogies, rf"{questions}: no analogy questions")
    refused_file(questions, ": capitals\n", analogies, "no analogy questions")
    refused_file(questions, b": s\ncat dog fish b\xffrd\n", analogies, rf"{questions}:2: not valid UTF-8")
    questions.write_text(": s\ncat dog fish bird\n")
    assert kv.evaluate_word_analogies(str(questions))["total_questions"] == 1


def test_most_similar_refuses_a_negative_topn():
    kv = _kv()
    for call in (kv.most_similar, kv.most_similar_cosmul):
        with pytest.raises(ValueError, match="topn must be an integer >= 0, got -3"):
            call("cat", topn=-3)
        with pytest.raises(ValueError, match="restrict_vocab must be an integer >= 1 or None, got 0"):
            call("cat", restrict_vocab=0)
    assert len(kv.most_similar("cat", topn=2)) == 2 and kv.most_similar("cat", topn=0) == []


# --------------------------------------------------------------------------------------------------- run fingerprint
EXPERIMENT = {"task": "language-modeling", "model": {"architecture": "lstm", "hidden_size": 16},
              "data": {"block_size": 35, "max_train_minutes": 10},
              "training": {"learning_rate": 1.0, "output_dir": "runs/a", "logging_steps": 10, "report_to": ["none"]}}


def _changed(**sections):
    changed = json.loads(json.dumps(EXPERIMENT))
    for section, values in sections.items():
        changed.setdefault(section, {}).update(values)
    return changed


def test_fingerprint_written_without_volatile_fields_and_compared(tmp_path):
    path = write_fingerprint(tmp_path, EXPERIMENT)
    stored = read_fingerprint(tmp_path)
    assert path == str(tmp_path / FINGERPRINT)
    assert stored == {"task": "language-modeling", "model": {"architecture": "lstm", "hidden_size": 16},
                      "data": {"block_size": 35}, "training": {"learning_rate": 1.0}}
    # what may change on resume: budget, output folder, logging frequency, reporting
    check_fingerprint(tmp_path, _changed(data={"max_train_minutes": 60}, training={
        "output_dir": "elsewhere", "logging_steps": 1, "report_to": "tensorboard", "dataloader_num_workers": 4}))
    with pytest.raises(RunMismatchError) as info:
        check_fingerprint(tmp_path, _changed(model={"hidden_size": 32, "dropout": 0.5}, training={"learning_rate": 2}))
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    for part in ("3 setting(s) differ", "model.hidden_size: 16 there, 32 now", "model.dropout: <absent> there, 0.5 now",
                 "training.learning_rate: 1.0 there, 2 now", "--overwrite_output_dir", "new output folder",
                 str(tmp_path / FINGERPRINT)):
        assert part in message, (part, message)
    assert fingerprint_differences({"a": {"b": float("nan")}}, {"a": {"b": float("nan")}}) == {}
    with pytest.raises(TypeError, match="JSON-serialisable"):
        write_fingerprint(tmp_path, {"model": object()})
    with pytest.raises(TypeError, match="is a dict"):
        write_fingerprint(tmp_path, ["not", "a", "dict"])
    check_fingerprint(tmp_path / "new-folder", EXPERIMENT)  # nothing recorded: nothing to refuse


def _tiny_trainer(out, fingerprint):
    tokens = torch.randint(4, 30, (64, 8), generator=torch.Generator().manual_seed(0))
    ds = [{"input_ids": row, "labels": row} for row in tokens]
    from hf_seq.models.recurrent import LSTMConfig, LSTMForCausalLM

    torch.manual_seed(0)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=30, hidden_size=8, embedding_size=8))
    args = TrainingArguments(output_dir=str(out), max_steps=4, save_steps=2, per_device_train_batch_size=8,
                             report_to="none", use_cpu=True, disable_tqdm=True, logging_steps=2)
    return Trainer(model=model, args=args, train_dataset=ds, data_collator=default_data_collator,
                   callbacks=[RunFingerprintCallback(fingerprint)])


def test_every_checkpoint_records_the_fingerprint_and_resume_checks_it(tmp_path):
    out = tmp_path / "run"
    _tiny_trainer(out, EXPERIMENT).train()
    for folder in (out, out / "checkpoint-2", out / "checkpoint-4"):
        assert read_fingerprint(folder)["model"]["hidden_size"] == 16, folder
    args = TrainingArguments(output_dir=str(out), report_to="none")
    assert checkpoint_to_resume(args, fingerprint=_changed(data={"max_train_minutes": 1})) == str(out / "checkpoint-4")
    with pytest.raises(RunMismatchError, match="model.hidden_size: 16 there, 8 now"):
        checkpoint_to_resume(args, fingerprint=_changed(model={"hidden_size": 8}))
    # a checkpoint of another run named explicitly is checked too
    other = TrainingArguments(output_dir=str(tmp_path / "b"), resume_from_checkpoint=str(out / "checkpoint-2"),
                              report_to="none")
    with pytest.raises(RunMismatchError, match="checkpoint-2"):
        checkpoint_to_resume(other, fingerprint=_changed(model={"hidden_size": 8}))
    # killed between trainer_state.json and the fingerprint: the run folder's record stands in
    os.remove(out / "checkpoint-4" / FINGERPRINT)
    (out / FINGERPRINT).write_text(json.dumps(read_fingerprint(out / "checkpoint-2")))
    with pytest.raises(RunMismatchError):
        check_fingerprint(out / "checkpoint-4", _changed(model={"hidden_size": 8}))
    # a corrupt record makes the checkpoint incomplete, with the file named
    (out / "checkpoint-2" / FINGERPRINT).write_text('{"model": ')
    assert any(FINGERPRINT in p and "corrupted" in p for p in checkpoint_problems(out / "checkpoint-2"))
    # --overwrite_output_dir: the old run's checkpoints and record go, the new run starts from scratch
    assert checkpoint_to_resume(args, fingerprint=_changed(model={"hidden_size": 8}), overwrite=True) is None
    assert not [n for n in os.listdir(out) if n.startswith("checkpoint-")]
    assert read_fingerprint(out)["model"]["hidden_size"] == 8

"""Word vectors in (issue #22): word2vec text/binary, GloVe and fastText files → a Word2VecModel folder that works as
feature-extraction and reads back as KeyedVectors; `hf-seq import` parses both forms."""

import argparse
import os

import numpy as np
import pytest
import torch
from conftest import refused_file
from transformers import AutoModel, pipeline

import hf_seq  # noqa: F401  (registers the word2vec model type)
from hf_seq.interop import cli as import_cli
from hf_seq.interop import detect_format, import_vectors, keyed_vectors_from_pretrained, read_vectors
from hf_seq.models.word2vec import Word2VecKeyedVectors

WORDS = ["the", "cat", "sat", "on", "mat", "Über", "</s>"]


@pytest.fixture
def vectors():
    return np.random.default_rng(0).standard_normal((len(WORDS), 6)).astype(np.float32)


def _write_text(path, words, vectors, header):
    with open(path, "w", encoding="utf-8") as f:
        if header:
            f.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, row in zip(words, vectors):
            f.write(word + " " + " ".join("%.9g" % v for v in row) + " \n")  # fastText ends lines with a space


@pytest.mark.parametrize("format, name", [("glove", "g.txt"), ("word2vec", "w.txt"), ("fasttext", "f.vec"),
                                          ("word2vec-binary", "w.bin")])
def test_each_format_round_trips_through_a_model_folder(tmp_path, vectors, format, name):
    path = tmp_path / name
    if format == "word2vec-binary":
        Word2VecKeyedVectors(WORDS, vectors).save_word2vec_format(str(path), binary=True)
    else:
        _write_text(path, WORDS, vectors, header=format != "glove")
    assert detect_format(path) == format
    kv = read_vectors(path)
    assert kv.index_to_key == WORDS
    np.testing.assert_array_equal(kv.vectors, vectors)

    out = import_vectors(path, tmp_path / "out")
    back = keyed_vectors_from_pretrained(out)
    assert back.index_to_key == WORDS
    np.testing.assert_array_equal(back.vectors, vectors)
    np.testing.assert_array_equal(Word2VecKeyedVectors.from_pretrained(out).vectors, vectors)  # the classmethod
    model = AutoModel.from_pretrained(out)
    features = pipeline("feature-extraction", model=out)("cat Über mat")
    np.testing.assert_allclose(np.asarray(features)[0], vectors[[1, 5, 4]], rtol=0, atol=0)
    with torch.no_grad():
        assert torch.equal(model.get_input_embeddings().weight[5:], torch.from_numpy(vectors))


def test_special_token_spellings_fill_the_special_rows(tmp_path, vectors):
    path = tmp_path / "glove.txt"
    _write_text(path, ["<unk>", "a", "b", "a"], np.concatenate([vectors[:3], vectors[3:4]]), header=False)
    out = import_vectors(path, tmp_path / "out")
    model = AutoModel.from_pretrained(out)
    table = model.get_input_embeddings().weight.detach()
    assert torch.equal(table[0], torch.from_numpy(vectors[0]))  # <unk> takes GloVe's <unk> vector
    assert torch.equal(table[1], torch.zeros(6))  # <pad> has none: zeros
    kv = keyed_vectors_from_pretrained(out)
    assert kv.index_to_key == ["a", "b"]  # the repeated "a" keeps its first vector (gensim's rule)
    np.testing.assert_array_equal(kv["a"], vectors[1])


def test_bad_files_are_refused_with_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    refused_file(path, "a 0.1 0.2\nb 0.3 x\n", read_vectors, r"bad.txt:2: 'x' \(word 'b'\) is not a number")
    refused_file(path, "a 0.1 0.2\nb 0.3\n", read_vectors, r"bad.txt:2: 1 values for 'b', expected 2")
    path.write_text("3 2\na 0.1 0.2\n")
    with pytest.raises(ValueError, match=r"ends after 1 of the 3 words"):
        read_vectors(path, format="word2vec")
    with pytest.raises(ValueError, match="format='txt' is not supported"):
        read_vectors(path, format="txt")


def test_keyed_vectors_from_pretrained_reads_only_safetensors(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "hf_seq_word2vec"}')
    (folder / "tokenizer.json").write_text('{"model": {"vocab": {}}}')
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ValueError, match="no \\*.safetensors file"):
        keyed_vectors_from_pretrained(folder)


def test_import_cli_forms(tmp_path, vectors, capsys):
    path = tmp_path / "g.txt"
    _write_text(path, WORDS, vectors, header=False)
    parser = argparse.ArgumentParser(prog="hf-seq")
    import_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["import", "vectors", str(path), "--output-dir", str(tmp_path / "v"), "--format", "glove"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "v")
    assert keyed_vectors_from_pretrained(tmp_path / "v").index_to_key == WORDS
    eole = os.path.join(os.path.dirname(__file__), "fixtures", "eole", "rnn_gru_dot")
    args = parser.parse_args(["import", "eole", eole, "--output-dir", str(tmp_path / "e")])
    assert args.func(args) == 0
    assert os.path.isfile(tmp_path / "e" / "model.safetensors")
    with pytest.raises(SystemExit):
        parser.parse_args(["import", "vectors", str(path), "--output-dir", "x", "--format", "txt"])


def test_keyed_vectors_from_a_hub_id_fetch_no_pickle(tmp_path, vectors, monkeypatch):
    path = tmp_path / "g.txt"
    _write_text(path, WORDS, vectors, header=False)
    folder = import_vectors(path, tmp_path / "repo")
    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return str(folder)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    kv = keyed_vectors_from_pretrained("someone/glove-demo", revision="v1")
    assert kv.index_to_key == WORDS
    (repo_id, revision, patterns), = calls
    assert (repo_id, revision) == ("someone/glove-demo", "v1")
    assert "*.safetensors" in patterns and not any(p.endswith((".bin", ".pt", ".pkl", "*")) for p in patterns)

"""The word2vec runner (hf_seq.training.word2vec) through the experiment layer: shipped experiments validate, the
Time Machine smoke run writes a run folder that reloads (Auto classes, pipeline, vectors.txt) to the trained vectors,
several corpus files (+ the polarity snippets) make one corpus, and bad experiments name the file, section and key."""

import json
import os

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForPreTraining, AutoTokenizer, pipeline

import hf_seq  # noqa: F401
from hf_seq.models.word2vec import Word2VecKeyedVectors
from hf_seq.training.checkpointing import RunMismatchError
from hf_seq.training.experiment import ConfigError, list_configs, load_experiment, run_experiment
from hf_seq.training.word2vec import read_lines

SHIPPED = [n for n, _ in list_configs() if n.startswith("word2vec_")]
DATA_FILES = ("wikitext-2/wiki.train.tokens", "ptb/ptb.train.txt", "text8-head/text8.split.head",
              "sentence-polarity/rt-polarity.pos", "sentence-polarity/rt-polarity.neg",
              "word-eval/questions-words.txt", "word-eval/EN-WS-353-ALL.txt", "word-eval/EN-SIMLEX-999.txt")


def fake_data_root(tmp_path) -> str:
    root = tmp_path / "data"
    for rel in DATA_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    return str(root)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_experiment_validates(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_SEQ_DATA", fake_data_root(tmp_path))
    full = load_experiment(name)
    assert full.task == "word2vec" and full.output_dir == f"runs/{name}"
    assert all(c.startswith(str(tmp_path)) for c in full.data.corpus or [])
    smoke = load_experiment(name, smoke=True)
    assert smoke.training.epochs == 1 and smoke.data.max_lines == 300
    assert smoke.output_dir == os.path.join("runs", "smoke", name)
    # without the data folder a smoke run falls back to the embedded Time Machine; a full run is refused
    monkeypatch.setenv("HF_SEQ_DATA", str(tmp_path / "no-data"))
    assert load_experiment(name, smoke=True).data.corpus is None
    if full.data.corpus:
        with pytest.raises(ConfigError, match=rf"{name}.yaml: section 'data': corpus=.*does not exist"):
            load_experiment(name)


def test_timemachine_smoke_folder_reloads_to_the_trained_vectors(tmp_path):
    out = tmp_path / "run"
    results = run_experiment(load_experiment("word2vec_timemachine", smoke=True, output_dir=str(out)))
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vectors.txt", "word_map.png",
                 "eval_results.json", "experiment.json", "README.md", "modeling_word2vec.py"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["history"] == results["history"] and len(results["history"]) == 1
    assert np.isfinite(results["history"][0]["loss"]) and results["history"][0]["words_per_s"] > 0
    assert results["corpus"][0].endswith("timemachine.txt") and results["raw_words"] > 1000
    assert set(results["plotted_words"]) <= set(json.loads((out / "experiment.json").read_text())["data"]["plot_words"])
    auto_map = json.loads((out / "config.json").read_text())["auto_map"]
    assert {"AutoModel", "AutoModelForPreTraining", "AutoModelForMaskedLM"} <= set(auto_map)

    # vectors.txt is the trained model's vectors; the folder reloads to the same ones (pre-training head, base model,
    # and the feature-extraction pipeline)
    kv = Word2VecKeyedVectors.load_word2vec_format(str(out / "vectors.txt"))
    tok = AutoTokenizer.from_pretrained(out)
    words = [w for w in ("time", "machine", "the") if w in kv]
    ids = tok(" ".join(words))["input_ids"]
    pretraining = AutoModelForPreTraining.from_pretrained(out)
    base = AutoModel.from_pretrained(out)
    want = np.stack([kv[w] for w in words])
    np.testing.assert_allclose(pretraining.get_input_embeddings().weight[ids].detach().numpy(), want, atol=1e-5)
    np.testing.assert_allclose(base.get_input_embeddings().weight[ids].detach().numpy(), want, atol=1e-5)
    extracted = np.asarray(pipeline("feature-extraction", model=str(out))(" ".join(words)))[0]
    np.testing.assert_allclose(extracted, want, atol=1e-5)

    # the folder is this experiment's: another experiment is refused there, the same one (not smoke) goes on
    with pytest.raises(RunMismatchError):
        run_experiment(load_experiment("word2vec_timemachine", output_dir=str(out),
                                       overrides=["model.vector_size=8", "training.epochs=1"]))


def test_several_corpus_files_and_the_polarity_snippets(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text(" = Heading = \nalpha beta gamma\n")
    b = tmp_path / "b.txt"
    b.write_text("Delta epsilon\n")
    polarity = tmp_path / "polarity"
    polarity.mkdir()
    (polarity / "rt-polarity.pos").write_text("\n".join(f"good {i}" for i in range(10)))
    (polarity / "rt-polarity.neg").write_text("\n".join(f"bad {i}" for i in range(10)))
    config = tmp_path / "w.yaml"
    config.write_text(f"task: word2vec\nmodel:\n  vector_size: 4\ndata:\n  corpus: [{a}, {b}]\n  skip_headings: true\n"
                      f"  polarity_dir: {polarity}\n  min_count: 1\ntraining:\n  epochs: 1\n  progress_bar: false\n")
    exp = load_experiment(config, output_dir=str(tmp_path / "run"))
    lines, sources = read_lines(exp.data)
    # the heading is gone; 20 snippets minus the 10% test part (2) are added; the test snippets never are
    assert lines[:2] == ["alpha beta gamma\n", "Delta epsilon\n"] and len(lines) == 2 + 18
    from hf_seq.training.classification import DataArguments, read_polarity

    test = read_polarity(DataArguments(data_dir=str(polarity)))["test"]["text"]
    assert len(test) == 2 and not set(test) & set(lines)
    assert sources[:2] == [str(a), str(b)] and sources[2].startswith(str(polarity))
    results = run_experiment(exp)
    assert results["raw_words"] == sum(len(line.split()) for line in lines)
    assert "delta" in Word2VecKeyedVectors.load_word2vec_format(str(tmp_path / "run" / "vectors.txt"))  # lower-cased


@pytest.mark.parametrize("section,text,match", [
    ("model", "  architecture: skipgramm\n", r"section 'model': architecture='skipgramm'"),
    ("model", "  hidden_size: 3\n", r"unknown key\(s\) \['hidden_size'\] in section 'model'"),
    ("data", "  corpus: [nope.txt]\n", r"section 'data': corpus='nope.txt'.*does not exist"),
    ("data", "  analogies: nope.txt\n", r"section 'data': analogies='nope.txt'"),
    ("data", "  min_count: 0\n", r"section 'data': min_count=0 must be >= 1"),
    ("training", "  backend: fast\n", r"section 'training': backend must be"),
    ("training", "  epochs: many\n", r"section 'training': epochs='many' is a str, expected int"),
    ("output", "  output_dir: x\n", r"unknown key\(s\) \['output'\] in section 'top level'"),
])
def test_bad_experiments_name_file_section_and_key(tmp_path, section, text, match):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"task: word2vec\n{section}:\n{text}")
    with pytest.raises(ConfigError, match="bad.yaml: .*" + match):
        load_experiment(bad)


def test_smoke_resolves_embedded_data_without_data_folder(tmp_path, monkeypatch):
    """word2vec_timemachine --smoke needs no data folder at all."""
    monkeypatch.setenv("HF_SEQ_DATA", str(tmp_path / "no-data"))
    exp = load_experiment("word2vec_timemachine", smoke=True, output_dir=str(tmp_path / "run"))
    assert exp.data.corpus is None and exp.data.max_lines == 300
    torch.manual_seed(0)
    lines, sources = read_lines(exp.data)
    assert len(lines) == 300 and sources[0].endswith(os.path.join("hf_seq", "data", "timemachine.txt"))

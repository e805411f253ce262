"""The text-classification and token-classification runners (hf_seq.training.classification / tagging) through the
experiment layer: shipped experiments validate, smoke runs write a Hub-ready folder that reloads (Auto class and
pipeline) to the numbers the run reported, `model.word_vectors: experiment:NAME` builds the vectors once and reuses
them, and bad experiments fail naming the file, section and key."""

import json
import os
import random

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    pipeline,
)

import hf_seq  # noqa: F401
from hf_seq.evaluation import classification_accuracy, read_conll, tagging_scores
from hf_seq.training.classification import read_polarity
from hf_seq.training.experiment import ConfigError, list_configs, load_experiment, run_experiment

ROOT = os.path.join(os.path.dirname(__file__), "..")
SHIPPED = [n for n, _ in list_configs() if n.startswith(("classify_", "tag_"))]
NOUNS, VERBS = ["dog", "cat", "bird", "fish"], ["ran", "sat", "ate", "saw"]
POS = {"the": "DT", "and": "CC", **{n: "NN" for n in NOUNS}, **{v: "VBD" for v in VERBS}}


def fake_data_root(tmp_path) -> str:
    """A $HF_SEQ_DATA with every file the shipped experiments name (empty: validation reads no data)."""
    root = tmp_path / "data"
    for rel in ("sentence-polarity/rt-polarity.pos", "sentence-polarity/rt-polarity.neg", "conll2000/train.txt",
                "conll2000/test.txt", "wikitext-2/wiki.train.tokens", "ptb/ptb.train.txt",
                "text8-head/text8.split.head", "word-eval/questions-words.txt", "word-eval/EN-WS-353-ALL.txt",
                "word-eval/EN-SIMLEX-999.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    return str(root)


def polarity_dir(tmp_path, n=60):
    rng = random.Random(0)
    folder = tmp_path / "polarity"
    folder.mkdir(exist_ok=True)
    for name, adjs in (("rt-polarity.pos", ["good", "great"]), ("rt-polarity.neg", ["bad", "awful"])):
        (folder / name).write_text("\n".join(f"the {rng.choice(NOUNS)} was {rng.choice(adjs)} ." for _ in range(n)))
    return folder


def conll_dir(tmp_path, n=40):
    rng = random.Random(0)
    folder = tmp_path / "conll"
    folder.mkdir(exist_ok=True)
    for name in ("train.txt", "test.txt"):
        blocks = []
        for _ in range(n):
            words = ["the", rng.choice(NOUNS), rng.choice(VERBS), "and", "the", rng.choice(NOUNS), rng.choice(VERBS)]
            tags = ["B-NP", "I-NP", "B-VP", "O", "B-NP", "I-NP", "B-VP"]
            blocks.append("\n".join(f"{w} {POS[w]} {t}" for w, t in zip(words, tags)))
        (folder / name).write_text("\n\n".join(blocks) + "\n")
    return folder


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_experiment_validates(name, tmp_path, monkeypatch):
    """Full and smoke forms validate (model config, word-vector experiment and its width, metric, data files), with
    nothing trained; the smoke form drops results_file and writes under runs/smoke/."""
    monkeypatch.chdir(tmp_path)  # no stale runs/ folder of this checkout is consulted
    monkeypatch.setenv("HF_SEQ_DATA", fake_data_root(tmp_path))
    full = load_experiment(name)
    assert full.task in ("text-classification", "token-classification")
    assert full.output_dir == f"runs/{name}"
    assert str(full.model["word_vectors"]).startswith("experiment:word2vec_")
    assert full.data.data_dir.startswith(str(tmp_path / "data"))
    smoke = load_experiment(name, smoke=True)
    assert smoke.output_dir == os.path.join("runs", "smoke", name) and smoke.data.results_file is None
    assert smoke.training.max_steps == 6 and smoke.model["hidden_size"] == 16


def test_classifier_smoke_reloads_and_writes_only_its_scratch_folder(tmp_path, monkeypatch):
    """Without $HF_SEQ_DATA the smoke run trains on toy snippets, builds its word vectors in smoke form (embedded Time
    Machine) inside its scratch folder, and writes nothing else (not the benchmark results_file)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_SEQ_DATA", str(tmp_path / "no-data"))
    committed = os.path.join(ROOT, "benchmarks", "results", "classification_polarity_bilstm.json")
    before = os.path.getmtime(committed)
    exp = load_experiment("classify_polarity_bilstm", smoke=True)
    results = run_experiment(exp)
    out = tmp_path / "runs" / "smoke" / "classify_polarity_bilstm"
    written = {p.relative_to(tmp_path).parts[:3] for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {("runs", "smoke", "classify_polarity_bilstm")}
    assert os.path.getmtime(committed) == before
    assert results["data"].startswith("toy") and results["sizes"] == {"train": 97, "dev": 11, "test": 12}
    assert results["word_vectors"]["built_by_this_run"] and results["word_vectors"]["found"] >= 2  # "the", "was"
    assert (out / "word_vectors" / "vectors.txt").is_file()
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["test_accuracy"] == results["test_accuracy"] and np.isfinite(saved["train_loss"])

    # the run root is the model folder: the saved weights give the reported test accuracy again
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    test = read_polarity(exp.data)["test"]
    examples = [(model.config.id2label[y], t) for t, y in zip(test["text"], test["label"])]
    assert classification_accuracy(model, tok, examples)["accuracy"] == pytest.approx(results["test_accuracy"])
    # and pipeline("text-classification") on the folder gives the model's own probabilities
    classify = pipeline("text-classification", model=str(out))
    with torch.no_grad():
        probs = model(**tok(test["text"][:4], padding=True, return_tensors="pt")).logits.softmax(-1)
    for row, p in zip(classify(test["text"][:4]), probs):
        assert row["label"] == model.config.id2label[int(p.argmax())]
        assert row["score"] == pytest.approx(float(p.max()), abs=1e-5)
    assert "text-classification" in (out / "README.md").read_text()


def test_tagger_without_features_runs_in_the_pipeline(tmp_path):
    exp = load_experiment("tag_conll2000_bilstm", smoke=True, output_dir=str(tmp_path / "run"),
                          overrides=[f"data.data_dir={conll_dir(tmp_path)}"])
    results = run_experiment(exp)
    out = tmp_path / "run"
    assert results["pipeline_compatible"] is True and results["inputs"] == ["input_ids", "attention_mask"]
    assert results["sizes"] == {"train": 38, "dev": 2, "test": 40}
    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert not getattr(model.config, "feature_vocab_size", 0)
    test = read_conll(tmp_path / "conll" / "test.txt", ("words", "pos", "tags"))
    scores = tagging_scores(model, tok, test)
    assert scores["f1"] == pytest.approx(results["test_f1"]) and scores["accuracy"] == pytest.approx(
        results["test_accuracy"])
    tag = pipeline("token-classification", model=str(out), aggregation_strategy="none")
    text = " ".join(test[0]["words"])
    with torch.no_grad():
        best = model(**tok(text, return_tensors="pt")).logits[0].argmax(-1)
    assert [r["entity"] for r in tag(text)] == [model.config.id2label[int(i)] for i in best]


def test_pos_crf_tagger_records_that_it_needs_features(tmp_path):
    exp = load_experiment("tag_conll2000_bilstm_crf", smoke=True, output_dir=str(tmp_path / "run"),
                          overrides=[f"data.data_dir={conll_dir(tmp_path)}"])
    results = run_experiment(exp)
    out = tmp_path / "run"
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["pipeline_compatible"] is False and "feature_ids" in saved["inputs"]
    assert saved["features"].startswith("words + gold POS") and 0.0 <= saved["test_f1_viterbi"] <= 1.0
    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    names = model.config.feature_names
    assert model.config.use_crf and names[0] == "<unk>" and set(names[1:]) == {"DT", "CC", "NN", "VBD"}
    assert model.config.feature_vocab_size == len(names)
    test = [{**s, "features": s["pos"]} for s in read_conll(tmp_path / "conll" / "test.txt", ("words", "pos", "tags"))]
    assert tagging_scores(model, tok, test)["f1"] == pytest.approx(results["test_f1"])
    with pytest.raises(ValueError, match="feature_ids"):
        pipeline("token-classification", model=str(out))("the dog ran")


def _write(path, text):
    path.write_text(text)
    return path


def test_word_vectors_experiment_is_built_once_then_reused(tmp_path):
    corpus = _write(tmp_path / "corpus.txt", "\n".join(f"the {n} was {a} and the {m} {v}" for n in NOUNS
                                                        for m in NOUNS for a in ("good", "bad") for v in VERBS))
    vectors = _write(tmp_path / "vecs.yaml", f"task: word2vec\nmodel:\n  vector_size: 8\ndata:\n  corpus: [{corpus}]\n"
                     f"  min_count: 1\ntraining:\n  epochs: 1\n  progress_bar: false\n  output_dir: {tmp_path / 'v'}\n")
    classifier = _write(tmp_path / "cls.yaml", (
        "task: text-classification\nmodel:\n  hidden_size: 8\n  embedding_size: 8\n"
        "  word_vectors: experiment:vecs.yaml\n"  # relative to this file's folder
        f"data:\n  data_dir: {polarity_dir(tmp_path)}\n"
        f"training:\n  max_steps: 2\n  save_strategy: 'no'\n  output_dir: {tmp_path / 'c'}\n"))
    first = run_experiment(load_experiment(classifier))["word_vectors"]
    built = tmp_path / "v" / "vectors.txt"
    assert first["built_by_this_run"] and first["file"] == str(built) and first["found"] > 5
    stamp = os.path.getmtime(built)
    second = run_experiment(load_experiment(classifier))["word_vectors"]
    assert not second["built_by_this_run"] and os.path.getmtime(built) == stamp
    assert second["found"] == first["found"]
    # vectors of another configuration in that folder are refused before any training
    vectors.write_text(vectors.read_text().replace("epochs: 1", "epochs: 2"))
    with pytest.raises(ConfigError, match=r"cls.yaml.*word_vectors.*different version.*epochs"):
        load_experiment(classifier)
    # the width must match the embedding
    vectors.write_text(vectors.read_text().replace("vector_size: 8", "vector_size: 12"))
    with pytest.raises(ConfigError, match=r"cls.yaml: section 'model': word_vectors builds 12-dim.*8 wide"):
        load_experiment(classifier)


@pytest.mark.parametrize("task,section,text,match", [
    ("text-classification", "model", "  hiden_size: 3\n", r"unknown key\(s\) \['hiden_size'\] in section 'model'"),
    ("text-classification", "model", "  architecture: lstmm\n", r"section 'model': architecture='lstmm'"),
    ("text-classification", "model", "  word_vectors: nope.txt\n", r"'model': word_vectors='nope.txt': no such"),
    ("text-classification", "model", "  word_vectors: experiment:nope\n", r"word_vectors='experiment:nope'.*shipped"),
    ("text-classification", "model", "  freeze_embeddings: true\n", r"section 'model': freeze_embeddings"),
    ("text-classification", "model", "  use_crf: true\n", r"section 'model': use_crf"),
    ("text-classification", "data", "  test_fraction: 1.5\n", r"section 'data': test_fraction=1.5"),
    ("text-classification", "data", "  data_dir: DIR/missing\n", r"section 'data': data_dir=.*missing.*rt-polarity"),
    ("text-classification", "training", "  metric_for_best_model: bleu\n", r"'training': metric_for_best_model"),
    ("token-classification", "training", "  metric_for_best_model: auc\n", r"metric_for_best_model='auc'.*f1"),
    ("token-classification", "data", "  dev_fraction: -1\n", r"section 'data': dev_fraction=-1"),
])
def test_bad_experiments_name_file_section_and_key(tmp_path, task, section, text, match):
    data = polarity_dir(tmp_path) if task == "text-classification" else conll_dir(tmp_path)
    sections = {"model": "", "data": f"  data_dir: {data}\n", "training": f"  output_dir: {tmp_path / 'o'}\n"}
    text = text.replace("DIR", str(tmp_path))
    sections[section] = text if "data_dir" in text else sections[section] + text
    bad = _write(tmp_path / "bad.yaml", f"task: {task}\n" + "".join(f"{k}:\n{v}" for k, v in sections.items()))
    with pytest.raises(ConfigError, match="bad.yaml: .*" + match):
        load_experiment(bad)


def test_macro_f1_equals_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    from hf_seq.training.classification import compute_metrics

    rng = np.random.default_rng(0)
    for i in range(20):
        labels, logits = rng.integers(0, 2, 30), rng.normal(size=(30, 2))
        if i % 5 == 0:
            logits[:, 1] += 10  # one class never predicted: its F1 is 0, as scikit-learn's zero_division default
        got, pred = compute_metrics((logits, labels)), logits.argmax(-1)
        assert got["f1"] == pytest.approx(f1_score(labels, pred, average="macro", zero_division=0.0))
        assert got["accuracy"] == pytest.approx(accuracy_score(labels, pred))

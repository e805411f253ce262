"""The translation runner (`task: translation`): both architectures train -> test -> save a run folder that reloads
with AutoModelForSeq2SeqLM and the hf-seq-translation pipeline; eval-only / tuned decoding; validation; resume."""

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

import hf_seq  # noqa: F401  (registers the Auto classes and the pipeline)
from hf_seq.data.translation import load_pairs, toy_pairs
from hf_seq.evaluation import translate
from hf_seq.training.checkpointing import RunMismatchError
from hf_seq.training.experiment import ConfigError, configs_dir, load_experiment, run_experiment

SHIPPED = sorted(p.stem for pattern in ("seq2seq_*.yaml", "transformer_multi30k_*.yaml", "transformer_smoke.yaml",
                                        "transformer_tatoeba.yaml") for p in configs_dir().glob(pattern))
SMOKE_RUNS = {"rnn": "seq2seq_tatoeba_bahdanau", "transformer": "transformer_smoke"}


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """{architecture: (results, run folder)}, each trained once at smoke size (on first use)."""
    done = {}

    def get(arch):
        if arch not in done:
            out = tmp_path_factory.mktemp(arch) / "run"
            exp = load_experiment(SMOKE_RUNS[arch], smoke=True, output_dir=str(out))
            done[arch] = (run_experiment(exp), out)
        return done[arch]

    return get


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """${HF_SEQ_DATA} holding the file names the Multi30k / Tatoeba experiments need (validation reads no data)."""
    root = tmp_path / "data"
    (root / "multi30k").mkdir(parents=True)
    for stem in ("train", "val", "test_2016_flickr"):
        for lang in ("de", "en"):
            (root / "multi30k" / f"{stem}.{lang}").write_text("x\n")
    (root / "fra-eng").mkdir()
    (root / "fra-eng" / "fra.txt").write_text("Hi.\tSalut.\n")
    monkeypatch.setenv("HF_SEQ_DATA", str(root))
    return root


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_translation_experiments_validate(name, data_root, tmp_path):
    exp = load_experiment(name)
    assert exp.task == "translation"
    assert exp.model["architecture"] == ("rnn" if name.startswith("seq2seq") else "transformer")
    if exp.data.dataset == "multi30k":
        assert exp.data.data_dir == str(data_root)  # ${HF_SEQ_DATA}, not a path of the checkout
    smoke = load_experiment(name, smoke=True, output_dir=str(tmp_path / "smoke"))
    assert smoke.data.dataset == "tatoeba" and smoke.training.max_steps == 15  # the embedded pairs, seconds
    assert smoke.training.resume_from_checkpoint is None and smoke.overwrite
    first_lines = (configs_dir() / f"{name}.yaml").read_text().splitlines()[:12]
    assert any(f"hf-seq train {name}" in line for line in first_lines)


def test_translation_pairs_split_the_same_way_for_both_families():
    a = load_pairs("tatoeba", source_lang="en", target_lang="fr", seed=0, heldout=100,
                   limits={"train": 50, "validation": None, "test": None})
    b = load_pairs("tatoeba", source_lang="fr", target_lang="en", seed=0, heldout=100)
    assert len(a["train"]) == 50 and len(a["test"]) == len(a["validation"]) == 100
    assert [(t, s) for s, t in a["test"]] == b["test"] and len(b["train"]) == 6000 - 200
    toy = toy_pairs(5, seed=1, vocab=10, lengths=(2, 4))
    for src, tgt in toy:  # the target is the renamed source, reversed
        assert len(src.split()) == len(tgt.split()) and all(w.startswith("w") for w in src.split())
    with pytest.raises(FileNotFoundError, match="multi30k"):
        load_pairs("multi30k", source_lang="de", target_lang="en", data_dir="/nonexistent")
    with pytest.raises(ValueError, match="wmt"):
        load_pairs("wmt", source_lang="de", target_lang="en")


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_smoke_run_folder_reloads_and_translates_like_the_trained_model(arch, smoke_runs, tmp_path):
    results, out = smoke_runs(arch)
    assert results["architecture"] == arch and results["steps"] == 15 and results["dataset"] == "tatoeba"
    assert results["train_loss_last_logged"] < results["train_loss_first_logged"]
    for key in ("test_bleu", "test_chrf", "test_bleu_tok_lc"):
        assert math.isfinite(results[key]) and 0 <= results[key] <= 100, key
    assert results["test_bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert "nc:6|nw:0" in results["test_chrf_signature"]
    assert sum(row["sentences"] for row in results["test_bleu_by_source_length"]) == results["test_pairs"] == 40
    assert results["train_seconds"] > 0 and results["model"]

    # the run folder is the model folder: no model/ subfolder, results and pictures beside the weights
    assert not (out / "model").exists()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "eval_results.json",
                 "experiment.json", "README.md", "test_hypotheses.txt", "attention.png"):
        assert (out / name).exists(), name
    assert (out / "attention.png").stat().st_size > 1000
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["test_bleu"] == results["test_bleu"] and saved["experiment"] == SMOKE_RUNS[arch]
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["num_beams"] == 2 and generation["max_new_tokens"] == 24  # ours, not Seq2SeqTrainer's
    config = json.loads((out / "config.json").read_text())
    assert "hf-seq-translation" in config["custom_pipelines"] and "AutoModelForSeq2SeqLM" in config["auto_map"]
    assert config["use_cache"] is True

    # the hypotheses file is the trained (in-memory) model's output; the reloaded folder gives the same text
    hyps = (out / "test_hypotheses.txt").read_text().splitlines()
    assert len(hyps) == results["test_pairs"] and len(set(hyps)) >= 1
    sources = [row["source"] for row in results["sample_translations"]]
    assert [row["hypothesis"] for row in results["sample_translations"]] == hyps[:5]
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert translate(model, tok, sources, num_beams=2, max_new_tokens=24) == hyps[:5]
    for pipe in (pipeline("hf-seq-translation", model=str(out), trust_remote_code=True),
                 pipeline(model=str(out), trust_remote_code=True)):  # the folder names its own pipeline
        assert [pipe(s)[0]["translation_text"] for s in sources[:3]] == hyps[:3]


def test_eval_only_and_tuned_decoding_rescore_the_run_folder(smoke_runs, tmp_path):
    results, trained = smoke_runs("rnn")
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    name = SMOKE_RUNS["rnn"]
    rescored = run_experiment(load_experiment(name, ["data.eval_only=true"], smoke=True, output_dir=str(out)))
    assert rescored["test_bleu"] == results["test_bleu"] and rescored["steps"] == 15  # same model, same decoding
    assert (out / "test_hypotheses.txt").read_text() == (trained / "test_hypotheses.txt").read_text()

    tuned = run_experiment(load_experiment(name, ["data.eval_only=true", "data.tune_decoding=true"], smoke=True,
                                           output_dir=str(out)))
    search = tuned["decoding_tuned_on_validation"]
    assert [(r["num_beams"], r["length_penalty"]) for r in search["grid"]] == [
        (1, 1.0), (4, 0.6), (4, 1.0), (4, 1.4), (8, 0.6), (8, 1.0), (8, 1.4)]
    assert search["chosen"]["validation_bleu"] == max(r["validation_bleu"] for r in search["grid"])
    assert search["validation_pairs"] == 20
    saved = json.loads((out / "generation_config.json").read_text())
    assert tuned["test_num_beams"] == saved.get("num_beams", 1) == search["chosen"]["num_beams"]
    assert saved.get("length_penalty", 1.0) == search["chosen"]["length_penalty"]
    assert json.loads((out / "eval_results.json").read_text())["decoding_tuned_on_validation"] == search


def _bad(tmp_path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("task: translation\n" + text)
    return path


@pytest.mark.parametrize("text, match", [
    ("model:\n  architecture: transformer\n  cell_type: gru\n",
     r"bad.yaml: unknown key\(s\) \['cell_type'\] in section 'model'. Allowed keys:.*d_model"),
    ("model:\n  architecture: rnn\n  d_model: 64\n",
     r"bad.yaml: unknown key\(s\) \['d_model'\] in section 'model'. Allowed keys:.*cell_type"),
    ("model:\n  architecture: lstm\n", r"bad.yaml: section 'model': architecture 'lstm' is not one of"),
    ("model:\n  architecture: rnn\n  cell_type: tanh\n", r"bad.yaml: section 'model' \(rnn\):.*cell_type='tanh'"),
    ("model:\n  architecture: transformer\n  max_position_embeddings: 16\ndata:\n  max_source_length: 32\n",
     r"bad.yaml: section 'model': max_position_embeddings=16 is shorter"),
    ("data:\n  test_num_beams: 0\n", r"bad.yaml: section 'data': test_num_beams=0 must be >= 1"),
    ("data:\n  dataset: wmt14\n", r"bad.yaml: section 'data': dataset 'wmt14' is not one of"),
    ("data:\n  source_lang: de\n  target_lang: en\n", r"bad.yaml: section 'data': source_lang.*English-French"),
    ("data:\n  heatmap_sentence: 500\n", r"bad.yaml: section 'data': heatmap_sentence=500 but the test set has 500"),
    ("data:\n  max_test_samples: 10\n  heatmap_sentence: 10\n", r"section 'data': heatmap_sentence=10"),
    ("data:\n  eval_only: true\n", r"bad.yaml: section 'data': eval_only needs a finished run"),
    ("data:\n  dataset: multi30k\n  data_dir: /nonexistent\n", r"bad.yaml: section 'data': data_dir '/nonexistent'"),
    ("training:\n  metric_for_best_model: bleu\n  predict_with_generate: false\n",
     r"bad.yaml: section 'training': metric_for_best_model"),
    ("training:\n  learning_rate: fast\n", r"bad.yaml: section 'training': learning_rate='fast'"),
    ("generate:\n  max_new_tokens: 5\n", r"bad.yaml: task 'translation' generates nothing"),
])
def test_validation_errors_name_file_section_and_key(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_experiment(str(_bad(tmp_path, text)), output_dir=str(tmp_path / "run"))


def test_split_seed_defaults_to_the_training_seed_and_fixes_the_split_across_seeds():
    """`data.split_seed` unset: the Tatoeba split follows `training.seed` exactly as before; set, every training seed
    gets the same pairs (hence the same joint BPE vocabulary), and the fingerprint keeps it."""
    from hf_seq.training.translation import experiment_pairs, split_seed

    name = SMOKE_RUNS["rnn"]
    for seed in (0, 3):
        exp = load_experiment(name, [f"training.seed={seed}"])
        assert exp.data.split_seed is None and split_seed(exp) == seed
        assert experiment_pairs(exp) == load_pairs("tatoeba", source_lang="en", target_lang="fr", seed=seed,
                                                   heldout=exp.data.tatoeba_heldout,
                                                   limits={"validation": exp.data.max_eval_samples})
    default = experiment_pairs(load_experiment(name))
    assert experiment_pairs(load_experiment(name, ["training.seed=3"]))["test"] != default["test"]
    pinned = load_experiment(name, ["training.seed=3", "data.split_seed=0"])
    assert split_seed(pinned) == 0 and experiment_pairs(pinned) == default
    assert pinned.fingerprint()["data"]["split_seed"] == 0  # a resumed run keeps its split
    # unset, the key is not in the fingerprint: runs checkpointed before it existed still resume
    assert "split_seed" not in load_experiment(name).fingerprint()["data"]


def test_two_training_seeds_on_one_split_ensemble(smoke_runs, tmp_path):
    """The point of `data.split_seed`: a second training seed on the first one's split shares its vocabulary, so the
    two runs form an ensemble that decodes, and the results record the split seed; without it the second seed trains
    on other pairs."""
    from hf_seq.ensemble import load_ensemble
    from hf_seq.training.translation import experiment_pairs

    results, first = smoke_runs("rnn")
    second = tmp_path / "seed1"
    exp = load_experiment(SMOKE_RUNS["rnn"], ["training.seed=1", "data.split_seed=0"], smoke=True,
                          output_dir=str(second))
    assert experiment_pairs(exp)["test"] == experiment_pairs(
        load_experiment(SMOKE_RUNS["rnn"], smoke=True, output_dir=str(tmp_path / "x")))["test"]
    assert run_experiment(exp)["split_seed"] == 0 and results["split_seed"] == 0
    assert (second / "tokenizer.json").read_text() == (first / "tokenizer.json").read_text()
    ensemble, tokenizer, target_tokenizer = load_ensemble([str(first), str(second)])
    sources = [row["source"] for row in results["sample_translations"]]
    hyps = translate(ensemble, tokenizer, sources, num_beams=2, max_new_tokens=24, target_tokenizer=target_tokenizer)
    assert len(hyps) == len(sources) and all(isinstance(h, str) for h in hyps)
    unpinned = load_experiment(SMOKE_RUNS["rnn"], ["training.seed=1"], smoke=True, output_dir=str(tmp_path / "y"))
    assert experiment_pairs(unpinned)["train"] != experiment_pairs(exp)["train"]


@pytest.mark.parametrize("text, match", [
    ("data:\n  split_seed: -1\n", r"bad.yaml: section 'data': split_seed=-1 must be >= 0"),
    ("data:\n  split_seed: first\n", r"bad.yaml: section 'data': split_seed='first' is a str, expected int \| None"),
    ("data:\n  dataset: multi30k\n  source_lang: de\n  target_lang: en\n  split_seed: 1\n",
     r"bad.yaml: section 'data': split_seed=1 has no effect: the multi30k splits are fixed files"),
])
def test_split_seed_is_validated(tmp_path, data_root, text, match):
    with pytest.raises(ConfigError, match=match):
        load_experiment(str(_bad(tmp_path, text)), output_dir=str(tmp_path / "run"))
    ok = load_experiment(str(_bad(tmp_path, "data:\n  split_seed: 7\n")), output_dir=str(tmp_path / "run"))
    assert ok.data.split_seed == 7


def test_resuming_a_folder_of_another_experiment_is_refused(smoke_runs, tmp_path):
    """A translation run started in the folder of another run (here: the RNN smoke run) stops before training."""
    _, trained = smoke_runs("rnn")
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    exp = load_experiment(SMOKE_RUNS["transformer"], output_dir=str(out))  # not --smoke: it would start afresh
    with pytest.raises(RunMismatchError, match="another configuration.*model.architecture"):
        run_experiment(exp)
    assert not list(out.glob("checkpoint-*"))
    assert os.path.getsize(out / "model.safetensors") == os.path.getsize(trained / "model.safetensors")


def test_translation_takes_pretrained_encoder_vectors(tmp_path):
    """`model.encoder_word_vectors` (and decoder_) initialise each side's embedding; frozen, the trained encoder still
    holds the file's vector for a word of the BPE vocabulary, and the coverage is reported."""
    import numpy as np
    import torch

    vector = np.linspace(-1, 1, 16).round(4)
    path = tmp_path / "vectors.txt"
    path.write_text("2 16\n" + "".join(f"{w} {' '.join(map(str, vector))}\n" for w in ("the", "is")))
    exp = load_experiment("seq2seq_tatoeba_bahdanau", [f"model.encoder_word_vectors={path}",
                                                       "model.freeze_encoder_embeddings=true"],
                          smoke=True, output_dir=str(tmp_path / "run"))
    results = run_experiment(exp)
    report = results["word_vectors"]
    assert report["encoder"]["found"] >= 1 and report["encoder"]["frozen"]
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "run")
    tok = AutoTokenizer.from_pretrained(tmp_path / "run")
    ids = [i for t, i in tok.get_vocab().items() if t.lstrip("Ġ") in ("the", "is")]
    assert len(ids) >= report["encoder"]["found"] >= 1
    from hf_seq.embeddings import embedding_for_side

    row = embedding_for_side(model, "encoder").weight[ids[0]]
    torch.testing.assert_close(row, torch.tensor(vector, dtype=torch.float32))

"""The experiment layer: one schema, one parser, one override syntax, validation before any data is read."""

import json
import os
import subprocess
import sys

import pytest

import hf_seq  # noqa: F401
from hf_seq.cli import main as cli
from hf_seq.training import experiment as E
from hf_seq.training.experiment import ConfigError, load_experiment

LM = "task: language-modeling\nmodel:\n  architecture: lstm\n  hidden_size: 8\n"


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_experiments_are_package_data_addressable_by_name(capsys):
    names = [n for n, _ in E.list_configs()]
    assert "lstm_timemachine" in names and len(names) >= 20
    path = E.find_experiment("lstm_timemachine")
    assert path == E.configs_dir() / "lstm_timemachine.yaml" and path.is_file()
    assert E.find_experiment("lstm_timemachine.yaml") == path
    assert E.find_experiment("configs/lstm_timemachine.yaml").resolve() == path.resolve()
    assert cli(["configs"]) == 0
    assert "lstm_timemachine" in capsys.readouterr().out
    assert cli(["configs", "show", "lstm_timemachine"]) == 0
    assert capsys.readouterr().out.strip() == path.read_text().strip()
    with pytest.raises(FileNotFoundError, match="shipped: .*lstm_timemachine"):
        E.find_experiment("lstm_timemachin")


@pytest.mark.parametrize("name", [n for n, _ in E.list_configs()])
def test_every_shipped_experiment_validates(name, monkeypatch, tmp_path):
    """Every shipped experiment passes the whole validation where its data is (../shared/data here and in CI); where
    the data is missing, the only refusal is a missing file, named, before anything is trained."""
    if E.data_root() is not None:
        exp = load_experiment(name)
        assert exp.task in E.TASKS and exp.name == name
        assert json.loads(json.dumps(exp.to_dict()))["task"] == exp.task
    monkeypatch.setenv("HF_SEQ_DATA", str(tmp_path / "nowhere"))
    try:
        exp = load_experiment(name)
    except ConfigError as e:
        assert "nowhere" in str(e) and "section 'data'" in str(e), str(e)  # the missing path, named
    else:
        assert "$HF_SEQ_DATA" not in json.dumps(E.read_yaml(E.find_experiment(name)))  # needs no data folder


def test_duplicate_keys_and_unknown_sections_are_refused(tmp_path):
    path = write(tmp_path, LM + "training:\n  learning_rate: 0.1\n  learning_rate: 0.2\n")
    with pytest.raises(ConfigError, match=r"exp.yaml.*duplicate key 'learning_rate' \(lines 6 and 7\)"):
        load_experiment(path)
    with pytest.raises(ConfigError, match="unknown key.*'optimiser'.*top level.*Allowed keys: data, generate, model"):
        load_experiment(write(tmp_path, LM + "optimiser: {}\n"))
    with pytest.raises(ConfigError, match="no `task:` key; add one of: language-modeling"):
        load_experiment(write(tmp_path, "model:\n  hidden_size: 8\n"))
    with pytest.raises(ConfigError, match="task 'lm' is not one of"):
        load_experiment(write(tmp_path, "task: lm\n"))
    with pytest.raises(ConfigError, match=r"exp.yaml.*'blocksize'.*section 'data'.*Allowed keys:.*block_size"):
        load_experiment(write(tmp_path, LM + "data:\n  blocksize: 3\n"))
    with pytest.raises(ConfigError, match=r"learning_rate='fast' is a str, expected float"):
        load_experiment(write(tmp_path, LM + "training:\n  learning_rate: fast\n"))


@pytest.mark.parametrize("override, match", [
    ("generate.temperature=0", r"section 'generate': temperature=0 must be > 0"),
    ("generate.prompt=''", r"section 'generate': prompt must not be empty"),
    ("generate.max_new_tokens=0", r"max_new_tokens=0 must be >= 1"),
    ("generate.num_beams=0", r"num_beams=0 must be >= 1"),
    ("data.eval_batch_size=0", r"section 'data': eval_batch_size=0 must be >= 1"),
    ("data.block_size=0", r"block_size=0 must be >= 1"),
    ("data.max_train_minutes=-1", r"max_train_minutes=-1 must be > 0"),
    ("training.max_steps=-5", r"max_steps=-5 must be a positive number of steps"),
    ("training.num_train_epochs=-1", r"num_train_epochs=-1 must be > 0"),
    ("training.max_grad_norm=-1", r"max_grad_norm=-1 must be >= 0"),
    ("training.learning_rate=.nan", r"learning_rate=nan must be a finite number"),
    ("training.per_device_train_batch_size=0", r"per_device_train_batch_size=0 must be >= 1"),
    ("model.hidden_size=0", r"hidden_size"),
    ("model.num_hidden_layers=-1", r"num_hidden_layers"),
])
def test_bad_values_are_refused_before_any_data_is_read(tmp_path, override, match, monkeypatch):
    """#20: `generate:` and evaluation settings, every numeric range, and the model config are checked when the
    experiment is loaded — a bad value can no longer cost a finished training run."""
    called = []
    monkeypatch.setattr("hf_seq.training.lm.load_text_splits", lambda *a, **k: called.append(1))
    with pytest.raises(ConfigError, match=match):
        load_experiment(write(tmp_path, LM), [override])
    assert not called


def test_overrides_one_syntax(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("x\n")
    (tmp_path / "b.txt").write_text("y\n")
    exp = load_experiment(write(tmp_path, LM), ["training.learning_rate=0.01", "model.num_hidden_layers=2",
                                                "data.train_files=[a.txt, b.txt]", "generate.do_sample=false"])
    assert exp.training.learning_rate == 0.01 and exp.model["num_hidden_layers"] == 2
    assert exp.data.train_files == [os.path.abspath("a.txt"), os.path.abspath("b.txt")]
    assert exp.generate.do_sample is False
    for bad, match in (("learning_rate=0.1", "must be SECTION.KEY=VALUE"), ("training.lr", "SECTION.KEY=VALUE"),
                       ("optim.lr=1", "SECTION one of"), ("training.learning_rate=[1", "not valid YAML")):
        with pytest.raises(ConfigError, match=match):
            load_experiment(write(tmp_path, LM), [bad])


def test_data_paths_resolve_against_the_experiment_file_or_the_data_root(tmp_path, monkeypatch):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "train.txt").write_text("a b c\n")
    path = write(tmp_path / "exp", LM + "data:\n  train_files: [train.txt, $HF_SEQ_DATA/ptb/ptb.valid.txt]\n")
    monkeypatch.setenv("HF_SEQ_DATA", str(tmp_path / "root"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"train_files: .*root/ptb/ptb.valid.txt does not exist"):
        load_experiment(path)
    (tmp_path / "root" / "ptb").mkdir(parents=True)
    (tmp_path / "root" / "ptb" / "ptb.valid.txt").write_text("d e f\n")
    exp = load_experiment(path)
    assert exp.data.train_files == [str(tmp_path / "exp" / "train.txt"), str(tmp_path / "root/ptb/ptb.valid.txt")]
    monkeypatch.delenv("HF_SEQ_DATA")
    monkeypatch.setattr(E, "data_root", lambda: None)
    with pytest.raises(ConfigError, match=r"set HF_SEQ_DATA=/path/to/data"):
        load_experiment(path)


def test_smoke_writes_only_to_its_scratch_folder_and_fingerprint_ignores_volatile_fields(tmp_path):
    path = write(tmp_path, LM + "training:\n  output_dir: runs/real\n  learning_rate: 0.01\n"
                 "data:\n  max_train_minutes: 5\n")
    real = load_experiment(path)
    smoke = load_experiment(path, smoke=True)
    assert real.output_dir == "runs/real" and not real.overwrite
    assert smoke.output_dir == os.path.join("runs", "smoke", "exp") and smoke.overwrite
    assert smoke.training.max_steps == 3 and smoke.model["hidden_size"] == 16
    moved = load_experiment(path, ["data.max_train_minutes=50", "training.logging_steps=7"], output_dir="elsewhere")
    assert moved.fingerprint() == real.fingerprint()
    changed = load_experiment(path, ["training.learning_rate=0.02"])
    assert changed.fingerprint() != real.fingerprint()


def test_cli_check_prints_the_resolved_experiment(capsys, tmp_path):
    assert cli(["train", str(write(tmp_path, LM)), "--check", "training.seed=7"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["task"] == "language-modeling" and resolved["training"]["seed"] == 7
    assert cli(["train", str(write(tmp_path, LM)), "--check", "seed"]) == 2
    assert "overrides look like SECTION.KEY=VALUE" in capsys.readouterr().err
    assert cli(["train", str(write(tmp_path, LM)), "generate.temperature=0"]) == 2
    assert "temperature=0 must be > 0" in capsys.readouterr().err


def test_python_m_hf_seq_train_runs_outside_the_checkout(tmp_path):
    """`python -m hf_seq.train NAME --smoke` from any folder: the experiment and its data come from the package."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "hf_seq.train", "lstm_timemachine", "--smoke"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "runs" / "smoke" / "lstm_timemachine"
    results = json.loads((run / "eval_results.json").read_text())
    assert results["test_perplexity"] > 1 and (run / "model.safetensors").is_file() and (run / "README.md").is_file()
    assert "test perplexity" in proc.stdout
    assert set(os.listdir(tmp_path)) == {"runs"}  # nothing written anywhere else

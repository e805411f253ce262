"""The side-by-side study (benchmarks/study.py): `--all --quick` end to end (every subset at smoke size: the LM rows on
Trainer with the CPU-seconds clock, resume, seeds, the PyTorch peer, the translation systems' smoke runs), the
translation collector on finished run folders built here, and the Markdown report parsed back and compared with the
JSON."""

import json
import math
import os
import re
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)

from study import cli, lm, lm_recipes, report, translation  # noqa: E402
from study.common import fmt  # noqa: E402


def md_tables(md: str) -> list[list[dict]]:
    """Every pipe table of the Markdown as a list of {header: cell} rows."""
    tables, lines = [], md.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in re.split(r"(?<!\\)\|", lines[i])[1:-1]]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("| "):
                cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", lines[i])[1:-1]]
                rows.append(dict(zip(header, cells)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def assert_table_matches(md_rows, json_rows, columns):
    assert len(md_rows) == len(json_rows)
    for md_row, js_row in zip(md_rows, json_rows):
        for header, key in columns:
            value = js_row.get(key)
            cell = md_row[header]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # the rendered number, read back, equals the JSON value to the printed precision
                assert math.isclose(number(cell), value, rel_tol=1e-3, abs_tol=0.006), (header, cell, value)
            elif value is None:
                assert cell == "n/a"
            elif isinstance(value, str):
                assert cell == value


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    """`python benchmarks/study.py --all --quick`: every subset at smoke size (the translation systems' smoke runs
    in this process)."""
    tmp = tmp_path_factory.mktemp("study")
    out, runs = tmp / "results", tmp / "runs"
    study = cli.main(["--all", "--quick", "--jobs", "0", "--out", str(out), "--run-dir", str(runs)])
    return study, out, runs


def test_quick_study_writes_json_markdown_and_plots(quick_study):
    study, out, _ = quick_study
    on_disk = json.loads((out / "study.json").read_text())
    assert on_disk["subsets"].keys() == set(cli.SUBSETS)
    for key in ("machine", "seeds", "command", "finished_at"):
        assert key in on_disk
    assert on_disk["machine"]["versions"]["torch"]
    assert "commit" in on_disk["machine"]["git"]
    assert on_disk["seeds"]["lm"] == [0]
    md = (out / "REPORT.md").read_text()
    for png in ("lm_curve.png", "long_range_gradients.png", "translation_bleu_by_length.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"]({png})" in md
    assert "Command: `OMP_NUM_THREADS=1 python benchmarks/study.py --all --quick" in md
    # every translation system trained (smoke) and was scored
    systems = on_disk["subsets"]["translation"]["systems"]
    assert [r["system"] for r in systems] == list(translation.SYSTEMS), on_disk["subsets"]["translation"]["missing"]
    for r in systems:
        assert r["steps"] > 0 and r["test_bleu"] is not None and r["threads"] >= 1
    # the LM section says what budget the rows had and that none is converged
    assert "No row is trained to convergence" in md and "NOT the architectures at convergence" in md
    # --report-only re-renders the same Markdown from the JSON
    cli.main(["--report-only", "--quick", "--out", str(out)])
    assert (out / "REPORT.md").read_text() == md


def test_report_numbers_equal_json(quick_study):
    _, out, _ = quick_study
    study = json.loads((out / "study.json").read_text())
    tables = md_tables((out / "REPORT.md").read_text())
    lm_table = next(t for t in tables if t and "Test ppl (mean)" in t[0])
    rows = [report.lm_row_view(m, study["subsets"]["lm"]["settings"]) for m in study["subsets"]["lm"]["models"]]
    assert_table_matches(lm_table, rows, report.LM_COLUMNS)
    for md_row, row in zip(lm_table, rows):  # every row states its seeds, threads and CPU seconds
        assert md_row["Seeds"] == "0" and md_row["Threads"] == "1"
        assert number(md_row["Train CPU s"]) == pytest.approx(row["train_cpu_seconds"], abs=0.06)
        assert md_row["Still improving"] in ("yes", "no")
    lr_table = next(t for t in tables if t and "grad k=1" in t[0])
    assert_table_matches(lr_table, study["subsets"]["long_range"]["rows"], report.LONG_RANGE_COLUMNS)
    tr_table = next(t for t in tables if t and "chrF" in t[0])
    assert_table_matches(tr_table, study["subsets"]["translation"]["systems"], report.TRANSLATION_COLUMNS)


def test_lm_models_are_matched_trained_and_evaluated(quick_study):
    study, _, _ = quick_study
    models = study["subsets"]["lm"]["models"]
    settings = study["subsets"]["lm"]["settings"]
    target = settings["target_parameters"]
    assert [m["architecture"] for m in models] == list(lm.ARCHS) + list(lm.PEERS)
    by_arch = {m["architecture"]: m for m in models}
    # the peer is the hf-seq LSTM's shape written the word_language_model way: same width, same count
    assert by_arch["pytorch_lstm"]["shape"]["hidden_size"] == by_arch["lstm"]["shape"]["hidden_size"]
    assert by_arch["pytorch_lstm"]["parameters"] == by_arch["lstm"]["parameters"]
    for m in models:
        assert abs(m["parameters"] - target) / target < 0.05, m["shape"]  # matched parameter counts
        assert m["steps"] > 0 and m["train_seconds"] >= settings["budget_seconds"]
        assert m["train_cpu_seconds"] >= settings["budget_seconds"]  # the budget clock is CPU time
        assert m["recipe"]["learning_rate"] == lm.recipe_of(m["architecture"], lm.LMSettings(**settings))["learning_rate"]
        vocab = study["subsets"]["lm"]["data"]["vocab_size"]
        assert 1 < m["test_perplexity"] < vocab  # trained: better than uniform
        assert m["curve"][-1]["valid_perplexity"] < m["curve"][0]["valid_perplexity"]
        assert len(m["curve"]) == settings["curve_points"] + 1  # the untrained model, then every curve point
        assert [p["seconds"] for p in m["curve"]] == sorted(p["seconds"] for p in m["curve"])
        assert m["peak_rss_mb"] > 0 and m["tokens_per_second"] > 0
        if m["architecture"] in lm.ARCHS:  # batch x bptt tokens per step (700 at full size) for every hf-seq model
            assert m["train_tokens"] == m["steps"] * settings["batch_size"] * settings["bptt"]
    assert by_arch["lstm"]["trainer"] == "StatefulLMTrainer" and by_arch["transformer"]["trainer"] == "Trainer"


def test_long_range_shows_the_rnn_gradient_vanishing(quick_study):
    study, _, _ = quick_study
    rows = study["subsets"]["long_range"]["rows"]
    assert {r["cell"] for r in rows} == {"RNN", "GRU", "LSTM"}
    for r in rows:  # the gradient from the last step shrinks with the lag for every cell
        assert r["grad_kmax"] < r["grad_k1"]
    trained = {r["cell"]: r for r in rows if r["setting"].startswith("after")}
    assert trained["RNN"]["decay_per_step"] < trained["LSTM"]["decay_per_step"]
    assert trained["RNN"]["decay_per_step"] < trained["GRU"]["decay_per_step"]


def test_lm_resumes_and_skips_finished_models(quick_study, tmp_path):
    from hf_seq.training.checkpointing import latest_complete_checkpoint

    _, _, runs = quick_study
    run_dir = str(runs / "lm")
    s = lm.LMSettings(**json.loads((runs / "lm" / "settings.json").read_text()))
    # a finished model is returned as it is, without training
    before = json.loads((runs / "lm" / "lstm" / "result.json").read_text())
    assert lm.train_worker("lstm", s, run_dir) == before
    # an interrupted model resumes from Trainer's checkpoint: drop the result, keep the checkpoint, raise the budget;
    # the CPU clock continues from the checkpoint's stamp
    os.remove(runs / "lm" / "rnn" / "result.json")
    checkpoint = latest_complete_checkpoint(str(runs / "lm" / "rnn"))
    state = json.loads(open(os.path.join(checkpoint, "trainer_state.json")).read())
    spent = [e for e in state["log_history"] if "budget_seconds" in e][-1]["budget_seconds"]
    assert os.path.isfile(os.path.join(checkpoint, "carried_state.safetensors"))  # StatefulLMTrainer's state
    s.budget_seconds = spent + 0.5
    resumed = lm.train_worker("rnn", s, run_dir)
    assert resumed["resumed_from_steps"] == [state["global_step"]]
    assert resumed["steps"] > state["global_step"]
    assert resumed["train_seconds"] >= spent + 0.45 and resumed["train_cpu_seconds"] >= spent + 0.45  # rounded to 0.1 s
    assert len(resumed["curve"]) == s.curve_points + 2  # the earlier points kept, one more at the new budget end


def test_step_clock_counts_cpu_time_and_asks_for_curve_points():
    from transformers import TrainerControl, TrainerState

    clock = lm.step_clock(0.05, "cpu", curve_points=2)
    state, control = TrainerState(), TrainerControl()
    clock.on_train_begin(None, state, control)
    points = 0
    while not control.should_training_stop:
        clock.on_step_begin(None, state, control)
        sum(i * i for i in range(20_000))  # CPU work inside the "step"
        clock.on_step_end(None, state, control)
        points += control.should_evaluate
        control.should_evaluate = False
    assert clock.cpu >= 0.05 and points == 2  # half way and at the end
    state.log_history.append({"loss": 1.0})
    clock.on_log(None, state, control)
    assert state.log_history[-1]["train_cpu_seconds"] == round(clock.cpu, 3)
    # a fresh clock (a resumed run) continues from the stamp
    again = lm.step_clock(0.05, "cpu", curve_points=2)
    again.on_train_begin(None, state, TrainerControl())
    assert again.spent() == round(clock.cpu, 3)
    with pytest.raises(ValueError, match="budget_clock"):
        lm.step_clock(1.0, "gpu")


def test_lm_seeds_give_mean_and_std(tmp_path):
    s = lm.settings_from({"archs": ["rnn"], "peers": [], "seeds": [0, 1], "curve_points": 1, "budget_seconds": 0.5},
                         quick=True)
    section = lm.run(s, str(tmp_path / "lm"), str(tmp_path / "results"), quick=True, jobs=0)
    (row,) = section["models"]
    assert section["seeds"] == [0, 1] and row["seeds"] == [0, 1]
    ppl = [r["test_perplexity"] for r in row["runs"]]
    assert ppl[0] != ppl[1]  # another seed, another initialisation
    assert row["test_perplexity"] == pytest.approx(sum(ppl) / 2, abs=0.01)
    assert row["test_perplexity_std"] == pytest.approx(abs(ppl[0] - ppl[1]) / math.sqrt(2), abs=0.01)
    md = "\n".join(report._lm(section))
    assert "| 0, 1 |" in md and fmt(row["test_perplexity_std"]) in md


def test_lm_recipe_table_and_overrides():
    s = lm.LMSettings(recipes={"lstm": {"learning_rate": 1e-3, "dropout": 0.3, "schedule": "linear"}})
    r = lm.recipe_of("lstm", s)
    assert (r["learning_rate"], r["dropout"], r["schedule"]) == (1e-3, 0.3, "linear")
    assert lm.recipe_of("gru", s)["learning_rate"] == lm.RECIPES["gru"]["learning_rate"]
    assert lm.recipe_of("gru", lm.LMSettings(learning_rates={"gru": 7e-4}))["learning_rate"] == 7e-4
    with pytest.raises(ValueError, match="unknown key"):
        lm.recipe_of("lstm", lm.LMSettings(recipes={"lstm": {"lr": 1.0}}))
    with pytest.raises(ValueError, match="optimizer"):
        lm.recipe_of("rnn", lm.LMSettings(recipes={"rnn": {"optimizer": "lion"}}))


def test_windowed_perplexity_scores_every_token_once():
    import torch

    from hf_seq.evaluation import windowed_perplexity

    class Uniform(torch.nn.Module):  # log-probs independent of the context: perplexity must be the vocabulary size
        def forward(self, input_ids, use_cache=False):
            return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 7)})()

    for n in (5, 12, 30, 31):
        r = windowed_perplexity(Uniform(), np.arange(n) % 7, window=8, stride=3)
        assert r["tokens"] == n - 1
        assert math.isclose(r["perplexity"], 7.0, rel_tol=1e-6)
    with pytest.raises(ValueError, match="stride"):
        windowed_perplexity(Uniform(), np.arange(10), window=4, stride=5)


def test_translation_rows_from_finished_runs(tmp_path):
    """The collector reads an owner's results.json and renders the table, signature and length buckets."""
    for name, bleu in (("none", 3.5), ("transformer", 20.25)):
        d = tmp_path / name
        d.mkdir()
        (d / "results.json").write_text(json.dumps({
            "dataset": "toy", "direction": "de->en", "parameters": 1000, "steps": 10, "epochs": 0.5,
            "train_seconds": 60.0, "train_cpu_seconds": 50.0, "test_bleu": bleu, "test_chrf": 30.0,
            "test_bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
            "test_chrf_signature": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
            "test_num_beams": 1, "test_pairs": 100, "test_seconds": 4.0,
            "test_bleu_by_source_length": [{"bucket": "1-8", "sentences": 60, "bleu": bleu + 1},
                                           {"bucket": "9+", "sentences": 40, "bleu": bleu - 1}],
        }))
    sec = translation.run(str(tmp_path / "out"), str(tmp_path / "runs"), quick=True, budget_minutes=1.0,
                          collect_from={"none": str(tmp_path / "none"), "transformer": str(tmp_path / "transformer"),
                                        "luong": str(tmp_path / "absent")},
                          systems=["none", "luong", "transformer"])
    assert [r["system"] for r in sec["systems"]] == ["none", "transformer"]
    assert sec["missing"][0]["system"] == "luong"
    assert sec["systems"][1]["sentences_per_second"] == 25.0
    assert (tmp_path / "out" / sec["plots"]["bleu_by_length"]).read_bytes()[:4] == b"\x89PNG"
    md = "\n".join(report._translation(sec))
    table = md_tables(md)[0]
    assert_table_matches(table, sec["systems"], report.TRANSLATION_COLUMNS)
    assert "tok:13a" in md and fmt(21.25) in md and "luong" in md
    assert "validation BLEU was not measured" in md  # no time-to-BLEU file given


def test_translation_section_includes_time_to_bleu(tmp_path):
    import translation_time_to_bleu as ttb  # benchmarks/ is on sys.path (above)

    run = tmp_path / "rnn"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"train_seconds": 10.0, "eval_history": [
        {"epoch": 1, "step": 5, "elapsed_seconds": 1800, "eval_bleu": 22.0},
        {"epoch": 2, "step": 10, "elapsed_seconds": 3600, "eval_bleu": 27.5}]}))
    ttb.main([f"GRU={run}", "--thresholds", "20", "25", "--out", str(tmp_path / "ttb")])
    sec = translation.run(str(tmp_path / "out"), str(tmp_path / "runs"), quick=True, budget_minutes=1.0,
                          collect_from={"none": str(tmp_path / "absent")}, systems=["none"],
                          time_to_bleu=str(tmp_path / "ttb.json"))
    md = "\n".join(report._translation(sec))
    assert "| GRU | 0.50 h | 1.00 h | 27.50 | 2 |" in md
    assert "](../ttb.png)" in md


def test_lm_recipes_from_finished_train_lm_runs(tmp_path):
    """The PTB-recipes section reads what train_lm.py wrote (a real smoke run here), takes the per-epoch validation
    curve from the newest checkpoint when the results carry none, and sets each row against its reference."""
    from hf_seq.training.experiment import load_experiment, run_experiment

    run = tmp_path / "smoke"
    run_experiment(load_experiment("lstm_timemachine", smoke=True, output_dir=str(run)))
    written = json.loads((run / "eval_results.json").read_text())
    assert written["torch_threads"] >= 1 and written["eval_history"] == []  # smoke runs skip validation
    # an older run: no eval_history in its results, the curve comes from its newest checkpoint; a reference config
    old = tmp_path / "zaremba"
    (old / "checkpoint-20").mkdir(parents=True)
    (old / "checkpoint-9").mkdir()
    (old / "eval_results.json").write_text(json.dumps({
        "architecture": "lstm", "parameters": 4_650_000, "train_seconds": 5400.0, "epochs": 2.0,
        "validation_perplexity": 130.0, "test_perplexity": 120.25, "config_file": "configs/lstm_ptb_zaremba_small.yaml"}))
    history = [{"epoch": 1.0, "eval_loss": math.log(200.0)}, {"epoch": 2.0, "eval_loss": math.log(130.0)}]
    (old / "checkpoint-20" / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    (old / "checkpoint-9" / "trainer_state.json").write_text(json.dumps({"log_history": history[:1]}))
    sec = lm_recipes.run(str(tmp_path / "out"), {"smoke": str(run), "Zaremba": str(old),
                                                  "absent": str(tmp_path / "absent")})
    smoke, zaremba = sec["recipes"]
    assert smoke["test_perplexity"] == round(written["test_perplexity"], 2) and smoke["reference"] is None
    assert smoke["threads"] == written["torch_threads"]
    assert [p["validation_perplexity"] for p in zaremba["history"]] == [200.0, 130.0]  # checkpoint-20, not -9
    assert zaremba["reference_test_perplexity"] == 114.5 and zaremba["test_minus_reference"] == 5.75
    assert zaremba["train_hours"] == 1.5 and zaremba["threads"] is None
    assert sec["missing"][0]["recipe"] == "absent"
    assert (tmp_path / "out" / sec["plots"]["curve"]).read_bytes()[:4] == b"\x89PNG"
    md = "\n".join(report._lm_recipes(sec))
    assert_table_matches(md_tables(md)[0], sec["recipes"], report.LM_RECIPE_COLUMNS)
    assert "Not in the table: **absent**" in md


def test_bad_subset_is_rejected():
    with pytest.raises(SystemExit):
        cli.parse_args(["--subset", "lm,speech"])
    assert cli.parse_args(["--all", "--subset", "lm"]).subsets == list(cli.SUBSETS)
    args = cli.parse_args(["--budget", "60", "--seeds", "0", "1", "2"])
    assert args.budget_seconds == 60 and args.seeds == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown lm setting"):
        lm.settings_from({"hidden": 3}, quick=True)


def test_time_to_validation_bleu_from_run_folders(tmp_path):
    import translation_time_to_bleu as ttb  # benchmarks/ is on sys.path (above)

    def run(name, history, train_seconds=100.0):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(
            {"eval_history": history, "train_seconds": train_seconds, "threads": 1, "test_bleu": 30.0}))
        return str(folder)

    rnn = run("rnn", [{"epoch": 1, "step": 10, "elapsed_seconds": 600, "eval_bleu": 12.0},
                      {"epoch": 2, "step": 20, "elapsed_seconds": 1200, "eval_bleu": 21.5},
                      {"epoch": 3, "step": 30, "elapsed_seconds": 1800, "eval_bleu": 26.0}])
    first = run("first", [], train_seconds=3600.0)
    resumed = run("resumed", [{"epoch": 6, "step": 60, "elapsed_seconds": 300, "eval_bleu": 27.0},
                              {"epoch": 7, "step": 70, "elapsed_seconds": 900, "eval_bleu": 31.0}])
    out = tmp_path / "ttb"
    ttb.main([f"RNN={rnn}", f"Transformer={resumed}+{first}", "--thresholds", "20", "25", "30", "--out", str(out)])
    report = json.loads((tmp_path / "ttb.json").read_text())
    by_label = {r["label"]: r for r in report["runs"]}
    assert by_label["RNN"]["time_to"] == {"20.0": 1200, "25.0": 1800, "30.0": None}
    assert by_label["Transformer"]["time_to"] == {"20.0": 3900.0, "25.0": 3900.0, "30.0": 4500.0}
    assert by_label["Transformer"]["upper_bound"] == {"20.0": True, "25.0": True, "30.0": False}
    markdown = (tmp_path / "ttb.md").read_text()
    assert "| RNN | 0.33 h | 0.50 h | not reached | 26.00 | 3 |" in markdown
    assert "| Transformer | ≤ 1.08 h | ≤ 1.08 h | 1.25 h | 31.00 | 7 |" in markdown
    assert (tmp_path / "ttb.png").stat().st_size > 10_000


def test_lm_learning_rate_sweep_picks_each_models_rate(tmp_path):
    """lr_sweep: a short run per (architecture, rate), then each architecture trains with the rate of its lowest
    validation-prefix perplexity, and the report shows the sweep."""
    s = lm.settings_from({"archs": ["rnn"], "peers": [], "lr_sweep": [1e-3, 1e-2], "sweep_seconds": 0.5,
                          "budget_seconds": 0.5}, quick=True)
    section = lm.run(s, str(tmp_path / "lm"), str(tmp_path / "results"), quick=True, jobs=0)
    sweep = section["lr_sweep"]["rnn"]
    assert set(sweep["valid_perplexity"]) == {"0.001", "0.01"}
    assert sweep["best"] == float(min(sweep["valid_perplexity"], key=sweep["valid_perplexity"].get))
    for rate, ppl in sweep["valid_perplexity"].items():
        short = json.loads((tmp_path / "lm" / "sweep" / f"lr{rate}" / "rnn" / "result.json").read_text())
        assert short["learning_rate"] == float(rate) and short["validation_perplexity"] == ppl
        assert short["test_perplexity"] is None  # ranked on validation only
    assert section["models"][0]["learning_rate"] == sweep["best"]
    assert section["settings"]["learning_rates"] == {"rnn": sweep["best"]}
    md = "\n".join(report._lm(section))
    assert "Learning-rate sweep" in md and "| RNN (tanh) |" in md and "**" in md
    # a worker subprocess is pointed at the sweep folder itself (it holds settings.json): a finished model is
    # reported, not retrained in a new lm/ folder
    sweep_dir = tmp_path / "lm" / "sweep" / "lr0.01"
    cli.main(["--lm-worker", "rnn", "--run-dir", str(sweep_dir)])
    assert not (sweep_dir / "lm").exists()


@pytest.mark.slow
def test_the_command_line_all_quick_with_three_seeds_and_worker_processes(tmp_path):
    """`python benchmarks/study.py --all --quick --seeds 0 1 2` as a user types it: LM workers in subprocesses, three
    seeds per model, every section in the report with its spread."""
    import subprocess

    out, runs = tmp_path / "results", tmp_path / "runs"
    subprocess.run([sys.executable, os.path.join(BENCH, "study.py"), "--all", "--quick", "--seeds", "0", "1", "2",
                    "--jobs", "2", "--out", str(out), "--run-dir", str(runs)], check=True,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    study = json.loads((out / "study.json").read_text())
    assert study["seeds"]["lm"] == [0, 1, 2]
    for m in study["subsets"]["lm"]["models"]:
        assert m["seeds"] == [0, 1, 2] and m["test_perplexity_std"] is not None
        assert [r["seed"] for r in m["runs"]] == [0, 1, 2]
    md = (out / "REPORT.md").read_text()
    assert "| 0, 1, 2 |" in md and "## 4. Word vectors" in md and "## 3. Translation" in md

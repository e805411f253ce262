"""Issue 9, multi-process: `torchrun --nproc_per_node 2` (DDP over gloo, CPU) training of the LSTM LM, the RNN seq2seq
and word2vec matches one process with the same global batch, and both ranks end with identical weights.

Driven by training/ddp_check.py (three process launches: ~1.5-3 min on 2 busy cores, hence `slow`):
    python -m pytest tests/test_reliability_ddp.py -m slow
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "training", "ddp_check.py")


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, SCRIPT, "--out", str(one)], env=_env(), check=True, timeout=600,
                   capture_output=True)
    torchrun = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m",
                                                                            "torch.distributed.run"]
    proc = subprocess.run(torchrun + ["--nproc_per_node", "2", SCRIPT, "--out", str(two)], env=_env(), timeout=600,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = subprocess.run([sys.executable, SCRIPT, "--compare", str(one), str(two), "--tolerance", "1e-4"],
                            env=_env(), capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    assert set(report) == {"lm", "seq2seq", "word2vec"}
    for family, r in report.items():
        assert r["world_size"] == 2 and r["ranks_found"] == 2, (family, r)
        assert r["ranks_identical"], f"{family}: the two ranks hold different weights"
        assert r["max_loss_diff"] <= 1e-4, (family, r["losses_1proc"], r["losses_ddp"])
        assert r["max_weight_diff"] <= 1e-4, (family, r["max_weight_diff"])
        if family != "word2vec":  # 6 steps of 8 random pairs: word2vec's per-batch loss is noise at this scale
            assert r["losses_1proc"][-1] < r["losses_1proc"][0], (family, "training did not lower the loss")
    assert result.returncode == 0


@pytest.mark.slow
def test_word2vec_accelerate_loop_two_processes_match_one(tmp_path):
    """training/train_word2vec_accelerate.py under torchrun: accelerate runs 2 CPU processes (gloo), and 2 x 64 pairs
    per step learn as 1 x 128 (the per-pair rate is scaled by the global batch)."""
    script = os.path.join(REPO, "training", "train_word2vec_accelerate.py")
    common = ["--epochs", "2", "--vector-size", "32", "--max-lines", "1500"]
    one = subprocess.run([sys.executable, script, *common, "--batch-size", "128", "--out", str(tmp_path / "one")],
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m",
                                                                            "torch.distributed.run"]
    two = subprocess.run(torchrun + ["--nproc_per_node", "2", script, *common, "--batch-size", "64", "--out",
                                     str(tmp_path / "two")], env=_env(), capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "two"))
    assert (r1["processes"], r2["processes"]) == (1, 2)
    losses1, losses2 = [h["loss"] for h in r1["history"]], [h["loss"] for h in r2["history"]]
    assert losses1[1] < losses1[0] - 0.2 and losses2[1] < losses2[0] - 0.2, (losses1, losses2)
    for a, b in zip(losses1, losses2):
        assert abs(a - b) < 0.02 * a, (losses1, losses2)


@pytest.mark.slow
def test_torchrun_runs_an_experiment_by_name(tmp_path):
    """`torchrun --nproc_per_node 2 -m hf_seq.train NAME`: both ranks train, rank 0 alone writes the run folder."""
    torchrun = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m",
                                                                            "torch.distributed.run"]
    out = tmp_path / "run"
    proc = subprocess.run(torchrun + ["--nproc_per_node", "2", "-m", "hf_seq.train", "lstm_timemachine", "--smoke",
                                      "--output_dir", str(out)], env=_env(), cwd=tmp_path, timeout=600,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "eval_results.json").read_text())
    assert results["test_perplexity"] > 1 and (out / "model.safetensors").is_file()
    assert not [p for p in os.listdir(out) if p.startswith(".tmp-")]  # no half-written file left by a second rank

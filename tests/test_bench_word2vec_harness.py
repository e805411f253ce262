"""benchmarks/bench_word2vec.py runs each system in a fresh spawned process; a child that dies without reporting (a
signal, the OOM killer, a missing dependency) must raise in the parent with its exit code instead of hanging it."""

import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)

import bench_word2vec  # noqa: E402


def _dies(setting, args, queue):
    os._exit(3)


def _answers(setting, args, queue):
    queue.put({"setting": setting, "ok": args})


def test_a_child_that_dies_without_answering_raises_with_its_exit_code():
    with pytest.raises(RuntimeError, match=r"_dies run for 'cbow_ns' died with exit code 3"):
        bench_word2vec._in_fresh_process(_dies, "cbow_ns", None)


def test_a_child_that_answers_returns_its_result():
    assert bench_word2vec._in_fresh_process(_answers, "skipgram_hs", 7) == {"setting": "skipgram_hs", "ok": 7}

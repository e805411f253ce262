"""benchmarks/spawn_utils.py: the benchmark scripts measure each system in a fresh spawned process; a child that dies
without reporting (a signal, the OOM killer, a missing dependency) must raise in the parent with its exit code instead
of leaving it waiting forever, and a child that hangs must be stopped at the timeout."""

import multiprocessing as mp
import os
import sys
import time

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)

from spawn_utils import call_in_fresh_process, get_or_raise  # noqa: E402


def _dies(setting, queue):
    os._exit(3)


def _answers(setting, value, queue):
    queue.put({"setting": setting, "value": value})


def _exits_silently(queue):
    pass


def _hangs(queue):
    time.sleep(600)


def _answers_then_exits(n, queue):
    for i in range(n):
        queue.put(i)
    queue.put(None)


def test_a_child_that_answers_returns_its_result():
    assert call_in_fresh_process(_answers, "skipgram_hs", 7) == {"setting": "skipgram_hs", "value": 7}


def test_a_child_that_dies_raises_with_its_exit_code():
    with pytest.raises(RuntimeError, match=r"_dies\('cbow_ns',\): a child process died with exit code 3"):
        call_in_fresh_process(_dies, "cbow_ns")


def test_a_child_that_exits_without_answering_raises():
    with pytest.raises(RuntimeError, match="every child process exited without reporting a result"):
        call_in_fresh_process(_exits_silently)


def test_a_hanging_child_is_terminated_at_the_timeout():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="no result after 3 s"):
        call_in_fresh_process(_hangs, timeout=3)
    assert time.monotonic() - start < 60


def test_several_workers_everything_they_put_is_read_and_a_dead_one_raises():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_answers_then_exits, args=(n, queue)) for n in (2, 3)]
    for p in procs:
        p.start()
    items, done = [], 0
    while done < len(procs):
        item = get_or_raise(queue, procs, "workers")
        if item is None:
            done += 1
        else:
            items.append(item)
    for p in procs:
        p.join()
    assert sorted(items) == [0, 0, 1, 1, 2]
    dead = ctx.Process(target=_dies, args=("x", queue))
    dead.start()
    with pytest.raises(RuntimeError, match="exit code 3"):
        get_or_raise(queue, [dead], "workers")

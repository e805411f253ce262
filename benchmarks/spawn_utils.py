"""Runs in fresh (spawned) processes for the benchmark scripts, so that each measurement starts from a clean
interpreter (peak RSS, allocator, thread pools), without ever waiting forever: a child that dies before it reports
(a signal, the OOM killer, a crash in native code, a missing dependency) raises in the parent with its exit code."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import time


def get_or_raise(queue, procs, what: str, timeout: float | None = None, poll: float = 2.0):
    """`queue.get()` that gives up when no process in `procs` can answer any more (one died with a non-zero exit
    code, or all have exited and nothing is left in the queue) or after `timeout` seconds (the processes still
    running are then terminated)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            return queue.get(timeout=poll)
        except queue_module.Empty:
            pass
        failed = [p for p in procs if p.exitcode not in (None, 0)]
        if failed:
            codes = ", ".join(str(p.exitcode) for p in failed)
            raise RuntimeError(f"{what}: a child process died with exit code {codes} before reporting a result "
                               "(its traceback, if it printed one, is above)")
        if all(p.exitcode is not None for p in procs):
            try:  # an exited child flushed what it put before exiting
                return queue.get(timeout=poll)
            except queue_module.Empty:
                raise RuntimeError(f"{what}: every child process exited without reporting a result") from None
        if deadline is not None and time.monotonic() > deadline:
            for p in procs:
                if p.is_alive():
                    p.terminate()
            raise TimeoutError(f"{what}: no result after {timeout:.0f} s; the child processes were terminated")


def call_in_fresh_process(fn, *args, timeout: float | None = None):
    """`fn(*args, queue)` in a spawned process; returns the first thing it puts on `queue`."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(*args, queue))
    proc.start()
    try:
        return get_or_raise(queue, [proc], f"{fn.__name__}{args!r}", timeout=timeout)
    finally:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.terminate()

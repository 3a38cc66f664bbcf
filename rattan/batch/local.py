"""The default executor of `rattan batch`: worker processes on this machine.

As many runs at once as the machine's cores and one run's declared `resources` allow (2 cores and
`cores: 1`: two at once), `jobs` to ask for fewer. Workers live for the whole batch, so what a
worker keeps between runs (the warm pool of namespaces and rings, rattan.runtime.warm) is reused.
Ctrl-C: every worker gets a SIGINT, which ends its run through the library's teardown.
"""
from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import math
import multiprocessing
import os
import signal

MAX_INSTANCES = 64  # rattan instances one machine runs at once in a batch


def local_slots(resources: dict | None, jobs: int | None = None, cores: int | None = None) -> int:
    """Runs of `resources` this machine takes at once."""
    resources = resources or {}
    cores = cores or os.cpu_count() or 1
    by_cores = math.floor(cores / float(resources.get("cores", 1)) + 1e-9)
    by_instances = MAX_INSTANCES // int(resources.get("instances", 1))
    slots = max(1, min(by_cores, by_instances))
    return max(1, min(slots, jobs)) if jobs else slots


_POOL = None  # the worker's warm pool, if rattan.runtime.warm is there


def _worker_init() -> None:
    global _POOL
    # a terminal's Ctrl-C reaches the workers too; the driver decides (it sends SIGINT itself)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from ..runtime import warm
        _POOL = warm.pool()
        warm.close_on_signals(_POOL)  # SIGTERM (a broken executor's terminate): the pool goes too
    except Exception:  # no pool here: every run opens its own network
        _POOL = None


def _interruptible(signum, frame):
    from .job import SHIELD
    # once: a terminal's Ctrl-C and the driver's cancel_all both send SIGINT, and a second
    # KeyboardInterrupt inside the teardown would leave namespaces (or Popen's wait lock) behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if SHIELD.active:  # building or removing namespaces: run_job stops when that is done
        SHIELD.pending = True
        return
    raise KeyboardInterrupt


def _work(job: dict) -> dict:
    from .job import SHIELD, run_job
    SHIELD.pending = False
    signal.signal(signal.SIGINT, _interruptible)  # from the driver's cancel_all: teardown, then stop
    try:
        return run_job(job, network_pool=_POOL)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalExecutor:
    """Worker processes here; `submit(job dict) -> Future` of the JobResult dict."""

    def __init__(self, slots: int | None = None, resources: dict | None = None, jobs: int | None = None,
                 reuse: bool = True) -> None:
        self.slots = slots or local_slots(resources, jobs)
        self.reuse = reuse
        self.jobs, self.resources = jobs, dict(resources or {})
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.slots, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init if self.reuse else _no_pool_init)

    def submit(self, job: dict) -> concurrent.futures.Future:
        try:
            return self._pool.submit(_work, job)
        except concurrent.futures.process.BrokenProcessPool:
            # a worker died (killed, out of memory, a crash): its run is recorded as failed by the
            # runner; the batch goes on with fresh workers
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(_work, job)

    def cancel_all(self) -> None:
        """Stop the running runs (each tears down), drop the queued ones."""
        for proc in list((self._pool._processes or {}).values()):
            try:
                os.kill(proc.pid, signal.SIGINT)
            except OSError:
                pass
        self._pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        text = f"local, {self.slots} at once"
        if self.jobs and self.jobs > self.slots:  # say why --jobs N gave fewer
            cores = self.resources.get("cores", 1)
            text += (f" (not {self.jobs}: {os.cpu_count() or 1} cores, each run declares "
                     f"`resources: {{cores: {cores:g}}}`)")
        return text

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _no_pool_init() -> None:
    global _POOL
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _POOL = None

"""RayExecutor on an embedded local Ray: resources bound concurrency, node names, failures, cancel, auth env.

The jobs here run a small function given as `run_job` (the executor's injection point), so these
tests exercise the executor and Ray, not the experiment runner; the real `run_job` runs in
tests/batch/test_ray_cluster.py.
"""
from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray import cloudpickle  # noqa: E402

from rattan.batch.ray_executor import RayExecutor, RayExecutorError, node_label, node_slots  # noqa: E402

# the workers cannot import this test module: ship its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def timed_job(job: dict) -> dict:
    """Sleep, and say when and where (pid) it ran."""
    started = time.time()
    time.sleep(job.get("sleep", 0.5))
    return {"key": job["key"], "status": "ok", "machine": "set-by-job", "pid": os.getpid(),
            "t0": started, "t1": time.time()}


def crashing_job(job: dict) -> dict:
    """The worker process dies under the job."""
    os._exit(3)


def interruptible_job(job: dict) -> dict:
    """Holds a resource (a marker file) for a long time and releases it in `finally`, as a run does."""
    marker = Path(job["marker"])
    marker.write_text("running")
    try:
        time.sleep(120)
    finally:
        marker.unlink()
        Path(job["marker"] + ".torn-down").write_text("yes")
    return {"key": job["key"], "status": "ok"}


def dispatch(job: dict) -> dict:
    """The executor's `run_job`: the job names which of the functions above it is."""
    jobs = {"timed_job": timed_job, "crashing_job": crashing_job, "interruptible_job": interruptible_job}
    return jobs[job["fn"]](job)


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    """One embedded Ray for the module (start-up costs seconds): 2 cores, 2 instances declared."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))  # the token must not be written to ~/.ray
        mp.delenv("RAY_AUTH_MODE", raising=False)
        mp.delenv("RAY_AUTH_TOKEN", raising=False)
        # Ray's processes start with SIGINT ignored, as under `nohup` or a CI script's `&`: a cancel
        # must interrupt the jobs all the same
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            ex = RayExecutor(cores=2, instances=2, run_job=dispatch)
        finally:
            signal.signal(signal.SIGINT, previous)
        try:
            yield ex, home
        finally:
            ex.close()
        assert "RAY_AUTH_MODE" not in os.environ and "RAY_AUTH_TOKEN" not in os.environ
        assert not (home / ".ray").exists()


def test_slots_and_description_come_from_the_declared_resources(executor):
    ex, _ = executor
    assert ex.slots == 2
    assert ex.slots_for({"cores": 2, "instances": 1}) == 1
    assert ex.describe() == "ray local, 2 slots"
    assert os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) >= 32


def test_runs_never_exceed_what_the_node_declares(executor):
    ex, _ = executor
    # each run takes both cores: they must run one after the other
    futures = [ex.submit({"fn": "timed_job", "key": f"k{i}", "sleep": 0.8, "resources": {"cores": 2, "instances": 1}})
               for i in range(3)]
    results = sorted((f.result(timeout=120) for f in futures), key=lambda r: r["t0"])
    for a, b in zip(results, results[1:]):
        assert b["t0"] >= a["t1"] - 0.05, (a, b)
    # one core each: two at once (the sleeps overlap)
    futures = [ex.submit({"fn": "timed_job", "key": f"p{i}", "sleep": 3, "resources": {"cores": 1, "instances": 1}})
               for i in range(2)]
    a, b = (f.result(timeout=120) for f in futures)
    assert a["pid"] != b["pid"]
    assert max(a["t0"], b["t0"]) < min(a["t1"], b["t1"]), (a, b)


def test_machine_is_the_ray_nodes_name(executor):
    ex, _ = executor
    result = ex.submit({"fn": "timed_job", "key": "m", "sleep": 0}).result(timeout=120)
    assert result["machine"] == socket.gethostname()  # the embedded node has no --node-name
    assert node_label({"NodeName": "worker-1", "NodeManagerAddress": "10.0.0.2",
                       "NodeManagerHostname": "host"}) == "worker-1"
    assert node_label({"NodeName": "10.0.0.2", "NodeManagerAddress": "10.0.0.2",
                       "NodeManagerHostname": "host"}) == "host"


def test_a_job_no_node_can_take_is_refused_at_submit(executor):
    ex, _ = executor
    with pytest.raises(RayExecutorError, match="rattan_cores"):
        ex.submit({"key": "big", "resources": {"cores": 3, "instances": 1}})
    assert node_slots({"rattan_cores": 8.0, "rattan_instances": 2.0}, {"cores": 2, "instances": 1}) == 2


def test_a_dead_worker_is_a_failed_result_not_an_exception(executor):
    ex, _ = executor
    result = ex.submit({"fn": "crashing_job", "key": "crash", "experiment": "e", "params": {"a": 1}, "seed": 1,
                        "repetition": 0, "attempt": 2}).result(timeout=120)
    assert result["status"] == "failed" and result["key"] == "crash" and result["attempt"] == 2
    assert "ray:" in result["error"]


def test_cancel_all_interrupts_running_jobs_so_they_tear_down(executor, tmp_path):
    ex, _ = executor
    markers = [str(tmp_path / f"run{i}") for i in range(2)]
    futures = [ex.submit({"fn": "interruptible_job", "key": f"c{i}", "marker": m}) for i, m in enumerate(markers)]
    deadline = time.monotonic() + 60
    while not all(Path(m).exists() for m in markers):
        assert time.monotonic() < deadline, "the jobs never started"
        time.sleep(0.1)
    start = time.monotonic()
    ex.cancel_all()
    assert time.monotonic() - start < 30  # interrupted, not waited out (the jobs sleep 120 s)
    for future, marker in zip(futures, markers):
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(timeout=30)
        assert not Path(marker).exists()
        assert Path(marker + ".torn-down").read_text() == "yes"

"""The local executor outlives a worker that dies: the run it held fails (and is retried by the
runner), the next runs get fresh workers, and what the dead worker left is cleaned up."""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import time

import pytest

from rattan.batch.experiment import load
from rattan.batch.local import LocalExecutor
from rattan.runtime.netns import clean_stale
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real runs need root (network namespaces)")

EXPERIMENT = """\
topology: broadband.rtn
sweep: {secs: [20, 0.2]}
workload:
  - {endpoint: left, name: wait, command: "sleep {secs}; ping -c 1 -W 2 $RATTAN_RIGHT_IP", extract: ping}
timeout: 60s
"""


def test_a_killed_worker_fails_its_run_and_the_next_run_still_runs(tmp_path):
    shutil.copy(ROOT / "examples" / "broadband.rtn", tmp_path)
    (tmp_path / "e.yaml").write_text(EXPERIMENT)
    slow, quick = load(str(tmp_path / "e.yaml")).jobs()
    ex = LocalExecutor(slots=1, reuse=False)
    try:
        fut = ex.submit(slow.to_dict())
        deadline = time.monotonic() + 30
        while not ex._pool._processes and time.monotonic() < deadline:
            time.sleep(0.1)
        (worker,) = list(ex._pool._processes.values())
        time.sleep(3)  # inside its run: namespaces built, `sleep 20` started
        os.kill(worker.pid, 9)
        with pytest.raises(concurrent.futures.process.BrokenProcessPool):
            fut.result(timeout=30)
        result = ex.submit(quick.to_dict()).result(timeout=60)
        assert result["status"] == "ok", result.get("error")
        assert result["metrics"]["wait.received"] == 1
    finally:
        ex.close()
    clean_stale()  # what `rattan run`/`batch` does before each run: the dead worker's instance goes
    left = subprocess.run(["pgrep", "-f", "sleep 20; ping"], capture_output=True, text=True).stdout.split()
    assert left == [], "the killed run's command still runs"

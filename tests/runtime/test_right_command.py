"""The `--right` command gets a head start until it listens (root): a server that takes a while to
come up is still up before the command's client connects; one that never listens delays the run by
a bounded wait only."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from rattan.runtime.run import RIGHT_LISTEN_WAIT_S

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]
PASS = """channel c {
    endpoints left, right
    left -> pass {} -> right
    right -> pass {} -> left
}
"""


def test_a_slow_server_is_listening_before_the_client_starts(tmp_path):
    # the server binds 1.5 s after it starts: a fixed 0.3 s head start lost this race every time
    path = tmp_path / "c.rtn"
    path.write_text(PASS)
    r = subprocess.run([*RATTAN, "run", str(path), "-q", "--right", "sleep 1.5; exec iperf3 -s -1 -p 5301",
                        "--", "sh", "-c", "iperf3 -c $RATTAN_RIGHT_IP -p 5301 -n 200K"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "receiver" in r.stdout


def test_a_right_command_that_never_listens_delays_the_run_by_the_bounded_wait(tmp_path):
    path = tmp_path / "c.rtn"
    path.write_text(PASS)
    t0 = time.monotonic()
    r = subprocess.run([*RATTAN, "run", str(path), "-q", "--right", "sleep 30", "--", "true"],
                       capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    # the wait is bounded (the run's set-up and teardown take about a second more, up to 4 s loaded)
    assert RIGHT_LISTEN_WAIT_S <= took < RIGHT_LISTEN_WAIT_S + 15, took

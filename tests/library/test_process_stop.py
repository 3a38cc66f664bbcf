"""Process.stop ends a command even when Popen's own wait lock is stuck (a KeyboardInterrupt that
lands inside Popen.wait can leave it held; a batch worker then hung in stop() for good)."""
from __future__ import annotations

import os
import threading
import time

import pytest

from rattan.library import Process

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="entering a network namespace needs root")


def test_stop_returns_with_popen_s_wait_lock_held():
    # the test's own namespace: nothing is sent, `sleep` only has to be stopped
    p = Process(["sleep", "30"], "left", f"/proc/{os.getpid()}/ns/net", dict(os.environ))
    assert p._popen._waitpid_lock.acquire(False)  # as an interrupted wait leaves it
    got = []
    stopper = threading.Thread(target=lambda: got.append(p.stop(grace=0.5)), daemon=True)
    t0 = time.monotonic()
    stopper.start()
    stopper.join(20)  # a regression hangs here: fail instead of hanging the suite
    took = time.monotonic() - t0
    hung = stopper.is_alive()
    p._popen._waitpid_lock.release()
    if hung:
        stopper.join(10)
    assert not hung, "stop() hung on Popen's wait lock"
    assert got and got[0] != 0 and took < 15, (got, took)
    with pytest.raises(ProcessLookupError):
        os.kill(p._popen.pid, 0)  # reaped: no zombie left

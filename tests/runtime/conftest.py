"""Real-emulation tests need root, network namespaces, iperf3 and ping; elsewhere they skip, saying why."""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import threading

import pytest


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces and raw sockets"
    for tool in ("iperf3", "ping", "ip"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (installed by .ci/run)"
    r = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    if r.returncode != 0:
        return "network namespaces are not available here"
    return None


WHY_NOT = _why_not()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/runtime" in str(item.fspath) and WHY_NOT:
            item.add_marker(pytest.mark.skip(reason=WHY_NOT))


def _left_behind(names: set[str], ours: set[int]) -> set[str]:
    """Rattan namespaces that a run of this test (a process in `ours`) left behind. Other runs going
    on at the same time (another test session on this machine) own the rest, dead or alive."""
    out = set()
    for name in names:
        m = re.fullmatch(r"rattan-(\d+)-.*", name)
        if not m:
            continue
        try:
            with open(f"/run/rattan/instances/{m.group(1)}.json") as f:
                owner = json.load(f)["pid"]
        except (OSError, ValueError, KeyError):
            out.add(name)  # no record: nobody owns it
            continue
        if owner in ours:
            out.add(name)
    return out


def _children() -> set[int]:
    out = set()
    for path in glob.glob("/proc/self/task/*/children"):
        try:
            with open(path) as f:
                out.update(int(pid) for pid in f.read().split())
        except OSError:
            pass
    return out


def _namespaces() -> set[str]:
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())


@pytest.fixture
def no_leftovers():
    """The test leaves no namespace or instance record behind. Its runs are this process and its
    children, which are noted while it runs (a run lives a second or more; they are seen every 20 ms)."""
    before = _namespaces()
    ours = {os.getpid()}
    done = threading.Event()

    def watch():
        while not done.wait(0.02):
            ours.update(_children())
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    yield
    done.set()
    watcher.join()
    ours.update(_children())
    after = _namespaces()
    assert not _left_behind(after - before, ours), after - before


# Ping through a path that delays D ms (both ways together), measured over 10 runs of tests/runtime on
# this 2-core machine with one core hogged by a busy loop and other test suites and builds running
# (load average 5-12): the fastest of 10 replies 0.0-3.1 ms over D (6.0 once, in 14 runs), the median
# 0.1-15.4 ms over D. Idle, both are within 0.3 ms of D. Nothing arrives before D: that bound is exact.
FASTEST_OVER_MS = 10.0  # one reply took the path's delay and not much more (a doubled 10 ms path fails)
MEDIAN_OVER_MS = 25.0  # and most did, give or take a CPU shared with everything else


def check_path_delay(rtts: list[float], path_ms: float, record_property, name: str = "rtt") -> None:
    """Ping's replies show a path of `path_ms`: none earlier, the fastest and the median not much
    later (the figures are recorded: `pytest --junitxml` keeps them, to measure the spread again)."""
    fastest, median = min(rtts), statistics.median(rtts)
    record_property(f"{name}_min_ms", fastest)
    record_property(f"{name}_median_ms", median)
    assert fastest >= path_ms, rtts  # a delay cell never sends early; a delay of 0 fails here
    assert fastest < path_ms + FASTEST_OVER_MS, rtts
    assert median < path_ms + MEDIAN_OVER_MS, rtts


def ping_times_ms(text: str, prefix: str = "") -> list[float]:
    """The RTT of every reply in ping's output (ms), of the lines that start with `prefix`."""
    return [float(m.group(1)) for m in re.finditer(rf"^{re.escape(prefix)}.*\btime=([\d.]+) ms$", text, re.M)]


# rattan starts the command once `--right` listens, or after 5 s: a client script also starts with
# this, which waits (at most 10 s) until iperf3's server listens in the right endpoint.
SERVER_UP = ('i=0; until ip netns exec "$RATTAN_RIGHT_NETNS" ss -ltnH "sport = :5201" | grep -q . '
             '|| [ $i -ge 200 ]; do i=$((i+1)); sleep 0.05; done; ')

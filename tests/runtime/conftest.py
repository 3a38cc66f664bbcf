"""Real-emulation tests need root, network namespaces, iperf3 and ping; elsewhere they skip, saying why."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

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


def _left_behind(names: set[str]) -> set[str]:
    """Rattan namespaces no living rattan process owns (another run going on at the same time may
    own some; those are not this test's leftovers)."""
    out = set()
    for name in names:
        m = re.fullmatch(r"rattan-(\d+)-.*", name)
        if not m:
            continue
        try:
            with open(f"/run/rattan/instances/{m.group(1)}.json") as f:
                os.kill(json.load(f)["pid"], 0)
            continue  # a live run's
        except (OSError, ValueError, KeyError):
            out.add(name)
    return out


@pytest.fixture
def no_leftovers():
    """The test leaves no namespace or instance record behind."""
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    yield
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    assert not _left_behind(after - before), after - before

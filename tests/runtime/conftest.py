"""Real-emulation tests need root, network namespaces, iperf3 and ping; elsewhere they skip, saying why."""
from __future__ import annotations

import os
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


@pytest.fixture
def no_leftovers():
    """The test leaves no namespace or instance record behind."""
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    yield
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    assert not {n for n in after - before if n.startswith("rattan-")}, after - before

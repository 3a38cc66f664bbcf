"""The library's tests: compiling and virtual time run as anyone; real runs (marked `netns`) need
root, namespaces, iperf3 and ping, and skip elsewhere, saying why (as tests/runtime)."""
from __future__ import annotations

import pytest

from tests.runtime.conftest import WHY_NOT, no_leftovers  # noqa: F401  (the fixture, shared)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/library" in str(item.fspath) and WHY_NOT and item.get_closest_marker("netns"):
            item.add_marker(pytest.mark.skip(reason=WHY_NOT))

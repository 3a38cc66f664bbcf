"""The `duplicate` cell in virtual time."""
from __future__ import annotations

import pytest

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain, conserved


def test_duplicate_conserves_with_created_packets():
    e = Engine(2)
    d = cell(e, "duplicate", rate=0.1)
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 120_000_000, 1500)
    e.run_until(10 * SEC)
    s = e.flow_stats(f)
    assert s["received_packets"] / s["sent_packets"] == pytest.approx(1.1, rel=0.005)
    conserved(e, d)

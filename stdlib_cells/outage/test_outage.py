"""The `outage` cell in virtual time."""
from __future__ import annotations

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain, conserved


def test_outage_periodic():
    e = Engine(1)
    o = cell(e, "outage", up=8 * SEC, down=2 * SEC)
    left, right = chain(e, o)
    f = e.add_flow(left, right, "cbr", 12_000_000, 1500)  # 1000 packets/s
    e.run_until(20 * SEC)
    assert e.counters(o).dropped_by_reason == {"outage": 4000}
    conserved(e, o)

"""The `loss_trace` cell in virtual time."""
from __future__ import annotations

import pytest

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain, conserved, steps


def test_loss_trace_follows_the_trace():
    e = Engine(3)
    lt = cell(e, "loss_trace", trace=steps([(0, 0.0), (10 * SEC, 0.2), (20 * SEC, 0.05)]), loop=False)
    left, right = chain(e, lt)
    f = e.add_flow(left, right, "cbr", 120_000_000, 1500)  # 10k packets/s
    e.run_until(10 * SEC)
    assert e.counters(lt).dropped_packets == 0
    e.run_until(20 * SEC)
    assert e.counters(lt).dropped_packets / 100_000 == pytest.approx(0.2, abs=0.005)
    before = e.counters(lt).dropped_packets
    e.run_until(40 * SEC)
    assert (e.counters(lt).dropped_packets - before) / 200_000 == pytest.approx(0.05, abs=0.002)
    assert e.counters(lt).dropped_by_reason.keys() == {"loss"}
    assert e.flow_stats(f)["received_packets"] == e.counters(lt).out_packets
    conserved(e, lt)

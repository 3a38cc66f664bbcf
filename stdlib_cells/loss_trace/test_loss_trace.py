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


@pytest.mark.parametrize("start, lost", [("run", 0), ("first_packet", 1000)])
def test_loss_trace_can_start_at_the_first_packet(start, lost):
    # everything is lost in the trace's first second; the only flow starts 2 s into the run
    e = Engine(1)
    lt = cell(e, "loss_trace", trace=steps([(0, 1.0), (SEC, 0.0)]), loop=False, start=start)
    left, right = chain(e, lt)
    e.add_flow(left, right, "cbr", 12_000_000, 1500, start_ns=2 * SEC)  # 1000 packets/s
    e.run_until(5 * SEC)
    assert e.counters(lt).dropped_packets == lost
    conserved(e, lt)

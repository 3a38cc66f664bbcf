"""The `bw` cell in virtual time, against analytic answers: its rate, its drops, its queue's delay."""
from __future__ import annotations

import pytest

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain, conserved


def test_bw_delivers_its_rate_and_drops_only_when_full():
    e = Engine(1)
    bw = cell(e, "bw", rate=10_000_000, queue={"kind": "droptail", "packets": 100})
    left, right = chain(e, bw)
    f = e.add_flow(left, right, "cbr", 20_000_000, 1500)
    # 100 packets of backlog build up at (20-10) Mbit/s: 100 * 1500 B * 8 / 10 Mbit/s = 120 ms
    e.run_until(110_000_000)
    assert e.counters(bw).dropped_packets == 0
    e.run_until(10 * SEC)
    got = e.flow_stats(f)["received_bytes"] * 8 / 10
    assert got == pytest.approx(10_000_000, rel=0.005)
    c = e.counters(bw)
    assert set(c.dropped_by_reason) == {"queue_full"}
    assert c.queued_packets == 101  # 100 waiting (the limit) + the one being sent, as upstream counts
    conserved(e, bw)


def test_infinite_queue_delay_grows_at_the_predicted_slope():
    e = Engine(1)
    bw = cell(e, "bw", rate=10_000_000)
    left, right = chain(e, bw)
    f = e.add_flow(left, right, "cbr", 15_000_000, 1500, samples=True)
    e.run_until(4 * SEC)
    delays = e.flow_delays(f)
    # packet n is sent at n*T_in and leaves at (n+1)*T_out: delay grows by T_out - T_in per packet,
    # i.e. by (15/10 - 1) = 0.5 s per second of sending time
    t_in = 1500 * 8 / 15e6
    n = len(delays)
    slope = (delays[-1] - delays[n // 2]) / 1e9 / ((n - 1 - n // 2) * t_in)
    assert slope == pytest.approx(0.5, rel=0.01)
    conserved(e, bw)

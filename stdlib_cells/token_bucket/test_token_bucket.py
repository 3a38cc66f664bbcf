"""The `token_bucket` cell in virtual time: a policer's rate and burst, a shaper's wait instead of drops."""
from __future__ import annotations

import pytest

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain, conserved


def test_policer_holds_its_rate_and_lets_a_burst_through():
    e = Engine(1)
    tb = cell(e, "token_bucket", rate=2_000_000, burst=64 * 1024)
    left, right = chain(e, tb)
    f = e.add_flow(left, right, "cbr", 10_000_000, 1000)
    e.run_until(100_000)  # 100 us: the first packets pass on the full bucket
    e.run_until(20 * SEC)
    got = e.flow_stats(f)["received_bytes"] * 8
    # long run: rate * time + the initial bucket
    assert got == pytest.approx(2_000_000 * 20 + 64 * 1024 * 8, rel=0.005)
    c = e.counters(tb)
    assert set(c.dropped_by_reason) == {"policer"} and c.queued_packets == 0
    conserved(e, tb)


def test_burst_sized_burst_passes_at_once():
    e = Engine(1)
    tb = cell(e, "token_bucket", rate=1_000_000, burst=15_000)
    left, right = chain(e, tb)
    f = e.add_flow(left, right, "cbr", 1_000_000_000, 1500)  # 10 packets arrive within 120 us
    e.run_until(120_000)
    assert e.flow_stats(f)["received_packets"] == 10
    assert e.flow_delay(f).max_ns == 0


def test_shaper_delays_instead_of_dropping():
    e = Engine(1)
    tb = cell(e, "token_bucket", rate=2_000_000, burst=3000, limit=10_000_000)
    left, right = chain(e, tb)
    f = e.add_flow(left, right, "cbr", 3_000_000, 1500)
    e.run_until(10 * SEC)
    c = e.counters(tb)
    assert c.dropped_packets == 0 and c.queued_packets > 0
    assert e.flow_stats(f)["received_bytes"] * 8 == pytest.approx(2_000_000 * 10, rel=0.01)
    assert e.flow_delay(f).max_ns > 1_000_000_000  # waiting, not dropped
    conserved(e, tb)


def test_unlimited_limit_shapes_with_a_queue_that_never_fills():
    """`limit = unlimited` (upstream's TokenBucket without `limit`): 3 Mbit/s into 2 for 10 s queues the
    excess, about 1.25 MB, and drops nothing; a 64 KiB queue in its place drops."""
    from tests.engine.cells import plan_of
    plan = plan_of("channel c { left -> token_bucket { rate = 2Mbps, burst = 3000B, limit = unlimited } -> right }")
    assert plan["channels"][0]["cells"][0]["config"]["limit"] == "unlimited"
    for limit in ("unlimited", 64 * 1024):
        e = Engine(1)
        tb = cell(e, "token_bucket", rate=2_000_000, burst=3000, limit=limit)
        left, right = chain(e, tb)
        f = e.add_flow(left, right, "cbr", 3_000_000, 1500)
        e.run_until(10 * SEC)
        c = e.counters(tb)
        assert e.flow_stats(f)["received_bytes"] * 8 == pytest.approx(2_000_000 * 10, rel=0.01)
        if limit == "unlimited":
            assert c.dropped_packets == 0
            assert c.queued_bytes == pytest.approx(1_000_000 * 10 / 8, rel=0.01)
        else:
            assert c.dropped_by_reason.keys() == {"queue_full"} and c.queued_bytes <= limit
        conserved(e, tb)

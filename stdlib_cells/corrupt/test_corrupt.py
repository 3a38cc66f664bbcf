"""The `corrupt` cell in virtual time, where packets have no payload: it counts the packets it damages
(`modified`), drops none and delays none, and a run-time change of `rate` applies from its instant."""
from __future__ import annotations

import pytest

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain, conserved


def test_corrupt_modifies_its_rate_of_packets_and_delivers_every_one():
    e = Engine(4)
    c = cell(e, "corrupt", rate=0.1)
    left, right = chain(e, c)
    f = e.add_flow(left, right, "cbr", 120_000_000, 1500)  # 10k packets/s
    e.set(c, "rate", 0.0, at_ns=10 * SEC)
    e.run_until(10 * SEC - 1)
    k = e.counters(c)
    assert k.in_packets == 100_000
    # binomial(100k, 0.1): a deviation of 0.001, so 0.004 is four of them
    assert k.modified_packets / k.in_packets == pytest.approx(0.1, abs=0.004)
    modified = k.modified_packets
    e.run_until(20 * SEC - 1)
    k, s = e.counters(c), e.flow_stats(f)
    assert k.modified_packets == modified and k.in_packets == 200_000  # rate 0 from 10 s on
    assert k.dropped_packets == 0 and s["received_packets"] == s["sent_packets"] == 200_000
    assert e.flow_delay(f).max_ns == 0  # damaged or not, a packet leaves when it arrives
    conserved(e, c)

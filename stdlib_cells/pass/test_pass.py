"""The `pass` cell in virtual time: a join point that forwards every packet of every input, unchanged and at once."""
from __future__ import annotations

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, conserved


def test_pass_joins_its_inputs_and_forwards_every_packet_at_once():
    e = Engine(1)
    a, b, right = e.add_endpoint(), e.add_endpoint(), e.add_endpoint()
    p = cell(e, "pass")
    e.link(a, 0, p)
    e.link(b, 0, p)
    e.link(p, 0, right)
    f = e.add_flow(a, right, "cbr", 1_000_000, 500)  # 250 packets/s
    g = e.add_flow(b, right, "poisson", 2_000_000, 500)  # 500 packets/s on average
    e.run_until(SEC - 1)
    sf, sg = e.flow_stats(f), e.flow_stats(g)
    assert sf["sent_packets"] == 250 and sg["sent_packets"] > 400
    assert (sf["received_packets"], sg["received_packets"]) == (sf["sent_packets"], sg["sent_packets"])
    assert e.flow_delay(f).max_ns == e.flow_delay(g).max_ns == 0
    k = e.counters(p)
    assert k.in_packets == k.out_packets == sf["sent_packets"] + sg["sent_packets"]
    assert (k.dropped_packets, k.queued_packets, k.modified_packets) == (0, 0, 0)
    conserved(e, p)

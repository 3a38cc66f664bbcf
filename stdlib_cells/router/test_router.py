"""The `router` cell in virtual time: longest-prefix match, each flow at its own endpoint, misdelivery,
and the multipath example's routes back by destination."""
from __future__ import annotations

import pytest

from rattan.compiler import compile_path
from rattan.engine import Engine
from rattan.engine.load import endpoint_addr
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.sim import run

from tests.conftest import ROOT
from tests.engine.cells import SEC, cell, conserved, route


def test_router_longest_prefix_match():
    e = Engine(1)
    a, b, c = e.add_endpoint(), e.add_endpoint(), e.add_endpoint()
    for i, n in enumerate((a, b, c)):
        e.set_endpoint_addr(n, endpoint_addr(i))
    r = cell(e, "router", outputs=2, routes=[route(endpoint_addr(1) & 0xFFFF0000, 16, 1), route(endpoint_addr(1), 32, 0)])
    e.link(a, 0, r)
    e.link(r, 0, b)
    e.link(r, 1, c)
    f = e.add_flow(a, b, "cbr", 1_000_000, 500)
    g = e.add_flow(a, c, "cbr", 2_000_000, 500)  # 10.0.3.2 matches the /16 only
    e.run_until(SEC - 1)  # the packets sent in [0, 1 s)
    sf, sg = e.flow_stats(f), e.flow_stats(g)
    assert sf["sent_packets"] == 250 and sg["sent_packets"] == 500
    assert sf["received_packets"] == sf["sent_packets"] and sg["received_packets"] == sg["sent_packets"]
    assert sf["misdelivered_packets"] == sg["misdelivered_packets"] == 0
    # each endpoint got exactly its own flow's packets
    assert (e.counters(b).out_packets, e.counters(c).out_packets) == (250, 500)
    conserved(e, r)


def _three_way_router(routes_to: list[int]):
    """src -> router -> three endpoints; the route for endpoint i's address leads to port routes_to[i].
    A flow to each endpoint, at 1, 2 and 3 Mbit/s, so that each endpoint's count is its own."""
    e = Engine(1)
    src = e.add_endpoint()
    e.set_endpoint_addr(src, endpoint_addr(0))
    dsts = [e.add_endpoint() for _ in range(3)]
    for i, n in enumerate(dsts):
        e.set_endpoint_addr(n, endpoint_addr(i + 1))
    r = cell(e, "router", outputs=3, routes=[route(endpoint_addr(i + 1), 32, port) for i, port in enumerate(routes_to)])
    e.link(src, 0, r)
    for port, n in enumerate(dsts):
        e.link(r, port, n)
    flows = [e.add_flow(src, n, "cbr", (i + 1) * 1_000_000, 500) for i, n in enumerate(dsts)]
    e.run_until(SEC - 1)  # the packets sent in [0, 1 s)
    conserved(e, r)
    return e, dsts, [e.flow_stats(f) for f in flows]


def test_router_delivers_each_flow_at_its_own_endpoint_only():
    e, dsts, stats = _three_way_router([0, 1, 2])
    assert [s["sent_packets"] for s in stats] == [250, 500, 750]
    assert [e.counters(n).out_packets for n in dsts] == [250, 500, 750]  # per endpoint: its flow, nothing else
    assert [s["received_packets"] for s in stats] == [250, 500, 750]
    assert [s["misdelivered_packets"] for s in stats] == [0, 0, 0]


def test_a_packet_at_the_wrong_endpoint_is_misdelivered_not_received():
    e, dsts, stats = _three_way_router([1, 0, 2])  # the first two endpoints' routes are swapped
    assert [e.counters(n).out_packets for n in dsts] == [500, 250, 750]
    assert [s["received_packets"] for s in stats] == [0, 0, 750]
    assert [s["misdelivered_packets"] for s in stats] == [250, 500, 0]
    assert [s["misdelivered_bytes"] for s in stats] == [250 * 500, 500 * 500, 0]


def test_multipath_example_routes_back_by_destination():
    comp = compile_path(str(ROOT / "examples" / "multipath.rtn"))
    plan = build_plan(comp.program, comp.sources, default_registry())
    r = run(plan, None, ["server->wifi:cbr:5Mbps", "server->wired:cbr:5Mbps", "wifi->server:cbr:20Mbps",
                         "wired->server:cbr:20Mbps"], "10s", 1)
    flows = {(f["src"], f["dst"]): f for f in r["flows"]}
    assert flows[("server", "wifi")]["throughput_bps"] == pytest.approx(5e6, rel=0.01)
    assert flows[("server", "wired")]["throughput_bps"] == pytest.approx(5e6, rel=0.01)
    # both uplinks share the 30 Mbit/s bottleneck
    up = flows[("wifi", "server")]["throughput_bps"] + flows[("wired", "server")]["throughput_bps"]
    assert up == pytest.approx(30e6, rel=0.01)
    assert r["cells"]["back"]["dropped_packets"] == 0

"""The `router` cell in virtual time: longest-prefix match, each flow at its own endpoint, misdelivery,
and the multipath example's routes back by destination."""
from __future__ import annotations

import pytest

from rattan.compiler import compile_path
from rattan.engine import Engine, EngineError
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


def _drop_route_hole(routes):
    """src -> router -> b and c; flows to b (10.0.2.2) and c (10.0.3.2) at 1 and 2 Mbit/s; the router's
    output 0 feeds b, output 1 feeds c."""
    e = Engine(1)
    src, b, c = e.add_endpoint(), e.add_endpoint(), e.add_endpoint()
    for i, n in enumerate((src, b, c)):
        e.set_endpoint_addr(n, endpoint_addr(i))
    r = cell(e, "router", outputs=2, routes=routes)
    e.link(src, 0, r)
    e.link(r, 0, b)
    e.link(r, 1, c)
    fb, fc = e.add_flow(src, b, "cbr", 1_000_000, 500), e.add_flow(src, c, "cbr", 2_000_000, 500)
    e.run_until(SEC - 1)
    conserved(e, r)
    return e, r, e.flow_stats(fb), e.flow_stats(fc)


def test_a_route_without_port_drops_what_it_matches_and_carves_a_hole_in_a_wider_route():
    wide = route(endpoint_addr(0) & 0xFFFF0000, 16, 0)                # 10.0.0.0/16 -> b
    hole = {"kind": "route", "prefix": "10.0.3.0/24"}                  # c's /24: dropped
    for routes in ([wide, hole], [hole, wide]):                       # longest prefix wins in either order
        e, r, sb, sc = _drop_route_hole(routes)
        assert sb["received_packets"] == sb["sent_packets"] == 250
        assert sc["sent_packets"] == 500 and sc["received_packets"] == sc["misdelivered_packets"] == 0
        assert e.counters(r).dropped_by_reason == {"drop_route": 500}


def test_a_wider_drop_route_loses_to_a_longer_route():
    e, r, sb, sc = _drop_route_hole([{"kind": "route", "prefix": "10.0.0.0/8"}, route(endpoint_addr(2), 32, 1)])
    assert sc["received_packets"] == 500 and sb["received_packets"] == 0
    assert e.counters(r).dropped_by_reason == {"drop_route": 250}


def test_packets_matching_no_route_go_to_default_or_are_dropped_as_no_route():
    e, r, sb, sc = _drop_route_hole([route(endpoint_addr(1), 32, 0)])
    assert sb["received_packets"] == 250 and sc["received_packets"] == 0
    assert e.counters(r).dropped_by_reason == {"no_route": 500}
    e, r, sb, sc = _drop_route_hole([route(endpoint_addr(1), 32, 0), {"kind": "route", "prefix": "11.0.0.0/8"}])
    assert e.counters(r).dropped_by_reason == {"no_route": 500}  # a drop route elsewhere changes nothing


def test_drop_routes_in_rtn_under_rattan_sim():
    from tests.engine.cells import plan_of
    plan = plan_of("""channel c {
    endpoints a, b, z
    cell r: router { routes = [route { prefix = "10.0.0.0/16", port = 0 }, route { prefix = b }], default = 1 }
    a -> r
    r[0] -> z
    r[1] -> z
    b -> a
    z -> a
}
""")
    cells = {c["name"]: c for c in plan["channels"][0]["cells"]}
    assert cells["r"]["outputs"] == 2
    res = run(plan, None, ["a->b:cbr:1Mbps", "a->z:cbr:2Mbps"], "2s", 1)
    flows = {(f["src"], f["dst"]): f for f in res["flows"]}
    assert flows[("a", "z")]["throughput_bps"] == pytest.approx(2e6, rel=0.02)
    assert flows[("a", "b")]["throughput_bps"] == 0
    assert set(res["cells"]["r"]["dropped_by_reason"]) == {"drop_route"}


@pytest.mark.parametrize("second", ["10.0.0.0/8", "10.1.2.3/8"])
def test_two_routes_with_the_same_prefix_are_refused_by_the_engine(second):
    e = Engine(1)
    with pytest.raises(EngineError, match=r"routes\[1\]\.prefix.*same prefix as routes\[0\]"):
        e.add_cell("router", {"routes": [{"kind": "route", "prefix": "10.0.0.0/8", "port": 0},
                                         {"kind": "route", "prefix": second}],
                              "default": "drop", "only_ipv4": False}, 1)


def test_two_routes_with_the_same_prefix_are_refused_in_rtn():
    from rattan.compiler import compile_text
    text = """channel c {
    endpoints a, b
    cell r: router { routes = [route { prefix = "10.0.0.0/8", port = 0 }, route { prefix = b, port = 0 },
                               route { prefix = "10.9.9.9/8" }] }
    a -> r
    r[0] -> b
    b -> a
}
"""
    diags = [d for d in compile_text(text).diagnostics if d.severity == "error"]
    assert [d.code for d in diags] == ["RTN025"]
    assert "`10.0.0.0/8` and `10.9.9.9/8` are both `10.0.0.0/8`" in diags[0].message
    assert text[diags[0].span.start:diags[0].span.end].startswith('route { prefix = "10.9.9.9/8"')
    ok = text.replace('"10.9.9.9/8"', '"10.9.0.0/16"')
    assert not [d for d in compile_text(ok).diagnostics if d.severity == "error"]


def _netns_why_not() -> str | None:
    import os
    import shutil
    import subprocess
    if os.geteuid() != 0:
        return "needs root for a network namespace and raw sockets"
    if shutil.which("ip") is None:
        return "needs `ip`"
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        return "network namespaces are not available here"
    return None


_SEND = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for frame in sys.argv[2:]:
    s.send(bytes.fromhex(frame))
"""


def _frames() -> dict[str, list[bytes]]:
    """Ethernet frames of each kind, from vb's side: IPv4 to 10.1.1.1, ARP requests for 10.2.2.2 (and
    one for 192.168.0.9), IPv6, and an experimental EtherType."""
    import struct
    dst, src = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    ip = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 9, 9, 9, 10, 1, 1, 1]) + bytes(8)
    def arp(target):
        return (b"\xff" * 6 + src + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + bytes([10, 9, 9, 9])
                + bytes(6) + bytes(target))
    ipv6 = dst + src + b"\x86\xdd" + bytes([0x60, 0, 0, 0, 0, 8, 17, 64]) + bytes(32) + bytes(8)
    return {"ipv4": [dst + src + b"\x08\x00" + ip] * 5, "arp": [arp([10, 2, 2, 2])] * 4,
            "arp_other": [arp([192, 168, 0, 9])], "ipv6": [ipv6] * 3,
            "other": [dst + src + b"\x88\xb5" + bytes(46)] * 2}


@pytest.mark.netns
@pytest.mark.parametrize("only_ipv4", [False, True])
def test_real_frames_non_ipv4_are_dropped_with_only_ipv4_and_arp_goes_by_its_target(only_ipv4):
    """Frames injected on a veth pair in a namespace of this test's own: the endpoint's interface is
    va, the frames come from vb. Routes 10.0.0.0/8 -> 0, default -> 1."""
    import os
    import subprocess
    import sys
    import time
    why = _netns_why_not()
    if why:
        pytest.skip(why)
    ns = f"rtn-cells-{os.getpid()}-{int(only_ipv4)}"
    ip = ["ip", "-n", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for key in ("all", "default"):  # no IPv6 chatter (router solicitations, MLD) on the pair
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1"],
                           check=True)
        subprocess.run(ip + ["link", "add", "va", "type", "veth", "peer", "name", "vb"], check=True)
        for dev in ("va", "vb"):
            subprocess.run(ip + ["link", "set", dev, "up"], check=True)
        e = Engine(1)
        a, z0, z1 = e.add_endpoint(), e.add_endpoint(), e.add_endpoint()
        e.attach(a, f"/run/netns/{ns}", "va")
        r = e.add_cell("router", {"routes": [route(0x0A000000, 8, 0)], "default": 1, "only_ipv4": only_ipv4}, 2)
        e.link(a, 0, r)
        e.link(r, 0, z0)
        e.link(r, 1, z1)
        e.start(60 * SEC, "real")
        try:
            frames = _frames()
            subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _SEND, "vb",
                            *[f.hex() for fs in frames.values() for f in fs]], check=True, timeout=30)
            deadline = time.monotonic() + 10
            while e.counters(r).in_packets < 15 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            e.stop()
        c = e.counters(r)
        assert c.in_packets == 15
        if only_ipv4:  # upstream's router: everything that is not IPv4 is dropped
            assert c.dropped_by_reason == {"not_ipv4": 10}
            assert (e.counters(z0).delivered_packets, e.counters(z1).delivered_packets) == (5, 0)
        else:  # ARP by its target (10.2.2.2 is in 10/8; 192.168.0.9 is not), the rest to default
            assert c.dropped_packets == 0
            assert (e.counters(z0).delivered_packets, e.counters(z1).delivered_packets) == (5 + 4, 1 + 3 + 2)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_a_drop_route_for_an_endpoint_blocks_the_replies_to_it_rtn049():
    from rattan.compiler import compile_text
    text = """channel c {
    endpoints a, b
    cell back: router { routes = [route { prefix = a }, route { prefix = "10.0.0.0/8", port = 0 }] }
    a -> b
    b -> back
    back[0] -> a
}
"""
    codes = [d.code for d in compile_text(text).diagnostics]
    assert codes == ["RTN049"]  # the endpoint's own (host) route is the longest: it drops
    assert [d.code for d in compile_text(text.replace("prefix = a }", "prefix = a, port = 0 }")).diagnostics] == []

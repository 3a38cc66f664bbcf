"""The `bw_trace` cell in virtual time: Mahimahi traces byte for byte, and netem-trace bandwidth models."""
from __future__ import annotations

import pytest

from rattan.compiler import compile_path
from rattan.engine import Engine
from rattan.engine.load import load_channel
from rattan.plan import build_plan
from rattan.registry import default_registry

from tests.conftest import ROOT
from tests.engine.cells import SEC, cell, chain, plan_of

MS = 10**6


def test_bw_trace_delivers_what_the_trace_allows():
    comp = compile_path(str(ROOT / "examples" / "policer.rtn"))
    plan = build_plan(comp.program, comp.sources, default_registry())
    tr = next(c for c in plan["channels"][0]["cells"] if c["type"] == "bw_trace")["trace"]
    e = Engine(1)
    b = cell(e, "bw_trace", trace=tr)
    left, right = chain(e, b)
    f = e.add_flow(left, right, "cbr", 200_000_000, 1500)  # far above the trace's rate: always backlogged
    period = tr["period_ns"]
    e.run_until(period)
    allowed = sum(1 for t in tr["opportunities_ns"] if t <= period) * 1500
    got = e.flow_stats(f)["received_bytes"]
    assert got == pytest.approx(allowed, rel=0.01)


@pytest.mark.parametrize("size, overhead", [(1500, 0), (1500, 38), (1000, 0), (1000, 38), (3000, 0), (64, 0)])
def test_bw_trace_counts_bytes_exactly_across_opportunities(size, overhead):
    """One opportunity per ms (1500 bytes): any packet size and overhead gets 1500 bytes per ms of
    (size + overhead), packets spilling over opportunities as in Mahimahi."""
    e = Engine(1)
    b = cell(e, "bw_trace", trace={"format": "mahimahi", "opportunities_ns": [MS], "period_ns": MS, "mtu_bytes": 1500},
             overhead=overhead)
    left, right = chain(e, b)
    f = e.add_flow(left, right, "cbr", 30_000_000, size)  # 2.5x the trace: always backlogged
    e.run_until(2 * SEC)
    carried = e.flow_stats(f)["received_packets"] * (size + overhead)
    assert carried == pytest.approx(2000 * 1500, abs=size + overhead)


def test_netem_bandwidth_model_changes_the_rate_at_each_segment(tmp_path):
    model = tmp_path / "m.json"  # 10 Mbit/s for 1 s, then 2 Mbit/s for 1 s, repeated forever (count 0)
    model.write_text('{"RepeatedBwPatternConfig": {"count": 0, "pattern": ['
                     '{"StaticBwConfig": {"bw": "10Mbps", "duration": "1s"}}, '
                     '{"StaticBwConfig": {"bw": "2Mbps", "duration": "1s"}}]}}')
    channel = plan_of(f'channel c {{\n    cell link: bw_trace {{ trace = "{model}" }}\n    left -> link -> right\n}}\n')["channels"][0]
    assert channel["cells"][0]["trace"]["segments"] == [[SEC, 10_000_000], [SEC, 2_000_000]]
    e = Engine(1)
    nodes = load_channel(e, channel)
    f = e.add_flow(nodes["left"], nodes["right"], "cbr", 20_000_000, 1500)
    e.run_until(4 * SEC)
    got = e.flow_stats(f)["received_bytes"] * 8
    assert got == pytest.approx(2 * (10_000_000 + 2_000_000), rel=0.002)
    # the model repeats forever: the engine steps the rate itself, with no run length to plan for
    e = Engine(1)
    nodes = load_channel(e, channel)
    f = e.add_flow(nodes["left"], nodes["right"], "cbr", 20_000_000, 1500)
    e.run_until(10 * SEC)
    assert e.flow_stats(f)["received_bytes"] * 8 == pytest.approx(5 * (10_000_000 + 2_000_000), rel=0.002)


@pytest.mark.parametrize("start", ["run", "first_packet"])
def test_bw_trace_can_start_at_the_first_packet(start):
    # one opportunity, at 500 ms, not looping; the only packet is sent 2 s into the run
    e = Engine(1)
    b = cell(e, "bw_trace", trace={"format": "mahimahi", "opportunities_ns": [500 * MS], "period_ns": 500 * MS,
                                   "mtu_bytes": 1500}, loop=False, start=start)
    left, right = chain(e, b)
    e.add_flow(left, right, "cbr", 12_000, 1500, start_ns=2 * SEC)  # one packet a second
    e.run_until(2 * SEC + 600 * MS)
    c = e.counters(b)
    if start == "run":
        assert c.out_packets == 0 and c.queued_packets == 1   # the trace ended before it came
    else:
        assert c.out_packets == 1 and c.first_out_ns == 2 * SEC + 500 * MS


def test_bw_trace_model_can_start_at_the_first_packet():
    # a netem-trace model: nothing for a second, then 12 Mbit/s
    def first_out(start):
        e = Engine(1)
        b = cell(e, "bw_trace", trace={"format": "segments", "segments": [[SEC, 0], [SEC, 12_000_000]], "repeat": 1},
                 loop=False, start=start)
        left, right = chain(e, b)
        e.add_flow(left, right, "cbr", 12_000, 1500, start_ns=2 * SEC)
        e.run_until(4 * SEC)
        return e.counters(b).first_out_ns
    assert first_out("run") == 2 * SEC + MS
    assert first_out("first_packet") == 3 * SEC + MS

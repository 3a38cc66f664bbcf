"""The C engine in virtual time, against analytic answers: a chain's delay and serialization, seeds, and the
counters of endpoints and cells. (Each cell's own behaviour is tested in its folder, stdlib_cells/<type>/.)"""
from __future__ import annotations

import json

import pytest

from rattan.engine import Engine
from rattan.runtime.sim import run

# chain and conserved are also imported from here by tests elsewhere (tests/control)
from tests.engine.cells import cell, chain, conserved, plan_of


def test_delay_p50_is_delay_plus_serialization():
    plan = plan_of('channel c {\n    endpoints left, right\n    cell b: bw { rate = 100Mbps }\n    cell d: delay { delay = 20ms }\n    left -> b -> d -> right\n}\n')
    r = run(plan, None, ["left->right:cbr:10Mbps"], "2s", 1)
    # 1500 B at 100 Mbit/s = 0.12 ms serialization
    assert r["flows"][0]["delay_ms"]["p50"] == pytest.approx(20.12, abs=1e-6)


def test_same_seed_same_result_other_seed_differs():
    plan = plan_of('channel c {\n    endpoints left, right\n    cell l: loss { rate = 5% }\n    cell d: delay { delay = 1ms, jitter = 500us, distribution = normal }\n    left -> l -> d -> right\n}\n')
    a = json.dumps(run(plan, None, ["left->right:poisson:10Mbps"], "5s", 42))
    b = json.dumps(run(plan, None, ["left->right:poisson:10Mbps"], "5s", 42))
    c = json.dumps(run(plan, None, ["left->right:poisson:10Mbps"], "5s", 43))
    assert a == b
    assert a != c


def test_endpoints_count_deliveries_and_cells_their_first_and_last_departure():
    # a CBR flow of 1250 B every 2 ms (5 Mbit/s) through bw 10 Mbit/s (1 ms a packet) and 5 ms of
    # delay, run to 1 s inclusive: packet k is sent at 2k ms (k = 0..500), leaves bw at 2k + 1 ms
    # (k = 0..499) and reaches `right` at 2k + 6 ms (k = 0..497)
    ms = 1_000_000
    e = Engine(1)
    bw, delay = cell(e, "bw", rate=10_000_000), cell(e, "delay", delay=5 * ms)
    left, right = chain(e, bw, delay)
    f = e.add_flow(left, right, "cbr", 5_000_000, 1250)
    e.run_until(1000 * ms)
    src, dst, b, d = (e.counters(n) for n in (left, right, bw, delay))
    assert (dst.delivered_packets, dst.delivered_bytes) == (498, 498 * 1250)
    assert dst.delivered_packets == e.flow_stats(f)["received_packets"]
    assert (src.delivered_packets, b.delivered_packets, d.delivered_packets) == (0, 0, 0)
    # the older counters keep their meaning: an endpoint's out is what it sent and was delivered
    assert (src.out_packets, dst.out_packets) == (501, 498)
    assert (b.first_out_ns, b.last_out_ns, b.busy_ns) == (1 * ms, 999 * ms, 998 * ms)
    assert (d.first_out_ns, d.last_out_ns) == (6 * ms, 1000 * ms)
    assert (src.first_out_ns, src.last_out_ns) == (0, 1000 * ms)  # a first departure at time 0 counts
    assert (dst.first_out_ns, dst.last_out_ns, dst.busy_ns) == (None, None, 0)  # delivered, never sent
    conserved(e, left, right, bw, delay)

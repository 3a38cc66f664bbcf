"""The C engine in virtual time, against analytic answers."""
from __future__ import annotations

import json
import statistics

import pytest

from rattan.engine import Engine
from rattan.runtime.sim import run
from tests.engine.cells import cell, plan_of, route, steps

SEC = 10**9


def chain(engine: Engine, *cells: int):
    """left -> cells... -> right; returns (left, right)."""
    left, right = engine.add_endpoint(), engine.add_endpoint()
    prev = left
    for c in cells:
        engine.link(prev, 0, c)
        prev = c
    engine.link(prev, 0, right)
    return left, right


def conserved(engine: Engine, *nodes: int) -> None:
    for n in nodes:
        c = engine.counters(n)
        assert c.in_packets + c.created_packets == c.out_packets + c.dropped_packets + c.queued_packets, (n, c)
        assert c.in_bytes + c.created_bytes == c.out_bytes + c.dropped_bytes + c.queued_bytes, (n, c)


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
    assert c.queued_packets == 100
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


def test_delay_p50_is_delay_plus_serialization():
    plan = plan_of('channel c {\n    endpoints left, right\n    cell b: bw { rate = 100Mbps }\n    cell d: delay { delay = 20ms }\n    left -> b -> d -> right\n}\n')
    r = run(plan, None, ["left->right:cbr:10Mbps"], "2s", 1)
    # 1500 B at 100 Mbit/s = 0.12 ms serialization
    assert r["flows"][0]["delay_ms"]["p50"] == pytest.approx(20.12, abs=1e-6)


@pytest.mark.parametrize("dist, sd_tolerance", [("uniform", 0.02), ("normal", 0.02), ("paretonormal", 0.02),
                                               # shape-3 Pareto has an infinite fourth moment: its sample
                                               # deviation converges slowly, so 100k draws give ~5 %
                                               ("pareto", 0.06)])
def test_jitter_matches_its_configured_mean_and_deviation(dist, sd_tolerance):
    e = Engine(7)
    d = cell(e, "delay", delay=50_000_000, jitter=5_000_000, distribution=dist, reorder=True)
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 12_000_000, 1500, samples=True)  # 1 packet per ms
    e.run_until(100 * SEC + 100_000_000)
    x = [v / 1e6 for v in e.flow_delays(f)]
    assert len(x) >= 100_000
    assert statistics.fmean(x) == pytest.approx(50.0, rel=0.02)
    sd = 5.0 / 3 ** 0.5 if dist == "uniform" else 5.0  # uniform on [-j, j] has deviation j/sqrt(3)
    assert statistics.pstdev(x) == pytest.approx(sd, rel=sd_tolerance)


def test_without_reorder_packets_keep_their_order():
    e = Engine(3)
    d = cell(e, "delay", delay=10_000_000, jitter=8_000_000, distribution="normal")
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 12_000_000, 1500, samples=True)
    e.run_until(20 * SEC)
    delays = e.flow_delays(f)
    period = 1_000_000  # 1500 B at 12 Mbit/s
    departures = [i * period + dly for i, dly in enumerate(delays)]
    assert all(a <= b for a, b in zip(departures, departures[1:]))


def test_bernoulli_loss_rate():
    e = Engine(11)
    loss = cell(e, "loss", rate=0.01)
    left, right = chain(e, loss)
    f = e.add_flow(left, right, "cbr", 1_200_000_000, 1500)  # 100k packets per second
    e.run_until(10 * SEC)
    s = e.flow_stats(f)
    assert s["sent_packets"] >= 1_000_000
    lost = 1 - s["received_packets"] / s["sent_packets"]
    assert abs(lost - 0.01) < 0.0005
    conserved(e, loss)


def _ge_run(p, r, h=1.0, k=0.0, seconds=10, seed=5, samples=False):
    e = Engine(seed)
    loss = cell(e, "loss", model={"kind": "gilbert_elliott", "p": p, "r": r, "h": h, "k": k})
    left, right = chain(e, loss)
    f = e.add_flow(left, right, "cbr", 1_200_000_000, 1500, samples=samples)  # 100k packets per second
    e.run_until(seconds * SEC)
    conserved(e, loss)
    return e, f


def test_gilbert_elliott_stationary_loss():
    p, r, h, k = 0.01, 0.25, 0.9, 0.001
    e, f = _ge_run(p, r, h, k)
    s = e.flow_stats(f)
    lost = 1 - s["received_packets"] / s["sent_packets"]
    bad = p / (p + r)  # stationary probability of the Bad state
    assert lost == pytest.approx(bad * h + (1 - bad) * k, rel=0.03)


def test_gilbert_elliott_mean_burst_length():
    p, r = 0.02, 0.2
    e, f = _ge_run(p, r, samples=True)
    _, seqs = e.flow_samples(f)
    bursts = [b - a - 1 for a, b in zip(seqs, seqs[1:]) if b - a > 1]
    assert len(bursts) > 10_000
    # with h = 1, k = 0 a burst lasts as long as the Bad state: geometric with mean 1/r
    assert statistics.fmean(bursts) == pytest.approx(1 / r, rel=0.03)


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

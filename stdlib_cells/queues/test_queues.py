"""The queue kinds of `bw` and `bw_trace` in virtual time: PIE, CoDel and RED under overload, the
limits (zero, unlimited, with overhead) and upstream Rattan's parameters of each algorithm."""
from __future__ import annotations

import pytest

from rattan.engine import Engine
from rattan.runtime.sim import run

from tests.engine.cells import SEC, cell, chain, conserved, plan_of

MS = 10**6
CODEL = {"kind": "codel", "target": 5 * MS, "interval": 100 * MS}
PIE = {"kind": "pie", "target": 15 * MS, "tupdate": 15 * MS}
RED = {"kind": "red", "min": 30000, "max": 90000, "probability": 0.1}


def _overload(queue: str, seconds: int = 60) -> dict:
    plan = plan_of(f"channel c {{ endpoints left, right\n cell b: bw {{ rate = 10Mbps, queue = {queue} }}\n"
                   "left -> b -> right }")
    return run(plan, None, ["left->right:poisson:12Mbps"], f"{seconds}s", 1)


def _link(queue: dict, rate_bps: int, seconds: float, *, seed: int = 1, before: tuple = ()):
    """A 10 Mbit/s bw cell with `queue` fed by a CBR flow of 1500-byte packets (one per 1.2 ms sent)."""
    e = Engine(seed)
    b = cell(e, "bw", rate=10_000_000, queue=queue)
    left, right = chain(e, *[cell(e, t, **kw) for t, kw in before], b)
    f = e.add_flow(left, right, "cbr", rate_bps, 1500, samples=True)
    e.run_until(int(seconds * SEC))
    return e, b, f


def test_pie_settles_near_its_target():
    r = _overload("pie { target = 15ms, tupdate = 15ms, packets = 10000 }")
    f = r["flows"][0]
    assert r["cells"]["b"]["dropped_by_reason"].get("aqm", 0) > 0
    assert f["throughput_bps"] == pytest.approx(10e6, rel=0.03)
    # target 15 ms, plus 1.2 ms serialization; upstream's departure rate counts a cycle's 11 packets
    # over 10 gaps, so the delay it sees is 10 % short and the queue settles ~10 % above the target
    assert 15 < f["delay_ms"]["p50"] < 22


@pytest.mark.parametrize("queue", [{"kind": "droptail", "packets": 0}, {"kind": "droptail", "bytes": 0},
                                   {"kind": "drophead", "packets": 0}, {**CODEL, "packets": 0},
                                   {**PIE, "bytes": 0}, {**RED, "packets": 0}])
def test_a_zero_length_queue_passes_a_packet_only_to_an_idle_link(queue):
    # 1 packet per ms into a link that takes 1.2 ms each: the packet arriving while one is being
    # sent is dropped, the next finds the link idle; nothing ever waits (upstream's zero buffer)
    e, b, f = _link(queue, 12_000_000, 10)
    c = e.counters(b)
    assert c.out_packets == 5000 and c.dropped_by_reason == {"queue_full": 5000}
    assert set(e.flow_delays(f)) == {1_200_000}
    conserved(e, b)


def test_limits_count_the_packets_waiting_behind_the_one_being_sent():
    for queue, waiting in [({"kind": "droptail", "packets": 1}, 1), ({"kind": "droptail", "packets": 10}, 10),
                           ({"kind": "droptail", "bytes": 15000}, 10), ({"kind": "drophead", "packets": 10}, 10)]:
        e, b, f = _link(queue, 20_000_000, 2)
        assert e.counters(b).queued_packets == waiting + 1, queue  # and the one on the wire
        assert max(e.flow_delays(f)) <= (waiting + 1) * 1_200_000 + 1_000_000, queue


def test_overhead_counts_against_the_byte_limit():
    e, b, _ = _link({"kind": "droptail", "bytes": 15000, "overhead": 38}, 20_000_000, 2)
    assert e.counters(b).queued_packets == 9 + 1  # 15000 // 1538 packets wait (10 without overhead)


@pytest.mark.parametrize("queue", [CODEL, {**PIE, "max_burst": 10 * SEC}, {**RED, "min": 10**7, "max": 2 * 10**7}])
def test_unlimited_removes_the_hard_limit_of_an_aqm(queue):
    # 3x the link for 2 s: CoDel drops far too little to hold 1000 packets, PIE is within its burst
    # allowance and RED below `min`
    e, b, _ = _link({**queue, "packets": "unlimited"}, 30_000_000, 2)
    c = e.counters(b)
    assert c.queued_packets > 1500 and "queue_full" not in c.dropped_by_reason
    e, b, _ = _link({**queue, "packets": 1000}, 30_000_000, 2)
    assert e.counters(b).queued_packets == 1001 and e.counters(b).dropped_by_reason["queue_full"] > 0


def test_codel_never_drops_while_no_more_than_mtu_bytes_wait():
    e, b, _ = _link({**CODEL, "packets": 500}, 12_000_000, 10)
    assert e.counters(b).dropped_by_reason.get("aqm", 0) > 1000
    e, b, _ = _link({**CODEL, "packets": 500, "mtu": 1_000_000}, 12_000_000, 10)  # 500 packets: 750 kB
    assert e.counters(b).dropped_by_reason.keys() == {"queue_full"}


def test_pie_burst_allowance_and_gains():
    e, b, _ = _link({**PIE, "packets": "unlimited", "max_burst": 0}, 12_000_000, 5)
    assert e.counters(b).dropped_by_reason.get("aqm", 0) > 500
    e, b, _ = _link({**PIE, "packets": "unlimited", "max_burst": 10 * SEC}, 12_000_000, 5)
    assert e.counters(b).dropped_by_reason == {}  # within its burst allowance
    e, b, _ = _link({**PIE, "packets": "unlimited", "alpha": 0, "beta": 0}, 12_000_000, 5)
    assert e.counters(b).dropped_by_reason == {} and e.counters(b).queued_packets > 800  # p never rises


@pytest.mark.parametrize("queue", [{**PIE, "packets": "unlimited"}, {**RED, "packets": "unlimited"}])
def test_a_seeded_aqm_draws_the_same_drops_whatever_the_runs_seed(queue):
    def dropped(engine_seed, q):
        e, _, f = _link(q, 12_000_000, 5, seed=engine_seed)
        return set(range(e.flow_stats(f)["sent_packets"])) - set(e.flow_samples(f)[1])
    assert dropped(1, {**queue, "seed": 7}) == dropped(2, {**queue, "seed": 7})
    assert dropped(1, queue) != dropped(2, queue)  # the cell's generator, from the run's seed


def test_red_weight_one_follows_the_instant_queue():
    # weight 1: the average is the waiting bytes, so with no early drops between 14999 and 15000
    # bytes RED is a 15000-byte tail drop
    e, b, f = _link({**RED, "min": 14999, "max": 15000, "probability": 0, "weight": 1}, 20_000_000, 10)
    e2, b2, f2 = _link({"kind": "droptail", "bytes": 15000}, 20_000_000, 10)
    assert e.counters(b).dropped_by_reason["aqm"] == e2.counters(b2).dropped_by_reason["queue_full"]
    assert e.flow_samples(f) == e2.flow_samples(f2)


def test_adaptive_red_steers_the_average_between_40_and_60_percent():
    # 20 % overload, max_p 2 %: plain RED's average climbs near `max`; ARED raises max_p until the
    # average sits 40-60 % of the way from min to max (54-66 kB: 43-53 ms at 10 Mbit/s)
    def p50_ms(adaptive):
        e, _, f = _link({**RED, "probability": 0.02, "packets": "unlimited", "adaptive": adaptive}, 12_000_000, 30)
        d = sorted(e.flow_delays(f)[len(e.flow_delays(f)) // 2:])
        return d[len(d) // 2] / 1e6
    assert p50_ms(False) > 60
    assert 40 < p50_ms(True) < 56


def test_red_average_decays_over_idle_time_by_packet_time():
    # 1 s on, 1 s off (an outage in front): after each idle second RED's average has decayed
    # (m = idle / packet_time virtual departures) unless packet_time is huge
    def early_drops(packet_time):
        q = {**RED, "packets": "unlimited", **({"packet_time": packet_time} if packet_time else {})}
        e, _, f = _link(q, 20_000_000, 10, before=(("outage", {"up": SEC, "down": SEC}),))
        got = set(e.flow_samples(f)[1])
        early = range(2000 * 5 // 3, 2020 * 5 // 3)  # sent in the first 20 ms of the up period at 2 s
        return sum(1 for k in early if k not in got)
    assert early_drops(1000) <= 2           # 1 us: fully decayed
    assert early_drops(None) <= 2           # from the rate: 1.2 ms per packet, 0.9 s idle
    assert early_drops(1000 * SEC) == 33    # no decay: the average is still above `max`


def test_codel_standing_queue_returns_to_its_target_under_unresponsive_overload():
    # CoDel's standing queue is the minimum sojourn over a window. RFC 8289 (and Linux) ramp the
    # drop rate as sqrt(count) and re-use the last episode's count, so against 20 % unresponsive
    # excess the delay saws in a stable cycle (~4.6 s) between the target and ~130 ms instead of
    # sitting at 5 ms: each window's minimum is at the target, the drops match the excess, and the
    # peak stays far below the tail-drop queue. (A responsive sender would settle.)
    e = Engine(1)
    b = cell(e, "bw", rate=10_000_000, queue={"kind": "codel", "packets": 10_000, "target": 5_000_000, "interval": 100_000_000})
    left, right = chain(e, b)
    f = e.add_flow(left, right, "cbr", 12_000_000, 1500, samples=True)  # 1000 packets/s, one every ms
    e.run_until(10 * SEC)
    aqm_before = e.counters(b).dropped_by_reason.get("aqm", 0)
    got_before = e.flow_stats(f)["received_bytes"]
    e.run_until(60 * SEC)
    delays, seqs = e.flow_samples(f)
    ser = 1_200_000
    windows: dict[int, list[int]] = {}
    for d, s in zip(delays, seqs):
        arrival = s * 1_000_000 + d
        if 10 * SEC <= arrival < 60 * SEC:
            windows.setdefault(arrival // (5 * SEC), []).append(d - ser)
    assert len(windows) == 10
    for w, ds in windows.items():
        assert min(ds) <= 5_000_000 + 1_000_000, w        # the standing queue is back at the target
        assert max(ds) < 200_000_000, w                    # and the peak stays bounded
    rate = (e.flow_stats(f)["received_bytes"] - got_before) * 8 / 50
    assert rate == pytest.approx(10e6, rel=0.01)
    drops = (e.counters(b).dropped_by_reason.get("aqm", 0) - aqm_before) / 50
    assert drops == pytest.approx(1000 / 6, rel=0.03)     # the excess: 2 Mbit/s of 12 kbit packets
    assert "queue_full" not in e.counters(b).dropped_by_reason
    conserved(e, b)


def test_red_drops_early():
    plan = plan_of("channel c { endpoints left, right\n cell b: bw { rate = 10Mbps, queue = red { min = 30000B, "
                   "max = 90000B, probability = 10%, packets = 1000 } }\n left -> b -> right }")
    r = run(plan, None, ["left->right:poisson:12Mbps"], "30s", 1)
    cell = r["cells"]["b"]
    assert cell["dropped_by_reason"].get("aqm", 0) > 0
    assert "queue_full" not in cell["dropped_by_reason"]
    assert r["flows"][0]["delay_ms"]["p50"] < 90_000 * 8 / 10e6 * 1000 + 5  # below the max threshold's delay


@pytest.mark.parametrize("queue, field", [("red { min = 1KB, max = 2KB, weight = 0 }", "weight"),
                                          ("pie { max_burst = -1ms }", "max_burst"),
                                          ("codel { mtu = 10MB, overhead = 70000B }", "overhead")])
def test_a_queue_field_out_of_range_is_reported_at_the_field(queue, field):
    from rattan.compiler import compile_text
    text = f"channel c {{ endpoints l, r\n l -> bw {{ rate = 1Mbps, queue = {queue} }} -> r }}"
    errors = [d for d in compile_text(text).diagnostics if d.severity == "error"]
    assert [(d.code, text[d.span.start:d.span.end].split()[0]) for d in errors][:1] == \
        [("RTN022", text.split(f"{field} = ")[1].split()[0].rstrip("},"))]
    assert f"queue.{field}" in errors[0].message

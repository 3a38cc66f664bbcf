"""The `delay_per_packet` cell in virtual time: segments in order, `count` and `repeat` (0: forever), the
model's end (drops), overtaking, the normal and log-normal draws and their bounds, seeds; and in `.rtn`
under `rattan sim`."""
from __future__ import annotations

import math
import statistics

import pytest

from rattan.engine import Engine
from rattan.registry import default_registry
from rattan.runtime.sim import run

from tests.engine.cells import SEC, cell, chain, conserved, plan_of

MS = 1_000_000


def seg(kind: str, **fields) -> dict:
    """A model segment in plan form, its schema defaults filled in (as the compiler does)."""
    items = default_registry().get("delay_per_packet").properties["model"]["items"]["oneOf"]
    schema = next(b for b in items if b["properties"]["kind"]["const"] == kind)
    out = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    return {"kind": kind, **out, **fields}


def _run(model, repeat=1, seed=42, ms=1, duration=SEC, engine_seed=1):
    """A CBR flow of one 1500 B packet every `ms` ms through the cell for `duration`: (engine, cell,
    flow stats, delays by sequence number, sequence numbers in arrival order)."""
    e = Engine(engine_seed)
    d = cell(e, "delay_per_packet", model=model, repeat=repeat, seed=seed)
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 12_000_000 // ms, 1500, samples=True)
    e.run_until(duration)
    delays, seqs = e.flow_samples(f)
    conserved(e, d)
    by_seq = dict(zip(seqs, delays))
    return e, d, e.flow_stats(f), [by_seq[i] for i in sorted(by_seq)], seqs


def test_segments_play_in_order_repeat_times_then_every_packet_is_dropped():
    e, d, st, delays, order = _run([seg("static", delay=10 * MS, count=3), seg("static", delay=20 * MS, count=2)],
                                   repeat=2, duration=100 * MS - 1)
    assert delays == [x * MS for x in (10, 10, 10, 20, 20, 10, 10, 10, 20, 20)]
    assert st["sent_packets"] == 100 and st["received_packets"] == 10
    assert e.counters(d).dropped_by_reason == {"model_end": 90}
    # they left in order of departure: packets 5 to 7 (sent at 5 to 7 ms, 10 ms) overtook 3 and 4 (20 ms)
    departures = [seq * MS + delays[seq] for seq in order]
    assert departures == sorted(departures) and order == [0, 1, 2, 5, 6, 7, 3, 4, 8, 9]
    assert st["reordered_packets"] > 0


def test_a_segment_with_count_0_never_ends():
    e, d, st, delays, _ = _run([seg("static", delay=5 * MS, count=0), seg("static", delay=50 * MS, count=1)])
    assert st["received_packets"] == st["sent_packets"] - 5 and set(delays) == {5 * MS}
    assert e.counters(d).dropped_packets == 0


def test_repeat_0_plays_the_list_forever():
    e, d, st, delays, _ = _run([seg("static", delay=1 * MS, count=1), seg("static", delay=2 * MS, count=2)],
                               repeat=0)
    assert len(delays) >= 990 and delays[:6] == [MS, 2 * MS, 2 * MS, MS, 2 * MS, 2 * MS]
    assert delays == [(MS if i % 3 == 0 else 2 * MS) for i in range(len(delays))]
    assert e.counters(d).dropped_packets == 0


def test_normal_delays_have_the_mean_and_deviation_and_respect_the_bounds():
    _, _, _, x, _ = _run([seg("normal", mean=10 * MS, std_dev=2 * MS)], ms=1, duration=100 * SEC)
    assert len(x) >= 99_000
    assert statistics.fmean(x) == pytest.approx(10 * MS, rel=0.005)
    assert statistics.pstdev(x) == pytest.approx(2 * MS, rel=0.02)
    _, _, _, y, _ = _run([seg("normal", mean=10 * MS, std_dev=2 * MS, lower_bound=9 * MS, upper_bound=11 * MS)],
                         duration=100 * SEC)
    assert min(y) == 9 * MS and max(y) == 11 * MS
    # clamped, not redrawn: P(N(10, 2) < 9) = P(Z < -0.5) = 30.85 % of the delays sit on the lower bound
    assert y.count(9 * MS) / len(y) == pytest.approx(0.3085, abs=0.01)
    assert y.count(11 * MS) / len(y) == pytest.approx(0.3085, abs=0.01)


def test_a_negative_normal_draw_counts_as_0_and_upper_wins_over_lower():
    _, _, _, x, _ = _run([seg("normal", mean=1 * MS, std_dev=2 * MS)], duration=20 * SEC)
    assert min(x) == 0 and x.count(0) / len(x) == pytest.approx(0.3085, abs=0.02)  # P(Z < -0.5)
    _, _, _, y, _ = _run([seg("normal", mean=10 * MS, std_dev=2 * MS, lower_bound=8 * MS, upper_bound=5 * MS,
                              count=50)])
    assert set(y) == {5 * MS}  # max(lower) then min(upper), as netem-trace clamps


def test_lognormal_delays_have_the_configured_mean_and_deviation_of_the_delays():
    _, _, _, x, _ = _run([seg("lognormal", mean=10 * MS, std_dev=5 * MS)], duration=100 * SEC)
    assert statistics.fmean(x) == pytest.approx(10 * MS, rel=0.01)
    assert statistics.pstdev(x) == pytest.approx(5 * MS, rel=0.03)
    # the underlying normal: sigma^2 = ln(1 + sd^2/mean^2), mu = ln(mean) - sigma^2 / 2 (mean in seconds)
    logs = [math.log(v / 1e9) for v in x]
    sigma = math.sqrt(math.log(1.25))
    assert statistics.pstdev(logs) == pytest.approx(sigma, rel=0.01)
    assert statistics.fmean(logs) == pytest.approx(math.log(0.010) - sigma ** 2 / 2, abs=0.005)
    assert min(x) > 0


def test_seeds_the_same_draws_each_repetition_and_a_segments_own_seed():
    model = [seg("normal", mean=10 * MS, std_dev=3 * MS, count=5)]
    _, _, _, a, _ = _run(model, repeat=3, seed=7, duration=100 * MS)
    _, _, _, b, _ = _run(model, repeat=3, seed=7, duration=100 * MS, engine_seed=99)  # not the engine's seed
    _, _, _, c, _ = _run(model, repeat=3, seed=8, duration=100 * MS)
    assert len(a) == 15 and a == b and a != c
    assert a[0:5] == a[5:10] == a[10:15]  # each repetition starts the segment afresh, as upstream rebuilds it
    assert len(set(a[0:5])) == 5
    _, _, _, own, _ = _run([seg("normal", mean=10 * MS, std_dev=3 * MS, count=5, seed=8)], seed=7, duration=100 * MS)
    assert own == c[:5]
    two = [seg("normal", mean=10 * MS, std_dev=3 * MS, count=5), seg("normal", mean=10 * MS, std_dev=3 * MS, count=5)]
    _, _, _, t, _ = _run(two, seed=7, duration=100 * MS)
    assert t[:5] == t[5:] == a[:5]  # two segments with the same seed draw the same delays


def test_in_rtn_under_rattan_sim():
    plan = plan_of("""channel c {
    left -> delay_per_packet { model = [static { delay = 10ms, count = 1000 },
                                        lognormal { mean = 30ms, std_dev = 5ms, lower_bound = 20ms, count = 1000 }] }
         -> right
    right -> left
}""")
    cfg = plan["channels"][0]["cells"][0]["config"]
    assert cfg["repeat"] == 1 and cfg["seed"] == 42
    assert cfg["model"][1] == {"kind": "lognormal", "mean": 30 * MS, "std_dev": 5 * MS, "lower_bound": 20 * MS,
                               "count": 1000}
    r = run(plan, None, ["left->right:cbr:12Mbps"], "3s", 1)  # one packet per ms: 2000 pass, the rest dropped
    name = plan["channels"][0]["cells"][0]["name"]
    flow = r["flows"][0]
    assert flow["received_packets"] == 2000 and flow["sent_packets"] > 2900
    assert r["cells"][name]["dropped_by_reason"] == {"model_end": flow["sent_packets"] - 2000}


def test_a_lognormal_mean_of_0_is_refused():
    from rattan.compiler import compile_text
    diags = compile_text("channel c { left -> delay_per_packet { model = [lognormal { mean = 0ms }] } -> right }"
                         ).diagnostics
    assert [d.code for d in diags if d.severity == "error"] == ["RTN022"]
    e = Engine(1)
    from rattan.engine import EngineError
    with pytest.raises(EngineError, match=r"model\[0\]\.mean.*more than 0"):
        e.add_cell("delay_per_packet", {"model": [dict(seg("lognormal", mean=0))], "repeat": 1, "seed": 42})

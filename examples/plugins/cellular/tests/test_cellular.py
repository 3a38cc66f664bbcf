"""The `cellular` cell in `rattan sim` (run with the plugin installed): light capacity under a light
load, heavy capacity under a heavy one, and the capacity switching at the very tick the arrivals
predict, both ways. Deterministic: the same run twice gives the same document."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKET = 1500  # bytes, the flows' default size
MS = 1_000_000


def _why_not() -> str | None:
    try:
        import rattan.pycell  # noqa: F401
    except ImportError:
        return "this rattan has no Python cells (rattan.pycell): upgrade rattan"
    from rattan.registry import default_registry
    if default_registry().get("cellular") is None:
        return "the `cellular` plugin is not installed: `pip install .` first"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


def sim(tmp_path, text: str, flows: list[str], duration: str, interval="100ms") -> dict:
    path = tmp_path / "path.rtn"
    path.write_text(text)
    argv = [sys.executable, "-m", "rattan", "sim", str(path), "--duration", duration, "--json", "--interval", interval]
    for f in flows:
        argv += ["--flow", f]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


ONE = ("channel c {\n    cell radio: cellular { light_rate = 5Mbps, heavy_rate = 15Mbps, threshold = 10Mbps }\n"
       "    left -> radio -> right\n    right -> left\n}\n")


def test_a_flow_below_the_threshold_gets_the_light_capacity(tmp_path):
    """8 Mbit/s offered, at most 10 is light: the link stays at 5 Mbit/s and sends 5 Mbit/s."""
    doc = sim(tmp_path, ONE, ["left->right:cbr:8Mbps"], "2s")
    assert set(doc["series"]["cells"]["radio.link"]["rate_bps"]) == {5e6}
    assert abs(doc["flows"][0]["received_packets"] - 2 * 5_000_000 / (8 * PACKET)) <= 2
    assert doc["cells"]["radio.link"]["queued_packets"] > 0  # it was the bottleneck


def test_a_flow_above_the_threshold_gets_the_heavy_capacity(tmp_path):
    """20 Mbit/s offered: the first tick (10 ms, measured over the 10 ms elapsed) makes it heavy, and
    the link sends 5 Mbit/s for 10 ms, then 15 Mbit/s."""
    doc = sim(tmp_path, ONE, ["left->right:cbr:20Mbps"], "2s", interval="10ms")
    rates = doc["series"]["cells"]["radio.link"]["rate_bps"]
    assert rates[0] == 15e6 and set(rates) == {15e6}  # the sample at 10 ms is taken after that tick
    expected = (5_000_000 * 0.01 + 15_000_000 * 1.99) / (8 * PACKET)
    assert abs(doc["flows"][0]["received_packets"] - expected) <= 2
    assert doc["python_cells"]["radio"]["ticks"] == 200


def cbr_arrivals(interval_ns: int, lo: int, hi: int, on: tuple[int, int] | None = None) -> tuple[int, int]:
    """How many packets of a CBR flow (one every interval_ns from 0 on) arrive in the window (lo, hi],
    counting only those sent while the flow is `on` ([start, end]); the fewest and the most, as a
    packet at exactly a boundary may fall on either side of the event there."""
    def count(a, b):  # packets at times in (a, b]
        return max(0, b // interval_ns - a // interval_ns) if b > a else 0
    if on is not None:
        lo, hi = max(lo, on[0]), min(hi, on[1])
    n = count(lo, hi)
    edges = sum(1 for t in (lo, hi) if t % interval_ns == 0 and (on is None or t in on))
    return max(0, n - edges), n + edges


def analytic_switch(ticks, window, threshold_bps, flows, want_heavy: bool) -> int:
    """The first tick whose window (t - window, t] holds more (want_heavy) or no more arrivals than
    threshold × window, whichever way the boundary packets fall: the test fails if they could decide it."""
    for t in ticks:
        lo = hi = 0
        for interval_ns, on in flows:
            a, b = cbr_arrivals(interval_ns, t - window, t, on)
            lo, hi = lo + a, hi + b
        limit = threshold_bps * window / 8e9
        heavy_lo, heavy_hi = lo * PACKET > limit, hi * PACKET > limit
        if heavy_lo == heavy_hi == want_heavy:
            return t
        assert heavy_lo == heavy_hi, f"at {t} ns the edge packets decide it: choose other rates"
    raise AssertionError("no switch")


STEP = (Path(__file__).parent / "step.rtn").read_text()  # also the README's picture


def test_the_capacity_switches_at_the_analytic_ticks_both_ways(tmp_path):
    """2 Mbit/s from `a` all along, 30 Mbit/s more from `b` from 5 s to 8 s (the gate): the window of
    100 ms holds 16 or 17 light packets (24 kB), and 25 heavy ones per 10 ms tick; 125 kB (10 Mbit/s
    over 100 ms) is passed at 5.03 s (75 heavy packets), and no longer at 8.08 s (50 left)."""
    flows = ["a->right:cbr:2Mbps", "b->right:cbr:30Mbps"]
    doc = sim(tmp_path, STEP, flows, "10s", interval="10ms")
    light, heavy = (6 * MS, None), (400_000, (5000 * MS, 8000 * MS))  # 1500 B at 2 and 30 Mbit/s
    ticks = range(10 * MS, 10_001 * MS, 10 * MS)
    up = analytic_switch(ticks, 100 * MS, 10_000_000, [light, heavy], want_heavy=True)
    down = analytic_switch([t for t in ticks if t > up], 100 * MS, 10_000_000, [light, heavy], want_heavy=False)
    assert (up, down) == (5030 * MS, 8080 * MS)
    t_ns = [round(t * 1e9) for t in doc["series"]["t_s"]]
    rates = doc["series"]["cells"]["radio.link"]["rate_bps"]  # each sample after the tick at its time
    changes = [(t, r) for t, r, before in zip(t_ns[1:], rates[1:], rates) if r != before]
    assert rates[0] == 5e6 and changes == [(up, 50e6), (down, 5e6)]
    # a 5 Mbit/s link could not have carried 32 Mbit/s: nothing waits at the end, all was sent
    assert doc["cells"]["radio.link"]["queued_packets"] == 0
    assert doc["cells"]["radio.link"]["out_packets"] == doc["cells"]["radio.link"]["in_packets"]
    again = sim(tmp_path, STEP, flows, "10s", interval="10ms")
    assert again == doc


def test_a_window_that_is_not_a_whole_number_of_ticks_is_refused_at_the_instance(tmp_path):
    path = tmp_path / "w.rtn"
    path.write_text(ONE.replace("threshold = 10Mbps", "threshold = 10Mbps, window = 25ms, tick = 10ms"))
    r = subprocess.run([sys.executable, "-m", "rattan", "check", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "RTN025" in r.stderr + r.stdout and "whole number of ticks" in r.stderr + r.stdout


def test_a_timeline_changes_a_capacity_from_the_tick_at_its_time(tmp_path):
    """`light_rate` is a runtime parameter: changed at 1 s, the link runs at it from the tick at 1 s."""
    doc = sim(tmp_path, ONE.replace("    right -> left\n", "    right -> left\n    at 1s { radio.light_rate = 2Mbps }\n"),
              ["left->right:cbr:8Mbps"], "2s", interval="10ms")
    t_ns = [round(t * 1e9) for t in doc["series"]["t_s"]]
    rates = dict(zip(t_ns, doc["series"]["cells"]["radio.link"]["rate_bps"]))
    assert rates[990 * MS] == 5e6 and rates[1000 * MS] == 2e6 and set(rates.values()) == {5e6, 2e6}

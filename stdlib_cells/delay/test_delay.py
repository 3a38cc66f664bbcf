"""The `delay` cell in virtual time: jitter's mean and deviation for each distribution, order without reorder."""
from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys

import pytest

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain


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


MS, US = 10**6, 10**3


def _round_up_run(round_up: int, *, start_ns: int = 0, other_way_at: int | None = None) -> dict[int, int]:
    """delay 10 ms with `round_up`, a flow of one packet every 0.1 ms from `start_ns`; seq -> delay.
    With `other_way_at`, a packet flow the other way (through a cell of its own) starts then."""
    e = Engine(1)
    d = cell(e, "delay", delay=10 * MS, round_up=round_up)
    left, right = chain(e, d)
    if other_way_at is not None:
        p = cell(e, "pass")
        e.link(right, 0, p)
        e.link(p, 0, left)
        e.add_flow(right, left, "cbr", 12_000_000, 1500, start_ns=other_way_at)
    f = e.add_flow(left, right, "cbr", 120_000_000, 1500, samples=True, start_ns=start_ns)  # 1500 B / 0.1 ms
    e.run_until(SEC)
    delays, seqs = e.flow_samples(f)
    return dict(zip(seqs, delays))


def test_round_up_moves_arrivals_to_the_next_multiple():
    by_seq = _round_up_run(MS)
    # sent at 0.2 ms and 0.7 ms: both leave at 1 ms + 10 ms
    assert by_seq[2] == 11 * MS - 200 * US and by_seq[7] == 11 * MS - 700 * US
    assert by_seq[10] == 10 * MS                     # sent exactly at 1 ms: not moved
    assert by_seq[0] == 10 * MS                      # the origin itself
    for i in range(1, 200):                          # upstream's test_ingress_roundup, packet by packet
        assert by_seq[i] == 10 * MS + (10 - i % 10) % 10 * 100 * US, i
    assert set(_round_up_run(0).values()) == {10 * MS}  # 0: off


def test_round_up_counts_from_the_channels_first_packet():
    # upstream's trace start is its first packet into Rattan (default `first-packet` feature)
    by_seq = _round_up_run(MS, start_ns=350 * US)    # packets at 0.35, 0.45, ... ms
    assert by_seq[0] == 10 * MS
    assert by_seq[1] == 10 * MS + 900 * US           # 0.45 ms -> 1.35 ms (not 1 ms: the run's start)
    assert by_seq[10] == 10 * MS
    # a packet the other way at 0.3 ms came first: the grid is 0.3, 1.3, ... ms
    by_seq = _round_up_run(MS, start_ns=350 * US, other_way_at=300 * US)
    assert by_seq[0] == 10 * MS + 950 * US and by_seq[9] == 10 * MS + 50 * US and by_seq[10] == 10 * MS + 950 * US


def test_round_up_is_neither_removed_nor_fused_by_the_optimizer():
    from tests.engine.cells import plan_of

    def delays(text):
        return [c["config"] for c in plan_of("channel c { endpoints a, b\n a -> " + text + " -> b }")["channels"][0]["cells"]]

    assert [c["delay"] for c in delays("delay { delay = 10ms } -> delay { delay = 5ms }")] == [15 * MS]
    assert [c["delay"] for c in delays("delay { delay = 10ms, round_up = 1ms } -> delay { delay = 5ms }")] == [10 * MS, 5 * MS]
    assert [c["delay"] for c in delays("delay { delay = 5ms } -> delay { delay = 10ms, round_up = 1ms }")] == [5 * MS, 10 * MS]
    assert delays("delay { delay = 0ms }") == []
    assert [c["round_up"] for c in delays("delay { delay = 0ms, round_up = 1ms }")] == [MS]


@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ping"), reason="needs root (network namespaces) and ping")
def test_a_real_run_rounds_up_from_its_first_packet(tmp_path):
    # a 1 s grid from the first ping (1 s into the run); pings every 0.2 s wait for the next second
    (tmp_path / "t.rtn").write_text("""channel c {
    endpoints left, right
    left -> delay { delay = 0ms, round_up = 1s } -> right
    right -> pass {} -> left
}
""")
    r = subprocess.run([sys.executable, "-m", "rattan", "run", str(tmp_path / "t.rtn"), "--", "sh", "-c",
                        "sleep 1; ping -c 4 -i 0.2 -w 3 $RATTAN_RIGHT_IP"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rtts = [float(x) for x in re.findall(r"time=([0-9.]+) ms", r.stdout)][:4]
    assert len(rtts) == 4, r.stdout
    assert rtts[0] < 150, r.stdout                       # the origin itself: not moved
    for i in (1, 2, 3):                                  # sent at ~0.2 i s: held until 1 s
        assert abs(rtts[i] - (1000 - 200 * i)) < 150, r.stdout

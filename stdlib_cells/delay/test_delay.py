"""The `delay` cell in virtual time: jitter's mean and deviation for each distribution, order without reorder."""
from __future__ import annotations

import statistics

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

"""Delay statistics in fixed memory: the engine's log histogram against exact percentiles, the
interval means of `rattan sim` against the raw samples, and memory that does not grow with packets."""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest

from rattan.engine import Engine
from rattan.engine._engine import lib
from rattan.engine.binding import HIST_BUCKETS, HIST_RELATIVE_ERROR, Lateness
from rattan.runtime.sim import run

from tests.conftest import ROOT
from tests.engine.cells import SEC, cell, chain, plan_of

MS = 10**6


def test_every_value_falls_in_a_bucket_narrower_than_its_bound():
    rng = random.Random(3)
    values = list(range(300)) + [2**k + d for k in range(6, 64) for d in (-1, 0, 1)] + [2**64 - 1]
    values += [rng.getrandbits(rng.randrange(1, 65)) for _ in range(20_000)]
    for v in values:
        i = lib.rt_hist_bucket(v)
        low, high = lib.rt_hist_lower(i), lib.rt_hist_lower(i + 1)
        assert 0 <= i < HIST_BUCKETS and low <= v and (v < high or i == HIST_BUCKETS - 1), v
        if i < HIST_BUCKETS - 1:
            assert high - low <= max(1, low * 2 * HIST_RELATIVE_ERROR), v  # width < 1/64 of the lower edge
    assert lib.rt_hist_bucket(2**64 - 1) == HIST_BUCKETS - 1


def test_lateness_quantiles_are_upper_bounds_within_one_bucket():
    """Real runs' lateness uses the same buckets: a quantile is never below the true one, at most 1/64 above,
    and a frame later than 1 ms is measured (the old 1-us histogram stopped at 1024 us)."""
    rng = random.Random(8)
    late = sorted(int(rng.lognormvariate(10, 1.5)) for _ in range(10_000))  # ns: median ~22 us, tail past 1 ms
    hist = [0] * HIST_BUCKETS
    for v in late:
        hist[lib.rt_hist_bucket(v)] += 1
    lt = Lateness(len(late), 0, late[-1], sum(late), hist)
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = _exact(late, q) / 1000
        assert exact <= lt.quantile_us(q) <= exact * (1 + 2 * HIST_RELATIVE_ERROR) + 0.001, q
    assert 1000 < lt.quantile_us(0.999) < float("inf")
    assert Lateness(0, 0, 0, 0, [0] * HIST_BUCKETS).quantile_us(0.99) == 0.0


def _exact(sorted_ns: list[int], q: float) -> int:
    """Nearest-rank quantile."""
    return sorted_ns[max(0, math.ceil(q * len(sorted_ns)) - 1)]


@pytest.mark.parametrize("dist", ["uniform", "normal", "pareto"])
def test_histogram_quantiles_are_within_the_stated_error_of_the_exact_ones(dist):
    e = Engine(5)
    d = cell(e, "delay", delay=20 * MS, jitter=15 * MS, distribution=dist, reorder=True)
    left, right = chain(e, d)
    f = e.add_flow(left, right, "poisson", 120_000_000, 1500, samples=True)  # ~10k packets per second
    e.run_until(5 * SEC)
    exact = sorted(e.flow_delays(f))
    stats = e.flow_delay(f)
    assert stats.count == len(exact) > 40_000 and sum(stats.hist) == stats.count
    assert (stats.min_ns, stats.max_ns, stats.sum_ns) == (exact[0], exact[-1], sum(exact))  # exact
    for q in (0.01, 0.1, 0.5, 0.9, 0.99, 0.999):
        assert stats.quantile_ns(q) == pytest.approx(_exact(exact, q), rel=HIST_RELATIVE_ERROR), q
    assert e.flow_stats(f)["reordered_packets"] > 0  # jitter with reorder: counted in O(1) memory


def test_reordered_packets_are_counted_as_the_samples_show_them():
    e = Engine(2)
    d = cell(e, "delay", delay=10 * MS, jitter=3 * MS, reorder=True)
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 12_000_000, 1500, samples=True)
    e.run_until(3 * SEC)
    _, seqs = e.flow_samples(f)
    high, late = -1, 0
    for s in seqs:
        late += s < high
        high = max(high, s)
    assert e.flow_stats(f)["reordered_packets"] == late > 100


def test_interval_means_of_the_series_are_those_of_the_raw_samples():
    plan = plan_of('channel c {\n    endpoints left, right\n    cell b: bw { rate = 10Mbps }\n    cell d: delay { delay = 5ms, jitter = 2ms }\n    left -> b -> d -> right\n}\n')
    r = run(plan, None, ["left->right:poisson:9Mbps"], "3s", 1, interval="100ms", samples=True)
    f, series = r["flows"][0], r["series"]["flows"][0]
    delays = f["samples"]["delay_ns"]  # in arrival order: each interval's packets in turn
    packets = [round(bps * 0.1 / 8 / 1500) for bps in series["received_bps"]]
    start, means = 0, []
    for n in packets:
        means.append(sum(delays[start:start + n]) / n / 1e6 if n else None)
        start += n
    assert start == f["received_packets"]
    assert series["delay_ms_mean"] == pytest.approx(means, rel=1e-12)
    assert f["delay_ms"]["mean"] == pytest.approx(sum(delays) / len(delays) / 1e6, rel=1e-12)


_PEAK = """
import json, resource, sys
from rattan.runtime.sim import run
from tests.engine.cells import plan_of
plan = plan_of("channel c { endpoints left, right\\n left -> delay { delay = 1ms } -> right }")
r = run(plan, None, ["left->right:cbr:%s"], "2s", 1, interval="1s")
print(json.dumps([r["flows"][0]["received_packets"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))
"""


def _peak(rate: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _PEAK % rate], capture_output=True, text=True, cwd=ROOT, check=True)
    packets, kib = json.loads(out.stdout)
    return packets, kib


def test_sim_memory_does_not_grow_with_the_number_of_packets():
    """1.6 M packets take no more memory than 160 k (raw samples took 16 B each: +23 MiB)."""
    small, small_kib = _peak("960Mbps")
    big, big_kib = _peak("9600Mbps")
    assert big >= 10 * small - 10 and big > 1_500_000
    # the same peak within 4 MiB (the process's own noise); 1.4 M more samples would be 22 MiB more
    assert big_kib - small_kib < 4096, (small_kib, big_kib)

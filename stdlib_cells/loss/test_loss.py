"""The `loss` cell in virtual time: Bernoulli loss and the Gilbert-Elliott model's loss and bursts."""
from __future__ import annotations

import statistics

import pytest

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain, conserved


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

"""The `delay_trace` cell in virtual time: the delay in force at each packet's arrival, looped or not."""
from __future__ import annotations

from rattan.engine import Engine

from tests.engine.cells import SEC, cell, chain, conserved, steps

MS = 10**6


def test_delay_trace_gives_each_packet_the_delay_in_force_when_it_arrives():
    e = Engine(1)
    d = cell(e, "delay_trace", trace=steps([(0, 10 * MS), (SEC, 50 * MS), (2 * SEC, 5 * MS)], period_ns=3 * SEC))
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 12_000_000, 1500, samples=True)  # one packet per ms, sent at k ms
    e.run_until(7 * SEC)
    delays, seqs = e.flow_samples(f)
    by_seq = dict(zip(seqs, delays))
    assert by_seq[500] == 10 * MS          # sent at 0.5 s
    assert by_seq[1500] == 50 * MS         # 1.5 s
    assert by_seq[3500] == 10 * MS         # 3.5 s: the trace looped at 3 s
    assert by_seq[4500] == 50 * MS
    # 50 ms -> 5 ms at 2 s: the packets sent just after leave right behind the last slow one (FIFO)
    assert by_seq[2000] == 1999 * MS + 50 * MS - 2000 * MS
    assert seqs == sorted(seqs)
    conserved(e, d)


def test_delay_trace_without_loop_keeps_its_last_delay():
    e = Engine(1)
    d = cell(e, "delay_trace", trace=steps([(0, 10 * MS), (SEC, 30 * MS)]), loop=False)
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 12_000_000, 1500, samples=True)
    e.run_until(5 * SEC)
    delays, seqs = e.flow_samples(f)
    assert dict(zip(seqs, delays))[4000] == 30 * MS

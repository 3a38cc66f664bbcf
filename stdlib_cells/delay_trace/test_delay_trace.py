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


def _first_packet_run(start: str, *, other_flow_at: int | None = None):
    """A flow starting at 2 s through a delay_trace of 50 ms for its first second, then 1 ms."""
    e = Engine(1)
    d = cell(e, "delay_trace", trace=steps([(0, 50 * MS), (SEC, MS)]), loop=False, start=start)
    left, right = e.add_endpoint(), e.add_endpoint()
    e.link(right, 0, d)
    e.link(d, 0, left)
    if other_flow_at is not None:  # the other direction, through a cell of its own
        p = cell(e, "pass")
        e.link(left, 0, p)
        e.link(p, 0, right)
        e.add_flow(left, right, "cbr", 12_000_000, 1500, start_ns=other_flow_at)
    f = e.add_flow(right, left, "cbr", 12_000_000, 1500, samples=True, start_ns=2 * SEC)
    e.run_until(5 * SEC)
    return dict(zip(*reversed(e.flow_samples(f))))


def test_delay_trace_starts_at_the_first_packet():
    run = _first_packet_run("run")
    assert run[0] == MS                                  # 2 s into the run: the trace's second part
    first = _first_packet_run("first_packet")
    assert first[0] == 50 * MS and first[999] == 50 * MS  # the trace's first second, from 2 s
    assert first[1100] == MS


def test_first_packet_is_the_channels_first_in_either_direction():
    # upstream's FirstPacket is the first packet into Rattan: here one sent the other way at 1.5 s
    by_seq = _first_packet_run("first_packet", other_flow_at=1_500_000_000)
    assert by_seq[0] == 50 * MS and by_seq[600] == MS     # the trace's 1 s step came at 2.5 s

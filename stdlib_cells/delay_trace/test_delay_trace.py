"""The `delay_trace` cell in virtual time: the delay in force at each packet's arrival, looped or not."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

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


@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ping"), reason="needs root (network namespaces) and ping")
@pytest.mark.parametrize("start, rtt_ms", [("run", (0, 30)), ("first_packet", (100, 160))])
def test_a_real_run_starts_the_trace_at_its_first_packet(tmp_path, start, rtt_ms):
    # 100 ms for the trace's first second, then 1 ms; ping starts 2 s into the run
    (tmp_path / "t.delay").write_text("0ms 100ms\n1s 1ms\n")
    (tmp_path / "t.rtn").write_text(f"""channel c {{
    endpoints left, right
    left -> delay_trace {{ trace = "t.delay", loop = false, start = {start} }} -> right
    right -> pass {{}} -> left
}}
""")
    r = subprocess.run([sys.executable, "-m", "rattan", "run", str(tmp_path / "t.rtn"), "--", "sh", "-c",
                        "sleep 2; ping -c 3 -i 0.2 $RATTAN_RIGHT_IP"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rtts = [float(x) for x in re.findall(r"time=([0-9.]+) ms", r.stdout)]
    assert len(rtts) == 3 and all(rtt_ms[0] <= x < rtt_ms[1] for x in rtts), r.stdout


US = 10**3


def _round_up_run(round_up: int, start: str = "run", start_ns: int = 0) -> dict[int, int]:
    """10 ms for the trace's first ms, 50 ms after; a packet every 0.1 ms from `start_ns`; seq -> delay."""
    e = Engine(1)
    d = cell(e, "delay_trace", trace=steps([(0, 10 * MS), (MS, 50 * MS)]), loop=False, start=start,
             round_up=round_up)
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 120_000_000, 1500, samples=True, start_ns=start_ns)
    e.run_until(SEC)
    return dict(zip(*reversed(e.flow_samples(f))))


def test_round_up_moves_arrivals_and_reads_the_trace_there():
    plain = _round_up_run(0)
    assert plain[2] == 10 * MS and plain[7] == 10 * MS and plain[10] == 50 * MS
    by_seq = _round_up_run(MS)
    assert by_seq[0] == 10 * MS                            # at the trace's time 0: not moved
    # sent at 0.2 and 0.7 ms: both taken at 1 ms, when the trace gives 50 ms, so both leave at 51 ms
    assert by_seq[2] == 51 * MS - 200 * US and by_seq[7] == 51 * MS - 700 * US
    assert by_seq[10] == 50 * MS                           # sent exactly at 1 ms: not moved
    assert by_seq[13] == 50 * MS + 700 * US                # 1.3 ms -> 2 ms


def test_round_up_counts_from_the_trace_start():
    # start = run: the grid is 0, 1, 2 ms of the run, whenever the first packet comes
    run = _round_up_run(MS, "run", start_ns=350 * US)
    assert run[0] == 50 * MS + 650 * US                     # 0.35 ms -> 1 ms, the trace's 50 ms part
    # start = first_packet: the trace and the grid start at 0.35 ms
    first = _round_up_run(MS, "first_packet", start_ns=350 * US)
    assert first[0] == 10 * MS
    assert first[1] == 50 * MS + 900 * US                   # 0.45 ms -> 1.35 ms, the trace's 1 ms
    assert first[10] == 50 * MS

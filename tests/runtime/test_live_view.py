"""What `rattan run` shows (root): the live line gives what each direction delivered, checked
against iperf3's own figure; the closing table's rate is taken over the time a cell was busy."""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]
TEN_MBPS = """channel link {
    endpoints left, right
    left -> bw { rate = 10Mbps } -> right
    right -> bw { rate = 10Mbps } -> left
}
"""
# rattan waits up to 5 s for --right to listen; a loaded machine could outlast that: wait up to 10 s
SERVER_UP = ('i=0; until ip netns exec "$RATTAN_RIGHT_NETNS" ss -ltnH "sport = :5201" | grep -q . '
             '|| [ $i -ge 200 ]; do i=$((i+1)); sleep 0.05; done; ')
LIVE = re.compile(r"^\[rattan\] link: left->right ([\d.]+) Mbit/s, right->left ([\d.]+) Mbit/s, queue \d+, "
                  r"drops \d+$", re.M)


def _run(tmp_path: Path, script: str) -> subprocess.CompletedProcess:
    path = tmp_path / "link.rtn"
    path.write_text(TEN_MBPS)
    return subprocess.run([*RATTAN, "run", str(path), "--right", "iperf3 -s -1 >/dev/null", "--",
                           "sh", "-c", SERVER_UP + script], capture_output=True, text=True, timeout=90,
                          env={**os.environ, "RATTAN_LIVE": "1"})


def test_the_live_line_shows_what_each_direction_delivered(tmp_path, record_property):
    # iperf3 leaves out its first second (TCP's start) from its figure
    r = _run(tmp_path, "iperf3 -c $RATTAN_RIGHT_IP -O 1 -t 5 --json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    iperf = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
    samples = [(float(up), float(down)) for up, down in LIVE.findall(r.stderr)]
    # the seconds the flow ran, less its first (TCP's start, which iperf3 leaves out too) and its
    # last (which may straddle its end)
    active = [s for s in samples if s[0] > 0.5][1:-1]
    assert len(active) >= 3, r.stderr
    up = statistics.mean(s[0] for s in active)
    down = statistics.mean(s[1] for s in active)
    record_property("live_up_mbps", up)
    record_property("iperf_mbps", iperf)
    # The line counts IP bytes, iperf3 TCP payload: 1500 of every 1448 bytes, 3.6% more. Five runs
    # with a CPU hog on one core, other tests running (load 10 on 2 cores): live/iperf3 1.027-1.036.
    # When a starved second stalls TCP, the line's seconds and iperf3's do not quite coincide:
    # earlier runs comparing a median moved by up to 0.1 either way. The old line summed both
    # endpoints' counters: 2.0-2.1.
    assert 0.8 <= up / iperf <= 1.3, (up, iperf, samples)
    assert down < 0.1 * up, samples  # the reverse direction carries only TCP's acknowledgements


def test_the_closing_table_rate_is_over_the_busy_time(tmp_path, record_property):
    # 2 s idle, then 3 s of pings of 1428 IP bytes every 2 ms (5.7 Mbit/s, under the 10 Mbit/s of
    # the cell, and paced by ping alone: no TCP start, no control connection); over the whole run
    # the old table read about 3.2 Mbit/s
    r = _run(tmp_path, "sleep 2; ping -q -n -c 1500 -i 0.002 -s 1400 $RATTAN_RIGHT_IP")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    m = re.search(r"(\d+) packets transmitted, (\d+) received.*time (\d+)ms", r.stdout)
    assert m, r.stdout
    sent, span = int(m.group(1)), int(m.group(3)) / 1000  # ping's own first-to-last time
    expected = sent * 1428 * 8 / span / 1e6
    m = re.search(r"^\s+bw_1\s+\d+\s+(\d+)\s+\d+\s+\d+\s+([\d.]+) Mbit/s\s+([\d.]+) s", r.stderr, re.M)
    assert m, r.stderr
    out, rate, busy = int(m.group(1)), float(m.group(2)), float(m.group(3))
    record_property("table_mbps", rate)
    record_property("ping_mbps", expected)
    record_property("busy_s", busy)
    record_property("ping_s", span)
    assert out == sent  # the cell carried the pings and nothing else
    # Six runs with a CPU hog on one core, other tests running: table/ping 0.99-1.03, busy 3.5-4.2 s
    # within 0.05 s of ping's own 3.5-4.2 s (ping falls behind its 2 ms when starved); the busy time
    # is the engine's own, from the cell's first departure to its last.
    assert abs(busy - span) <= 0.25, (busy, span)
    assert abs(rate / expected - 1) <= 0.1, (rate, expected)
    assert "over the time the cell was busy" in r.stderr


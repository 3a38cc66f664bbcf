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
# --right starts 0.3 s ahead, which a loaded machine can outlast: wait (at most 10 s) until it listens
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
    r = _run(tmp_path, "iperf3 -c $RATTAN_RIGHT_IP -t 5 --json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    iperf = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
    samples = [(float(up), float(down)) for up, down in LIVE.findall(r.stderr)]
    # the first second has the connection's start, the last may straddle its end
    assert len(samples) >= 4, r.stderr
    middle = samples[1:-1]
    up = statistics.median(s[0] for s in middle)
    down = statistics.median(s[1] for s in middle)
    record_property("live_up_mbps", up)
    record_property("iperf_mbps", iperf)
    # The line counts IP bytes, iperf3 TCP payload: 1500 of every 1448 bytes, 3.6% more. Five runs
    # with a CPU hog on one core: live/iperf3 1.035-1.040 (live 9.9-10.0, iperf3 9.60-9.65 Mbit/s);
    # the old line summed both endpoints' counters: 2.1. The bound allows ten times that spread.
    assert 1.0 <= up / iperf <= 1.09, (up, iperf, samples)
    assert down < 0.1 * up, samples  # the reverse direction carries only TCP's acknowledgements


def test_the_closing_table_rate_is_over_the_busy_time(tmp_path, record_property):
    # 2 s idle first: over the whole run, the 3 s load at 10 Mbit/s would read about 5 Mbit/s
    r = _run(tmp_path, "sleep 2; iperf3 -c $RATTAN_RIGHT_IP -t 3 --json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    m = re.search(r"^\s+bw_1\s+\d+\s+\d+\s+\d+\s+\d+\s+([\d.]+) Mbit/s\s+([\d.]+) s", r.stderr, re.M)
    assert m, r.stderr
    rate, busy = float(m.group(1)), float(m.group(2))
    record_property("table_mbps", rate)
    record_property("busy_s", busy)
    # Five runs with a CPU hog on one core: 9.85-9.93 Mbit/s over 3.0-3.1 s (the old table: 5.3-5.6).
    assert 9.3 <= rate <= 10.1, r.stderr
    assert 2.8 <= busy <= 3.6, r.stderr
    assert "over the time the cell was busy" in r.stderr


def test_deliveries_are_solved_from_the_topology():
    from rattan.runtime.view import _solve
    # multipath.rtn's downlink: a router whose port 1 goes straight to `wired`, whose uplink merges
    # with another into `shared`: what `wired` was delivered is its out less what it sent
    channel = {"endpoints": ["wifi", "wired", "server"],
               "cells": [{"name": n} for n in ("air", "shared", "back", "d3")],
               "links": [{"from": a, "port": 0, "to": b} for a, b in
                         [("wifi", "air"), ("air", "shared"), ("wired", "shared"), ("shared", "server"),
                          ("server", "back"), ("back", "d3"), ("back", "wired"), ("d3", "wifi")]]}
    rules = _solve(channel)
    assert rules["wifi"] == {("out", "d3"): 1}
    assert rules["server"] == {("out", "shared"): 1}
    assert rules["wired"] in ({("out", "back"): 1, ("in", "d3"): -1},
                              {("out", "wired"): 1, ("in", "shared"): -1, ("out", "air"): 1})
    # two endpoints linked straight: what `right` got is what `left` sent
    direct = {"endpoints": ["left", "right"], "cells": [{"name": "bw"}],
              "links": [{"from": "left", "port": 0, "to": "right"}, {"from": "right", "port": 0, "to": "bw"},
                        {"from": "bw", "port": 0, "to": "left"}]}
    assert _solve(direct) == {"left": {("out", "bw"): 1}, "right": {("out", "left"): 1, ("out", "bw"): -1}}

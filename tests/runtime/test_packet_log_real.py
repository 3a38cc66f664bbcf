"""The packet log of a real run (root): its counts equal the engine's (the run's closing table), and
one cell's departures convert to a pcap that tcpdump reads, packet for packet."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.runtime.conftest import SERVER_UP

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]

PATH = """
channel c {
    endpoints left, right
    cell up: bw { rate = 20Mbps, queue = droptail { packets = 20 } }
    left -> up -> delay { delay = 2ms } -> right
    right -> delay { delay = 2ms } -> left
}
"""


def test_a_real_runs_log_matches_the_engine_and_reads_in_tcpdump(tmp_path, record_property):
    path, log = tmp_path / "c.rtn", tmp_path / "run.log"
    path.write_text(PATH)
    # 30 Mbit/s of UDP into 20: the queue overflows, so drops are logged too
    r = subprocess.run([*RATTAN, "run", str(path), "--packet-log", str(log), "--right", "iperf3 -s -1 >/dev/null",
                        "--", "sh", "-c", SERVER_UP + "ping -c 10 -i 0.05 -q $RATTAN_RIGHT_IP && "
                                          "iperf3 -c $RATTAN_RIGHT_IP -u -b 30M -t 2 >/dev/null"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    table = {m.group(1): tuple(map(int, m.group(2, 3, 4)))
             for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+[\d.]+ Mbit/s", r.stderr, re.M)}
    assert {"up", "delay_1", "delay_2"} <= set(table), r.stderr  # (and an endpoint, had its ring overflowed)
    table = {k: v for k, v in table.items() if k in ("up", "delay_1", "delay_2")}
    s = subprocess.run([*RATTAN, "log", str(log), "--json"], capture_output=True, text=True, check=True)
    logged = {row["cell"]: (row["arrived"], row["departed"], row["dropped"]) for row in json.loads(s.stdout)}
    assert logged == table
    record_property("up_dropped", table["up"][2])
    assert table["up"][2] > 100  # drops at the 20-packet queue were recorded with the rest
    pcap = tmp_path / "up.pcap"
    subprocess.run([*RATTAN, "log", str(log), "--to", "pcap", "--cell", "up", "-o", str(pcap)], check=True,
                   capture_output=True)
    out = subprocess.run(["tcpdump", "-n", "-r", str(pcap)], capture_output=True, text=True)
    lines = out.stdout.splitlines()
    assert len(lines) == table["up"][1]  # every packet the cell let through
    assert sum("ICMP echo request" in line for line in lines) == 10
    assert any(" UDP, length" in line for line in lines)

"""The packet log of a real TCP run keeps whole packets (root): the pcap `rattan log --to pcap` makes of
it holds every byte of every segment, so tcpdump never shows `[|tcp]`; `--packet-log-snaplen N` keeps
the first N bytes instead, and the log and the pcap say so."""
from __future__ import annotations

import json
import re
import struct
import subprocess
import sys

import pytest

from rattan.runtime import packet_log
from tests.runtime.conftest import SERVER_UP

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]

PATH = """
channel c {
    endpoints left, right
    cell up: bw { rate = 50Mbps, queue = droptail { packets = 200 } }
    left -> up -> delay { delay = 2ms } -> right
    right -> delay { delay = 2ms } -> left
}
"""


def _tcp_run(tmp_path, *flags: str) -> tuple[str, str, int]:
    """A real run carrying a bounded TCP transfer (iperf3 -n 2M) left to right, logged: the log's
    path, `up`'s departures as a pcap, and the bytes iperf3's receiver got."""
    path, log, pcap = tmp_path / "c.rtn", tmp_path / "run.log", tmp_path / "up.pcap"
    path.write_text(PATH)
    r = subprocess.run([*RATTAN, "run", str(path), "-q", "--packet-log", str(log), *flags,
                        "--right", "iperf3 -s -1 >/dev/null",
                        "--", "sh", "-c", SERVER_UP + "iperf3 -c $RATTAN_RIGHT_IP -n 2M -J"],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    received = json.loads(r.stdout)["end"]["sum_received"]["bytes"]
    r = subprocess.run([*RATTAN, "log", str(log), "--to", "pcap", "--cell", "up", "-o", str(pcap)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return str(log), str(pcap), received


def _pcap(path: str) -> tuple[int, list[tuple[int, int]]]:
    """The file's snap length and each packet's (captured length, length on the wire)."""
    data = open(path, "rb").read()
    snaplen, link = struct.unpack_from("<II", data, 16)
    assert link == 101  # raw IP
    packets, at = [], 24
    while at < len(data):
        incl, orig = struct.unpack_from("<II", data, at + 8)
        packets.append((incl, orig))
        at += 16 + incl
    assert at == len(data)
    return snaplen, packets


def _tcpdump(pcap: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tcpdump", "-n", "-r", pcap], capture_output=True, text=True, timeout=60)


def test_a_tcp_runs_pcap_holds_whole_segments(tmp_path):
    log, pcap, received = _tcp_run(tmp_path)
    header, _ = packet_log.read(log)
    assert (header["version"], header["snaplen"]) == (2, 0)  # whole packets by default
    snaplen, packets = _pcap(pcap)
    assert snaplen == packet_log.MAX_SNAPLEN
    assert packets and all(incl == orig for incl, orig in packets)  # nothing cut
    assert max(incl for incl, _ in packets) >= 1400  # full-size segments, not 40-byte heads
    r = _tcpdump(pcap)
    lines = r.stdout.splitlines()
    assert len(lines) == len(packets), r.stderr
    assert not [line for line in lines if "[|" in line]  # tcpdump found every header and payload
    payload = [int(m.group(1)) for line in lines if (m := re.search(r" length (\d+)$", line))]
    assert len(payload) == len(lines)
    assert received > 10**6 and sum(payload) >= received  # every byte received is in the pcap


def test_packet_log_snaplen_keeps_the_first_bytes_and_says_so(tmp_path):
    log, pcap, received = _tcp_run(tmp_path, "--packet-log-snaplen", "64")
    header, records = packet_log.read(log)
    assert header["snaplen"] == 64
    assert max(len(r.data) for r in records) == 64
    snaplen, packets = _pcap(pcap)
    assert snaplen == 64
    assert all(incl == min(orig, 64) for incl, orig in packets)
    assert sum(orig for _, orig in packets) > received  # the lengths on the wire are still the real ones
    r = _tcpdump(pcap)
    assert "snapshot length 64" in r.stderr
    # 20 bytes of IP and 32 of TCP with timestamps fit in 64: the headers read, the payload is cut
    assert sum(" length 1448" in line for line in r.stdout.splitlines()) > 500


def test_a_bad_packet_log_snaplen_is_a_usage_error(tmp_path):
    path = tmp_path / "c.rtn"
    path.write_text(PATH)
    r = subprocess.run([*RATTAN, "run", str(path), "-q", "--packet-log", str(tmp_path / "x.log"),
                        "--packet-log-snaplen", "-1", "--", "true"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (2, "rattan: --packet-log-snaplen -1: a number of bytes, or 0 for whole "
                                           "packets\n")

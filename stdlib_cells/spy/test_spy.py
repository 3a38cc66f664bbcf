"""The `spy` cell: the pcap file it writes, as tcpdump reads it, and a path it cannot write."""
from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from rattan.engine import Engine, EngineError

from tests.engine.cells import SEC, cell, chain


def _read_pcap(path):
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, link) == (0xA1B23C4D, 2, 4, 101)
    records, off = [], 24
    while off < len(data):
        sec, nsec, cap, length = struct.unpack("<IIII", data[off:off + 16])
        records.append((sec * 10**9 + nsec, cap, length, data[off + 16:off + 16 + cap]))
        off += 16 + cap
    return records


def test_spy_writes_every_packet_with_its_time(tmp_path):
    e = Engine(1)
    bw = cell(e, "bw", rate=10_000_000)
    pcap = tmp_path / "after_bw.pcap"
    spy = cell(e, "spy", path=str(pcap))
    left, right = chain(e, bw, spy)
    e.set_endpoint_addr(left, 0x0A000102)
    e.set_endpoint_addr(right, 0x0A000202)
    e.add_flow(left, right, "cbr", 5_000_000, 1000)  # 625 packets/s, 0.8 ms each on the link
    e.run_until(2 * SEC)
    n = e.counters(spy).out_packets
    del e  # closes the file
    recs = _read_pcap(pcap)
    assert len(recs) == n == 1250
    t0, cap, length, head = recs[0]
    assert t0 == 800_000 and length == 1000 and cap == 28
    assert head[12:16] == bytes([10, 0, 1, 2]) and head[16:20] == bytes([10, 0, 2, 2]) and head[9] == 17
    assert [r[0] for r in recs[:3]] == [800_000, 2_400_000, 4_000_000]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump (installed by .ci/run)")
def test_tcpdump_reads_the_spy_file(tmp_path):
    e = Engine(1)
    pcap = tmp_path / "tap.pcap"
    spy = cell(e, "spy", path=str(pcap))
    left, right = chain(e, spy)
    e.set_endpoint_addr(right, 0x0A000202)
    e.add_flow(left, right, "poisson", 1_000_000, 200)
    e.run_until(SEC)
    n = e.counters(spy).out_packets
    del e
    r = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == n > 0
    assert "10.0.2.2.5201: UDP" in lines[0]


def test_spy_reports_a_path_it_cannot_write(tmp_path):
    with pytest.raises(EngineError, match="cannot write"):
        cell(Engine(1), "spy", path=str(tmp_path / "missing" / "x.pcap"))

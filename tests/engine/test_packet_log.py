"""The packet log in virtual time: every event of the logged cells is recorded, the counts equal the
engine's counters, and it converts to CSV and to a pcap that tcpdump reads."""
from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import subprocess

import pytest

from rattan.runtime import packet_log
from tests.engine.cells import cell


def _sim(run_cli, tmp_path, *extra):
    log = tmp_path / "run.log"
    code, out, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:poisson:25Mbps",
                             "--flow", "right->left:cbr:2Mbps", "--duration", "4s", "--json",
                             "--packet-log", str(log), *extra)
    assert code == 0, err
    return log, json.loads(out)


def test_the_log_counts_what_the_engine_counts(run_cli, tmp_path):
    log, result = _sim(run_cli, tmp_path)
    rows = {r["cell"]: r for r in packet_log.summary(str(log))}
    assert set(rows) == set(result["cells"])  # every cell by default
    for name, c in result["cells"].items():
        r = rows[name]
        assert (r["arrived"], r["departed"], r["dropped"]) == (c["in_packets"], c["out_packets"], c["dropped_packets"])
        assert r["dropped_by_reason"] == c["dropped_by_reason"]
    assert rows["up"]["dropped_by_reason"]["queue_full"] > 0  # 25 Mbit/s into 20: the queue overflows
    assert rows["delay_1"]["sojourn_ms"]["p50"] == pytest.approx(20.0)  # the delay cell's 20 ms


def test_csv_and_pcap(run_cli, tmp_path):
    log, result = _sim(run_cli, tmp_path)
    code, _, err = run_cli("log", str(log), "--to", "csv")
    assert code == 0, err
    with open(tmp_path / "run.csv") as f:
        rows = list(csv.DictReader(f))
    total = sum(c["in_packets"] + c["out_packets"] + c["dropped_packets"] for c in result["cells"].values())
    assert len(rows) == total
    drops = [r for r in rows if r["event"] == "drop"]
    assert drops and all(r["reason"] == "queue_full" and r["cell"] == "up" for r in drops)
    code, _, err = run_cli("log", str(log), "--to", "pcap", "--cell", "up", "-o", str(tmp_path / "up.pcap"))
    assert code == 0, err
    if shutil.which("tcpdump"):
        out = subprocess.run(["tcpdump", "-n", "-r", str(tmp_path / "up.pcap")], capture_output=True, text=True)
        lines = out.stdout.splitlines()
        assert len(lines) == result["cells"]["up"]["out_packets"]
        assert "IP 10.0.1.2.5000 > 10.0.2.2.5000: UDP, length 1472" in lines[0]


def test_only_chosen_cells_are_logged(run_cli, tmp_path):
    log, result = _sim(run_cli, tmp_path, "--log-cells", "up, down")
    assert {r["cell"] for r in packet_log.summary(str(log))} == {"up", "down"}
    code, _, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:cbr:1Mbps", "--duration", "1s",
                           "--packet-log", str(tmp_path / "x.log"), "--log-cells", "upp")
    assert code == 2 and "no cell upp" in err


def test_reading_refuses_what_is_not_a_log(run_cli, tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"hello world, not a log")
    code, _, err = run_cli("log", str(bad))
    assert code == 2 and "not a rattan packet log" in err
    log, _ = _sim(run_cli, tmp_path)
    code, _, err = run_cli("log", str(log), "--to", "pcap")
    assert code == 2 and "--cell" in err
    code, _, err = run_cli("log", str(log), "--cell", "nope", "--to", "csv")
    assert code == 2 and "no cell `nope`" in err


# -- item 21: records of any length, an optional snap length ------------------------------------

def test_the_readers_record_layout_is_the_engines():
    from rattan.engine._engine import ffi, lib
    assert packet_log.RECORD.size == ffi.sizeof("rt_log_record")
    assert packet_log.RECORD.size - 2 == ffi.offsetof("rt_log_record", "cap_len")  # the fixed part ends with it
    assert packet_log.ALIGN == lib.RT_LOG_ALIGN


def _pcap_snaplen_and_lengths(path) -> tuple[int, set[tuple[int, int]]]:
    data = open(path, "rb").read()
    snaplen = struct.unpack_from("<I", data, 16)[0]
    lengths, at = set(), 24
    while at < len(data):
        incl, orig = struct.unpack_from("<II", data, at + 8)
        lengths.add((incl, orig))
        at += 16 + incl
    return snaplen, lengths


def test_a_sim_log_with_a_snap_length_says_so_and_still_converts(run_cli, tmp_path):
    log, result = _sim(run_cli, tmp_path, "--packet-log-snaplen", "64")
    header, records = packet_log.read(str(log))
    assert (header["version"], header["snaplen"]) == (2, 64)
    assert sum(1 for _ in records) == sum(c["in_packets"] + c["out_packets"] + c["dropped_packets"]
                                          for c in result["cells"].values())
    pcap = tmp_path / "up.pcap"
    code, _, err = run_cli("log", str(log), "--to", "pcap", "--cell", "up", "-o", str(pcap))
    assert code == 0, err
    snaplen, lengths = _pcap_snaplen_and_lengths(pcap)
    assert snaplen == 64 and lengths == {(28, 1500)}  # synthetic packets: the headers readers make


def test_a_negative_snap_length_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:cbr:1Mbps", "--duration", "1s",
                           "--packet-log", str(tmp_path / "x.log"), "--packet-log-snaplen", "-3")
    assert (code, err) == (2, "rattan: --packet-log-snaplen -3: a number of bytes, or 0 for whole packets\n")


def test_a_cut_off_last_record_is_left_out(run_cli, tmp_path):
    log, _ = _sim(run_cli, tmp_path)
    n = sum(1 for _ in packet_log.read(str(log))[1])
    with open(log, "r+b") as f:
        f.truncate(os.path.getsize(log) - 3)
    assert sum(1 for _ in packet_log.read(str(log))[1]) == n - 1


def test_a_version_1_log_still_reads(tmp_path):
    """A log written before records had a length: fixed 80-byte records with 40 IP bytes."""
    head = {"format": "rattan packet log", "version": 1, "record_size": packet_log.RECORD_V1.size, "clock": "real",
            "epoch_unix_ns": 10**18, "nodes": {"3": {"name": "up", "type": "bw", "channel": "c", "instance": "c",
                                                    "config": {}}}}
    ip = bytes([0x45, 0, 0x05, 0xdc]) + bytes(8) + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes(range(20))
    real = packet_log.RECORD_V1.pack(5, 7, 0, 3, 1500, -1, 1, 0, 40, 0, ip)
    synthetic = packet_log.RECORD_V1.pack(6, 0, 9, 3, 1000, 2, 2, 0, 0, 0, struct.pack("<II", 1, 2) + bytes(32))
    data = json.dumps(head).encode()
    log = tmp_path / "old.log"
    log.write_bytes(packet_log.MAGIC + struct.pack("<I", len(data)) + data + real + synthetic)
    header, records = packet_log.read(str(log))
    r1, r2 = list(records)
    assert (r1.t_ns, r1.sojourn_ns, r1.event, r1.size, r1.data) == (5, 7, "depart", 1500, ip)
    assert (r2.event, r2.reason, r2.flow, len(r2.data)) == ("drop", "queue_full", 2, 28)  # a synthesized header
    assert packet_log.recorded_snaplen(header) == 40
    pcap = tmp_path / "old.pcap"
    assert packet_log.to_pcap(str(log), str(pcap), "up") == 1
    assert _pcap_snaplen_and_lengths(pcap) == (40, {(40, 1500)})


def test_a_log_of_another_version_is_refused(tmp_path):
    data = json.dumps({"version": 3, "nodes": {}}).encode()
    log = tmp_path / "new.log"
    log.write_bytes(packet_log.MAGIC + struct.pack("<I", len(data)) + data)
    with pytest.raises(packet_log.LogError, match="a version 3 packet log; this rattan reads versions 1 and 2"):
        packet_log.read(str(log))


def test_records_a_write_refused_are_counted_lost(tmp_path):
    from rattan.engine import Engine
    e = Engine(1)
    left, right = e.add_endpoint(), e.add_endpoint()
    bw = cell(e, "bw", rate=10_000_000, queue={"kind": "droptail", "packets": 100})
    e.link(left, 0, bw)
    e.link(bw, 0, right)
    e.add_flow(left, right, "cbr", 1_000_000, 1000)
    e.open_packet_log("/dev/full")  # every write fails (ENOSPC)
    e.log_node(bw)
    e.run_until(10**9)
    e.flush_packet_log()
    c = e.counters(bw)
    assert e.packet_log_stats() == (0, c.in_packets + c.out_packets + c.dropped_packets)
    assert c.out_packets > 100


def test_reader_layout_is_the_engines_record():
    """The reader's struct format puts every field where the C compiler put it in rt_log_record."""
    import re
    from rattan.engine.binding import LOG_RECORD_FIELDS, LOG_RECORD_SIZE
    from rattan.runtime.packet_log import RECORD
    sizes = {"Q": 8, "I": 4, "i": 4, "B": 1, "H": 2}
    offsets, at = [], 0
    for code in re.findall(r"[QIiBH]", RECORD.format):
        offsets.append(at)
        at += sizes[code]
    assert RECORD.size == LOG_RECORD_SIZE
    assert offsets == [off for _, off in LOG_RECORD_FIELDS]

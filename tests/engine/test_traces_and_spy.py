"""delay_trace, loss_trace and spy in virtual time; netem-trace bandwidth models through the loader."""
from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from rattan.engine import Engine, EngineError
from rattan.engine.load import load_channel

from tests.engine.test_virtual_time import SEC, chain, conserved
from tests.engine.cells import cell, route, steps

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


def test_loss_trace_follows_the_trace():
    e = Engine(3)
    lt = cell(e, "loss_trace", trace=steps([(0, 0.0), (10 * SEC, 0.2), (20 * SEC, 0.05)]), loop=False)
    left, right = chain(e, lt)
    f = e.add_flow(left, right, "cbr", 120_000_000, 1500)  # 10k packets/s
    e.run_until(10 * SEC)
    assert e.counters(lt).dropped_packets == 0
    e.run_until(20 * SEC)
    assert e.counters(lt).dropped_packets / 100_000 == pytest.approx(0.2, abs=0.005)
    before = e.counters(lt).dropped_packets
    e.run_until(40 * SEC)
    assert (e.counters(lt).dropped_packets - before) / 200_000 == pytest.approx(0.05, abs=0.002)
    assert e.counters(lt).dropped_by_reason.keys() == {"loss"}
    assert e.flow_stats(f)["received_packets"] == e.counters(lt).out_packets
    conserved(e, lt)


def test_step_traces_are_checked():
    e = Engine(1)
    with pytest.raises(EngineError, match=r"cell type `loss_trace`: parameter `trace.steps\[1\]`: times must increase"):
        cell(e, "loss_trace", trace=steps([(0, 0.1), (0, 0.2)]))
    with pytest.raises(EngineError, match="loss probability must be between 0 and 1"):
        cell(e, "loss_trace", trace=steps([(0, 1.5)]))
    with pytest.raises(EngineError, match=r"parameter `trace.steps`: no steps"):
        cell(e, "delay_trace", trace={"format": "steps", "steps": []})
    with pytest.raises(EngineError, match=r"parameter `trace.format`: missing"):
        cell(e, "delay_trace", trace={"steps": [[0, MS]]})


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


def test_netem_bandwidth_model_changes_the_rate_at_each_segment():
    e = Engine(1)
    channel = {"endpoints": ["left", "right"], "timeline": [],
               "cells": [{"name": "link", "type": "bw_trace",
                          "config": {"trace": "m.json", "loop": True, "overhead": 0, "queue": {"kind": "infinite"}},
                          "trace": {"format": "segments", "value": "rate_bps", "repeat": 0,
                                    "segments": [[SEC, 10_000_000], [SEC, 2_000_000]]}}],
               "links": [{"from": "left", "port": 0, "to": "link"}, {"from": "link", "port": 0, "to": "right"}]}
    nodes = load_channel(e, channel, horizon_ns=4 * SEC)
    f = e.add_flow(nodes["left"], nodes["right"], "cbr", 20_000_000, 1500)
    e.run_until(4 * SEC)
    got = e.flow_stats(f)["received_bytes"] * 8
    assert got == pytest.approx(2 * (10_000_000 + 2_000_000), rel=0.002)
    # the model repeats forever: the engine steps the rate itself, with no run length to plan for
    e = Engine(1)
    nodes = load_channel(e, channel)
    f = e.add_flow(nodes["left"], nodes["right"], "cbr", 20_000_000, 1500)
    e.run_until(10 * SEC)
    assert e.flow_stats(f)["received_bytes"] * 8 == pytest.approx(5 * (10_000_000 + 2_000_000), rel=0.002)

"""The packet log (`--packet-log PATH`): what chosen cells did with every packet, and `rattan log`.

File layout: the magic `RTNLOG01`, a little-endian u32 length and that many bytes of JSON (format
version, the size of a record's fixed part, the snap length, clock, and the name, type, channel and
instance of every logged node), then records written by the engine in C (`rt_log_record` in
rattan_engine.h): time, time spent in the node (departures), flow sequence, node, IP size, flow,
event, drop reason and `cap_len`, followed by `cap_len` bytes padded with zeros to a multiple of 8:
the IP packet, whole or cut to the log's snap length (for a synthetic packet, its two addresses,
from which readers synthesize an IPv4/UDP header). Python writes the header and reads the file
afterwards; the engine writes the records, so no packet passes through Python.

Version 1 logs (fixed 80-byte records with the first 40 bytes of each packet) are still read.
"""
from __future__ import annotations

import csv
import json
import os
import struct
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

from ..engine.binding import DROP_REASONS, LOG_RECORD_SIZE  # the engine's reason codes, in its order

MAGIC = b"RTNLOG01"
VERSION = 2
RECORD = struct.Struct("<QQQIIiBBH")  # rt_log_record: the fixed part of a record
if RECORD.size != LOG_RECORD_SIZE:  # the header changed: this reader would misread every record
    raise ImportError(f"packet log reader expects {RECORD.size}-byte records, the engine writes {LOG_RECORD_SIZE}")
ALIGN = 8  # RT_LOG_ALIGN: each record's bytes are padded to a multiple of this
RECORD_V1 = struct.Struct("<QQQIIiBBBB40s")  # version 1: the first 40 IP bytes in every record
MAX_SNAPLEN = 65535  # a pcap's snap length when the log kept whole packets: the largest IPv4 packet
EVENTS = ("arrive", "depart", "drop")


class LogError(ValueError):
    """Not a packet log, or a damaged one; the message says which."""


@dataclass(frozen=True)
class Record:
    t_ns: int
    sojourn_ns: int
    fseq: int
    node: int
    size: int
    flow: int
    event: str
    reason: str | None
    data: bytes  # the IP packet as recorded (whole, or its first `snaplen` bytes)


def start(engine, path: str, targets, clock: str, cells: list[str] | None = None, snaplen: int = 0) -> dict:
    """Write the header, open the engine's log and mark the cells to log (all cells by default);
    each record keeps the first `snaplen` bytes of its IP packet, or all of them (0)."""
    if snaplen < 0:
        raise LogError(f"--packet-log-snaplen {snaplen}: a number of bytes, or 0 for whole packets")
    nodes, unknown = {}, set(cells or ())
    for t in targets:
        for cell in t.channel["cells"]:
            if cells is None or cell["name"] in cells:
                unknown.discard(cell["name"])
                nodes[str(t.nodes[cell["name"]])] = {"name": cell["name"], "type": cell["type"],
                                                     "channel": t.channel["name"], "instance": t.label,
                                                     "config": cell["config"]}
    if unknown:
        names = sorted({c["name"] for t in targets for c in t.channel["cells"]})
        raise LogError(f"--log-cells: no cell {', '.join(sorted(unknown))}; cells: {', '.join(names)}")
    header = {"format": "rattan packet log", "version": VERSION, "record_size": RECORD.size, "snaplen": snaplen,
              "clock": clock, "epoch_unix_ns": time.time_ns() if clock == "real" else 0, "nodes": nodes}
    data = json.dumps(header).encode()
    try:
        with open(path, "wb") as f:
            f.write(MAGIC + struct.pack("<I", len(data)) + data)
    except OSError as e:  # before anything starts: a usage error, not a crash in the middle
        raise LogError(f"--packet-log {path}: cannot write: {e.strerror}") from None
    engine.open_packet_log(path, snaplen)
    for node in nodes:
        engine.log_node(int(node))
    return header


def read(path: str) -> tuple[dict, Iterator[Record]]:
    """The header and an iterator over the records."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise LogError(f"cannot read {path}: {e.strerror}") from None
    head = f.read(12)
    if len(head) < 12 or head[:8] != MAGIC:
        f.close()
        raise LogError(f"{path} is not a rattan packet log (written by --packet-log)")
    (n,) = struct.unpack("<I", head[8:])
    try:
        header = json.loads(f.read(n))
    except ValueError:
        f.close()
        raise LogError(f"{path}: the header is damaged") from None
    version = header.get("version")
    fixed = {1: RECORD_V1, 2: RECORD}.get(version)
    if fixed is None:
        f.close()
        raise LogError(f"{path}: a version {version} packet log; this rattan reads versions 1 and 2")
    if header.get("record_size") != fixed.size:
        f.close()
        raise LogError(f"{path}: records of {header.get('record_size')} bytes; this rattan reads {fixed.size}")
    return header, (_records(f) if version == 2 else _records_v1(f))


def _record(t, so, fseq, node, size, flow, ev, reason, data: bytes) -> Record:
    return Record(t, so, fseq, node, size, flow, EVENTS[ev] if ev < 3 else str(ev),
                  DROP_REASONS[reason] if ev == 2 and reason < len(DROP_REASONS) else None,
                  data if flow < 0 else _synthetic_header(data, size, flow, fseq))


def _records(f) -> Iterator[Record]:
    """Version 2: each fixed part tells how many bytes follow it; a cut-off last record is left out."""
    with f:
        buf, at = b"", 0
        while chunk := f.read(1 << 20):
            buf, at = buf[at:] + chunk, 0
            while len(buf) - at >= RECORD.size:
                t, so, fseq, node, size, flow, ev, reason, cap = RECORD.unpack_from(buf, at)
                body = at + RECORD.size
                end = body + -(-cap // ALIGN) * ALIGN
                if end > len(buf):
                    break
                yield _record(t, so, fseq, node, size, flow, ev, reason, buf[body:body + cap])
                at = end


def _records_v1(f) -> Iterator[Record]:
    with f:
        while chunk := f.read(RECORD_V1.size * 4096):
            whole = len(chunk) - len(chunk) % RECORD_V1.size  # a cut-off last record is left out
            for t, so, fseq, node, size, flow, ev, reason, hlen, _, hdr in RECORD_V1.iter_unpack(chunk[:whole]):
                yield _record(t, so, fseq, node, size, flow, ev, reason, hdr[:hlen] if hlen else hdr[:8])


def recorded_snaplen(header: dict) -> int:
    """The most IP bytes a record of this log holds (MAX_SNAPLEN when it kept whole packets)."""
    if header.get("version") == 1:
        return 40
    return header.get("snaplen") or MAX_SNAPLEN


def _synthetic_header(hdr: bytes, size: int, flow: int, fseq: int) -> bytes:
    """IPv4/UDP for a synthetic packet: its addresses, its size, the flow as the ports, the
    sequence number as the IP id (the engine records only the addresses)."""
    src, dst = struct.unpack("<II", hdr[:8])
    total = min(size, 65535)
    port = 5000 + (flow & 0x3FFF)
    ip = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, total, fseq & 0xFFFF, 0, 64, 17, 0, src, dst))
    csum = sum(struct.unpack("!10H", ip))
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    ip[10:12] = struct.pack("!H", ~csum & 0xFFFF)
    return bytes(ip) + struct.pack("!HHHH", port, port, max(total - 20, 8), 0)


def _select(header: dict, cell: str | None) -> set[int] | None:
    if cell is None:
        return None
    ids = {int(k) for k, v in header["nodes"].items() if v["name"] == cell or f"{v['channel']}/{v['name']}" == cell}
    if not ids:
        from ..diagnostics import did_you_mean
        names = sorted({v["name"] for v in header["nodes"].values()})
        sugg = did_you_mean(cell, names + sorted({f"{v['channel']}/{v['name']}" for v in header["nodes"].values()}))
        raise LogError(f"no cell `{cell}` in the log; " + (f"did you mean `{sugg}`? " if sugg else "")
                       + f"logged cells: {', '.join(names) or 'none'}")
    return ids


def summary(path: str, cell: str | None = None) -> list[dict]:
    """Per logged cell (or only `cell`): arrivals, departures, drops by reason, and time spent
    (p50, p99, max)."""
    header, records = read(path)
    keep = _select(header, cell)
    count: dict[int, Counter] = {int(k): Counter() for k in header["nodes"]}
    sojourn: dict[int, list[int]] = {int(k): [] for k in header["nodes"]}
    for r in records:
        if keep is not None and r.node not in keep:
            continue
        c = count.setdefault(r.node, Counter())
        c[r.event] += 1
        if r.reason:
            c["drop:" + r.reason] += 1
        if r.event == "depart":
            sojourn.setdefault(r.node, []).append(r.sojourn_ns)
    out = []
    for node, meta in header["nodes"].items():
        if keep is not None and int(node) not in keep:
            continue
        c, s = count[int(node)], sorted(sojourn[int(node)])
        q = (lambda p: s[min(len(s) - 1, int(p * len(s)))] / 1e6) if s else (lambda p: 0.0)
        out.append({"cell": meta["name"], "channel": meta["channel"], "instance": meta["instance"],
                    "type": meta["type"], "arrived": c["arrive"], "departed": c["depart"], "dropped": c["drop"],
                    "dropped_by_reason": {k[5:]: v for k, v in c.items() if k.startswith("drop:")},
                    "sojourn_ms": {"p50": q(0.5), "p99": q(0.99), "max": s[-1] / 1e6 if s else 0.0}})
    return out


def to_csv(path: str, out: str, cell: str | None = None) -> int:
    header, records = read(path)
    keep = _select(header, cell)
    n = 0
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_ns", "channel", "instance", "cell", "event", "reason", "size", "flow", "fseq", "sojourn_ns",
                    "src", "dst", "proto"])
        for r in records:
            if keep is not None and r.node not in keep:
                continue
            meta = header["nodes"].get(str(r.node), {"name": str(r.node), "channel": "", "instance": ""})
            src = dst = proto = ""
            if len(r.data) >= 20 and r.data[0] >> 4 == 4:
                src, dst, proto = ".".join(map(str, r.data[12:16])), ".".join(map(str, r.data[16:20])), r.data[9]
            w.writerow([r.t_ns, meta["channel"], meta["instance"], meta["name"], r.event, r.reason or "", r.size,
                        r.flow, r.fseq, r.sojourn_ns if r.event == "depart" else "", src, dst, proto])
            n += 1
    return n


def to_pcap(path: str, out: str, cell: str | None = None, event: str = "depart", snaplen: int | None = None) -> int:
    """A pcap (nanosecond timestamps, raw IP link type) of one kind of event: each packet's bytes as
    the log recorded them (whole, unless the log was cut), cut to `snaplen`, with its real length.
    The file header's snaplen says how much any packet holds. For real runs the timestamps are
    wall-clock times."""
    if snaplen is not None and snaplen < 1:
        raise LogError(f"--snaplen {snaplen}: keep at least 1 byte of each packet")
    header, records = read(path)
    recorded = recorded_snaplen(header)
    cap = min(snaplen or recorded, recorded)
    keep = _select(header, cell)
    if keep is None and len(header["nodes"]) > 1:
        names = sorted({v["name"] for v in header["nodes"].values()})
        raise LogError(f"a pcap shows one cell's packets: choose one with --cell ({', '.join(names)})")
    epoch = header.get("epoch_unix_ns", 0)
    n = 0
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, cap, 101))  # LINKTYPE_RAW
        for r in records:
            if r.event != event or (keep is not None and r.node not in keep) or not r.data:
                continue
            ts = epoch + r.t_ns
            data = r.data[:cap]
            f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), max(r.size, len(r.data))))
            f.write(data)
            n += 1
    return n


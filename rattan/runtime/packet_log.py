"""The packet log (`--packet-log PATH`): what chosen cells did with every packet, and `rattan log`.

File layout: the magic `RTNLOG01`, a little-endian u32 length and that many bytes of JSON (format
version, record size, clock, and the name, type, channel and instance of every logged node), then
fixed-size records written by the engine in C (`rt_log_record` in rattan_engine.h): time, time
spent in the node (departures), flow sequence, node, IP size, flow, event, drop reason, and the
first 40 bytes of the IP packet (for a synthetic packet, its addresses, from which readers
synthesize an IPv4/UDP header). Python writes the header and reads the file afterwards; the
engine writes the records, so no packet passes through Python.
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

from ..engine.binding import DROP_REASONS  # the engine's reason codes, in its order

MAGIC = b"RTNLOG01"
RECORDED_BYTES = 40  # IP bytes a record keeps of each packet (RT_LOG_HDR in rattan_engine.h)
RECORD = struct.Struct(f"<QQQIIiBBBB{RECORDED_BYTES}s")
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
    header: bytes


def start(engine, path: str, targets, clock: str, cells: list[str] | None = None) -> dict:
    """Write the header, open the engine's log and mark the cells to log (all cells by default)."""
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
    header = {"format": "rattan packet log", "version": 1, "record_size": RECORD.size, "clock": clock,
              "epoch_unix_ns": time.time_ns() if clock == "real" else 0, "nodes": nodes}
    data = json.dumps(header).encode()
    try:
        with open(path, "wb") as f:
            f.write(MAGIC + struct.pack("<I", len(data)) + data)
    except OSError as e:  # before anything starts: a usage error, not a crash in the middle
        raise LogError(f"--packet-log {path}: cannot write: {e.strerror}") from None
    engine.open_packet_log(path)
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
    if header.get("record_size") != RECORD.size:
        f.close()
        raise LogError(f"{path}: records of {header.get('record_size')} bytes; this rattan reads {RECORD.size}")

    def records() -> Iterator[Record]:
        with f:
            while chunk := f.read(RECORD.size * 4096):
                whole = len(chunk) - len(chunk) % RECORD.size  # a cut-off last record is left out
                for t, so, fseq, node, size, flow, ev, reason, hlen, _, hdr in RECORD.iter_unpack(chunk[:whole]):
                    yield Record(t, so, fseq, node, size, flow, EVENTS[ev] if ev < 3 else str(ev),
                                 DROP_REASONS[reason] if ev == 2 and reason < len(DROP_REASONS) else None,
                                 hdr[:hlen] if hlen else _synthetic_header(hdr, size, flow, fseq))
    return header, records()


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
            if len(r.header) >= 20 and r.header[0] >> 4 == 4:
                src, dst, proto = ".".join(map(str, r.header[12:16])), ".".join(map(str, r.header[16:20])), r.header[9]
            w.writerow([r.t_ns, meta["channel"], meta["instance"], meta["name"], r.event, r.reason or "", r.size,
                        r.flow, r.fseq, r.sojourn_ns if r.event == "depart" else "", src, dst, proto])
            n += 1
    return n


def to_pcap(path: str, out: str, cell: str | None = None, event: str = "depart", snaplen: int | None = None) -> int:
    """A pcap (nanosecond timestamps, raw IP link type) of one kind of event: each packet's bytes as
    the log recorded them (the first RECORDED_BYTES), cut to `snaplen`, with its real length. The
    file header's snaplen says how much any packet holds. For real runs the timestamps are wall-clock
    times."""
    if snaplen is not None and snaplen < 1:
        raise LogError(f"--snaplen {snaplen}: keep at least 1 byte of each packet")
    cap = min(snaplen or RECORDED_BYTES, RECORDED_BYTES)
    header, records = read(path)
    keep = _select(header, cell)
    if keep is None and len(header["nodes"]) > 1:
        names = sorted({v["name"] for v in header["nodes"].values()})
        raise LogError(f"a pcap shows one cell's packets: choose one with --cell ({', '.join(names)})")
    epoch = header.get("epoch_unix_ns", 0)
    n = 0
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, cap, 101))  # LINKTYPE_RAW
        for r in records:
            if r.event != event or (keep is not None and r.node not in keep) or not r.header:
                continue
            ts = epoch + r.t_ns
            data = r.header[:cap]
            f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), max(r.size, len(r.header))))
            f.write(data)
            n += 1
    return n


"""Named extractors: the metrics of a workload command's output (iperf3 -J, ping, curl -w).

Each extractor takes the command's stdout and stderr and returns a flat dict of metrics (numbers, or a
few strings such as the congestion control iperf3 used). Output it cannot read raises ExtractError
whose message says what it expected and how to get it (`run it with -J`). Names carry their unit
(`_bps` bits per second, `_bytes`, `_s`, `_ms`); rates are fractions (0.3, not 30 %).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

Metrics = dict[str, float | int | str]

DEFAULT_MSS = 1448  # Ethernet's 1500 B MTU less IP and TCP headers with timestamps: iperf3's usual MSS


class ExtractError(ValueError):
    """A command's output an extractor cannot read; the message says what was expected."""


def _tail(text: str, limit: int = 300) -> str:
    """The last line(s) of a command's stderr, for a message that says why it printed nothing."""
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _with_stderr(message: str, stderr: str) -> str:
    tail = _tail(stderr)
    return f"{message} (stderr: {tail})" if tail else message


# ---------------------------------------------------------------------------------------------- iperf3

def _iperf3_document(stdout: str, stderr: str) -> dict:
    """iperf3's JSON document: one object (`-J`), or the events of `--json-stream` gathered into one."""
    text = stdout.strip()
    if not text:
        raise ExtractError(_with_stderr("iperf3 printed nothing on stdout: run it with -J", stderr))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = _iperf3_stream(text)
        if doc is None:
            raise ExtractError(_with_stderr("iperf3 output is not JSON: run it with -J", stderr)) from None
    if not isinstance(doc, dict):
        raise ExtractError("iperf3 output is JSON but not an object: run it with -J")
    return doc


def _iperf3_stream(text: str) -> dict | None:
    """The document of `--json-stream` (one {"event", "data"} object a line), or None if not that."""
    doc: dict = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            return None
        if not isinstance(ev, dict) or "event" not in ev:
            return None
        if ev["event"] in ("start", "end", "error"):
            doc[ev["event"]] = ev.get("data")
    return doc or None


def _number(section: dict, key: str) -> float | None:
    v = section.get(key) if isinstance(section, dict) else None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def iperf3(stdout: str, stderr: str = "") -> Metrics:
    """Metrics of an iperf3 `-J` test, client or server side, TCP or UDP.

    Goodput and received bytes come from the receiver's figures, retransmits and sent bytes from the
    sender's. The client's output has both ends (iperf3 exchanges them); a server's only its own end,
    so a server that received (the usual case) has no retransmits and one that sent (`-R`) no goodput.
    With `-R` the client is the receiver: `sum_received` is its own end, `sum_sent` the server's.

    `retransmit_rate` is retransmitted segments per segment of data sent. iperf3 reports the sender's
    retransmits as a count of segments (Linux `tcpi_total_retrans`) and what it sent as application
    bytes, never as segments, so the segments sent are estimated as sent bytes / MSS (`tcp_mss_default`
    of the client's control connection, 1448 B when absent). Equivalently retransmits x MSS / sent
    bytes: an upper bound of retransmitted bytes / sent bytes, since a tail segment may be shorter.
    """
    doc = _iperf3_document(stdout, stderr)
    if doc.get("error"):
        raise ExtractError(_with_stderr(f"iperf3 reported an error: {doc['error']}", stderr))
    end = doc.get("end")
    if not isinstance(end, dict) or not end:
        raise ExtractError("iperf3 output has no `end` section: the test did not finish")
    start = doc.get("start") if isinstance(doc.get("start"), dict) else {}
    protocol = str((start.get("test_start") or {}).get("protocol") or "").upper()
    if not protocol:
        protocol = "UDP" if "jitter_ms" in (end.get("sum") or {}) else "TCP"
    server = "accepted_connection" in start
    sent, received = end.get("sum_sent") or {}, end.get("sum_received") or {}
    if "sum" in end and not received:  # iperf3 before 3.10 reports UDP in one `sum`
        received = end["sum"]
    if server:
        # A server knows only its own end (iperf3 fills the other with zeros): it sent when the client
        # asked for the reverse direction (`-R`); iperf3's `sender` flags are not consistent on UDP.
        if (start.get("test_start") or {}).get("reverse"):
            received = {}
        else:
            sent = {}
    if not sent and not received:
        raise ExtractError("iperf3 output has neither `sum_sent` nor `sum_received` in `end`")

    m: Metrics = {}
    if received:
        bps = _number(received, "bits_per_second")
        if bps is not None:
            if protocol == "UDP" and "sum_received" not in end and not server:
                # a client's old-style `sum` is the sending rate; lost datagrams never arrived
                bps *= 1 - (_number(received, "lost_percent") or 0) / 100
            m["goodput_bps"] = float(bps)
        if _number(received, "bytes") is not None:
            m["received_bytes"] = int(received["bytes"])
    if sent and _number(sent, "bytes") is not None:
        m["sent_bytes"] = int(sent["bytes"])
    seconds = _number(received, "seconds") if received else None
    if seconds is None and sent:
        seconds = _number(sent, "seconds")
    if seconds is not None:
        m["duration_s"] = float(seconds)

    if protocol == "TCP":
        retransmits = _number(sent, "retransmits") if sent else None
        if retransmits is not None:
            m["retransmits"] = int(retransmits)
            mss = _number(start, "tcp_mss_default") or DEFAULT_MSS
            sent_bytes = m.get("sent_bytes") or 0
            m["retransmit_rate"] = retransmits * mss / sent_bytes if sent_bytes else 0.0
        rtts = [s["sender"]["mean_rtt"] for s in end.get("streams") or []
                if isinstance(s.get("sender"), dict) and (_number(s["sender"], "max_rtt") or 0) > 0
                and _number(s["sender"], "mean_rtt") is not None]
        if rtts:  # iperf3 reports microseconds; 0 everywhere means the sender was the remote end
            m["rtt_mean_ms"] = sum(rtts) / len(rtts) / 1000
        for key in ("sender_tcp_congestion", "receiver_tcp_congestion"):
            if isinstance(end.get(key), str):
                m[key] = end[key]
    else:
        udp = end.get("sum_received") or end.get("sum") or received
        for key in ("lost_percent", "jitter_ms"):
            if _number(udp, key) is not None:
                m[key] = float(udp[key])
        for key in ("lost_packets", "packets"):
            if _number(udp, key) is not None:
                m[key] = int(udp[key])
    return m


# ------------------------------------------------------------------------------------------------ ping

_PING_COUNTS = re.compile(
    r"^(?P<tx>\d+) packets transmitted, (?P<rx>\d+) (?:packets )?received"
    r"(?:, \+(?P<dup>\d+) duplicates)?(?:, \+(?P<err>\d+) errors)?, (?P<loss>[\d.]+)% packet loss", re.M)
_PING_RTT = re.compile(
    r"^(?:rtt|round-trip) min/avg/max(?:/(?:mdev|stddev))? = "
    r"(?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+)(?:/(?P<mdev>[\d.]+))? ms", re.M)


def ping(stdout: str, stderr: str = "") -> Metrics:
    """Metrics of Linux iputils ping's summary: counts, loss rate and round-trip times in ms."""
    counts = _PING_COUNTS.search(stdout or "")
    if counts is None:
        raise ExtractError(_with_stderr(
            "ping output has no `N packets transmitted, M received` summary: expected Linux iputils ping "
            "run with a count (`ping -c 3 HOST`)", stderr))
    tx, rx = int(counts["tx"]), int(counts["rx"])
    m: Metrics = {"transmitted": tx, "received": rx, "loss_rate": (tx - rx) / tx if tx else 0.0}
    if counts["dup"]:
        m["duplicates"] = int(counts["dup"])
    if counts["err"]:
        m["errors"] = int(counts["err"])
    rtt = _PING_RTT.search(stdout)
    if rtt is not None:  # absent when nothing came back
        for key in ("min", "avg", "max", "mdev"):
            if rtt[key] is not None:
                m[f"rtt_{key}_ms"] = float(rtt[key])
    return m


# ------------------------------------------------------------------------------------------------ curl

def _curl_metric(name: str, value: float | int) -> tuple[str, float | int]:
    """A curl variable as a metric with its unit in the name: times in s, speeds in bit/s, sizes in B."""
    if name.startswith("time_"):
        return f"{name}_s", float(value)
    if name.startswith("speed_"):  # curl counts bytes per second; Rattan's rates are bits per second
        return f"{name}_bps", float(value) * 8
    if name.startswith("size_"):
        return f"{name}_bytes", int(value)
    return name, value


def _parse_number(text: str) -> float | int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def curl(stdout: str, stderr: str = "") -> Metrics:
    """Every numeric variable curl wrote with `-w '%{json}'` or `-w 'name=%{name}\\n'` lines."""
    text = (stdout or "").strip()
    if not text:
        raise ExtractError(_with_stderr(
            "curl printed nothing on stdout: run it with -o /dev/null -w '%{json}' (or -w 'name=%{name}\\n')",
            stderr))
    fields: dict[str, object] = {}
    # `-w '%{json}'` comes last; with no `-o`, the body may precede it on the same stream
    brace = text.rfind("\n{") + 1 if not text.startswith("{") else 0
    if text[brace:].startswith("{"):
        try:
            doc = json.loads(text[brace:])
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            fields = doc
    if not fields:
        for line in text.splitlines():
            name, eq, value = line.partition("=")
            if eq and re.fullmatch(r"[a-z_]+", name.strip()):
                fields[name.strip()] = value.strip()
    if not fields:
        raise ExtractError(
            "curl output is neither `-w '%{json}'` nor `name=value` lines: run it with "
            "-o /dev/null -w '%{json}'")
    m: Metrics = {}
    for name, value in fields.items():
        if isinstance(value, str):
            value = _parse_number(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        key, v = _curl_metric(name, value)
        m[key] = v
    if not m:
        raise ExtractError("curl output has no numeric variable: write e.g. -w 'time_total=%{time_total}\\n'")
    return m


EXTRACTORS: dict[str, Callable[[str, str], Metrics]] = {"iperf3": iperf3, "ping": ping, "curl": curl}


def extract(name: str, stdout: str, stderr: str = "") -> Metrics:
    """The metrics extractor `name` reads from a command's output; ExtractError if it cannot."""
    fn = EXTRACTORS.get(name)
    if fn is None:
        raise ExtractError(f"unknown extractor `{name}`: extractors are {', '.join(sorted(EXTRACTORS))}")
    return fn(stdout or "", stderr or "")

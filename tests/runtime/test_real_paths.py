"""Real traffic through the shipped examples (root): the LTE bandwidth trace delivers what the trace
allows, millisecond by millisecond, and the multipath channel holds two uploads to its shared
30 Mbit/s bottleneck while routing each reply back to the interface that asked.

Delivered traffic is measured at the receiving endpoint with tcpdump (kernel receive timestamps,
IP sizes from the headers), not from the engine's own bookkeeping."""
from __future__ import annotations

import json
import re
import statistics
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.runtime.conftest import MEDIAN_OVER_MS, SERVER_UP, check_path_delay, ping_times_ms

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LTE_TRACE = EXAMPLES / "traces" / "synthetic-lte.down"
MULTIPATH = EXAMPLES / "multipath.rtn"
MS = 1_000_000  # ns


def rattan_run(path: str, *cmd: str, right: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    args = [*RATTAN, "run", path] + (["--right", right] if right else []) + ["--", *cmd]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


# Shell fragments for the commands run inside the namespaces. tcpdump writes kernel receive
# timestamps in ns; it is started in the background, waited for until it listens, and stopped by
# its PID. Everything else is bounded by `timeout`; rattan stops whatever is left in its namespaces.
CAPTURE = """
IF=$({ns} ip -o -4 addr show | awk '$2 != "lo" {{print $2; exit}}')
{ns} tcpdump -Z root --immediate-mode -B 16384 -s 64 -n -Q in -i "$IF" --time-stamp-precision=nano \
    -w {dir}/{name}.pcap 2>{dir}/{name}.err & TCPDUMP=$!
i=0; until grep -q listening {dir}/{name}.err 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.05; done
"""
STOP_CAPTURE = """
sleep 0.3; kill -INT $TCPDUMP; wait $TCPDUMP
"""


def read_pcap(path: Path) -> list[tuple[int, int, int, int]]:
    """(receive time in ns, IP total length, IP protocol, source address) of every IPv4 frame in
    a nanosecond-resolution Ethernet pcap file."""
    data = path.read_bytes()
    magic, = struct.unpack("<I", data[:4])
    assert magic == 0xA1B23C4D, f"{path}: not a little-endian nanosecond pcap file ({magic:#x})"
    assert struct.unpack("<I", data[20:24])[0] == 1, "not an Ethernet capture"
    out, off = [], 24
    while off + 16 <= len(data):
        sec, nsec, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
            length, = struct.unpack("!H", frame[16:18])
            src, = struct.unpack("!I", frame[26:30])
            out.append((sec * 10**9 + nsec, length, frame[23], src))
    return out


def capture_stats(err: Path) -> tuple[int, int]:
    """(packets captured, packets dropped by the kernel) from tcpdump's closing report."""
    text = err.read_text()
    captured = re.search(r"(\d+) packets? captured", text)
    dropped = re.search(r"(\d+) packets? dropped by kernel", text)
    assert captured and dropped, text
    return int(captured.group(1)), int(dropped.group(1))


def iperf3_result(path: Path) -> dict:
    result = json.loads(path.read_text())
    assert "error" not in result, f"{path.name}: {result['error']}"
    return result["end"]


def ipv4(address: str) -> int:
    a, b, c, d = (int(x) for x in address.split("."))
    return a << 24 | b << 16 | c << 8 | d


# ------------------------------------------------------------------ bw_trace with the LTE trace

def mahimahi_opportunities(path: Path) -> tuple[list[int], int]:
    """Delivery opportunities per millisecond of one trace period, and the period in ms (the last
    line's time: the trace repeats with that period, its time P being the next period's 0)."""
    times = [int(line) for line in path.read_text().split()]
    period = times[-1]
    per_ms = [0] * period
    for t in times:
        per_ms[t % period] += 1
    return per_ms, period


def fit_trace_phase(per_ms: list[int], period: int, used: dict[int, float],
                    windows: list[tuple[int, int]]) -> tuple[int, float]:
    """The trace millisecond that receive millisecond 0 corresponds to, found by matching the
    opportunities seen used in each millisecond of the saturated windows against the trace over
    every phase (coarse: 50 ms blocks, squared error; then 1 ms, absolute error); and the share of
    those milliseconds where the receiver saw exactly what the trace allows at that phase."""
    block = 50
    prefix = [0]
    for i in range(2 * period):
        prefix.append(prefix[-1] + per_ms[i % period])
    blocks = [(j, min(j + block, b + 1)) for a, b in windows for j in range(a, b + 1, block)]
    seen = [sum(used.get(m, 0.0) for m in range(j, k)) for j, k in blocks]

    def coarse(s: int) -> float:
        return sum((o - (prefix[s + k] - prefix[s + j])) ** 2 for o, (j, k) in zip(seen, blocks))

    best = sorted(range(period), key=coarse)[:5]
    valid = [m for a, b in windows for m in range(a, b + 1)]

    def fine(s: int) -> float:
        return sum(abs(used.get(m, 0.0) - per_ms[(s + m) % period]) for m in valid)

    phase = min({(s + d) % period for s in best for d in range(-block, block + 1)}, key=fine)
    exact = sum(1 for m in valid if abs(used.get(m, 0.0) - per_ms[(phase + m) % period]) < 1e-9)
    return phase, exact / len(valid)


def window_agreement(per_ms: list[int], period: int, used: dict[int, float], windows: list[tuple[int, int]],
                     phase: int, width: int = 100, within: float = 0.1) -> float:
    """The share of `width`-ms spans of the saturated windows where the receiver saw what the trace
    allows at that phase, to within `within` (a link at the trace's mean rate: 18-23 % for spans of
    20-500 ms)."""
    spans = [(j, j + width) for a, b in windows for j in range(a, b + 1 - width, width)]
    allowed = [sum(per_ms[(phase + m) % period] for m in range(j, k)) for j, k in spans]
    seen = [sum(used.get(m, 0.0) for m in range(j, k)) for j, k in spans]
    return sum(1 for a, u in zip(allowed, seen) if abs(u - a) <= within * a) / len(spans)


# The queue holds a third of a second or more of the trace, so that a sender briefly starved of CPU
# (this machine may be busy) does not let the link idle: every opportunity in a run finds a packet.
BW_TRACE = """
channel lte {{
    endpoints left, right
    left -> pass {{}} -> right
    right -> bw_trace {{ trace = "{trace}", queue = droptail {{ bytes = 900KB }} }} -> left
}}
"""

# The cell counts IP bytes (plus `overhead`, 0 here) against 1500 per opportunity, and sends whole
# packets: one that does not fit in what is left of an opportunity waits for the next. The sizes
# sent divide 1500 so that this and Mahimahi (which splits packets over opportunities) allow the
# same: 1500 B, one packet per opportunity; 750 B, two (one if frame bytes were counted).
UDP_PAYLOAD = {1500: 1472, 750: 722}


def test_bw_trace_delivers_what_the_lte_trace_allows(tmp_path, record_property):
    """Saturated downlink through `bw_trace` with the example LTE trace: at the receiver, the bytes
    between the first and the last packet of each run are at most 3 % over 1500 bytes per trace
    opportunity in that interval (and not far under it), and those of most 100-ms spans are within
    10 % of it (the trace's phase is fitted from the receive times)."""
    per_ms, period = mahimahi_opportunities(LTE_TRACE)
    path = tmp_path / "lte.rtn"
    path.write_text(BW_TRACE.format(trace=LTE_TRACE))
    runs = "".join(
        f"timeout 20 iperf3 -c $RATTAN_RIGHT_IP -u -R -b 40M -l {payload} -t 3 -J > {tmp_path}/{size}.json;"
        " sleep 0.5\n"
        for size, payload in UDP_PAYLOAD.items())
    script = SERVER_UP + CAPTURE.format(ns="", dir=tmp_path, name="rx") + runs + STOP_CAPTURE
    r = rattan_run(str(path), "sh", "-c", script, right="iperf3 -s >/dev/null")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    captured, dropped = capture_stats(tmp_path / "rx.err")
    assert dropped == 0 and captured > 1000, (captured, dropped)
    for size in UDP_PAYLOAD:  # the sender ran above the trace's peak (24 Mbit/s) all along
        sent = iperf3_result(tmp_path / f"{size}.json")["sum"]
        assert sent["lost_percent"] > 20, sent

    packets = read_pcap(tmp_path / "rx.pcap")
    data = [p for p in packets if p[2] == 17 and p[1] in UDP_PAYLOAD]
    # The engine sends at whole trace milliseconds from its start: receive times share one
    # sub-millisecond offset (plus a few microseconds of latency); number the milliseconds from it.
    fraction = Counter((t % MS) // 50_000 for t, *_ in data).most_common(1)[0][0] * 50_000 + 25_000
    origin = data[0][0] - (data[0][0] - fraction) % MS
    def ms(t: int) -> int:
        return (t - origin + MS // 2) // MS
    used: Counter[int] = Counter()
    for t, length, *_ in data:
        used[ms(t)] += length / 1500
    runs_seen = {}
    for size in UDP_PAYLOAD:
        times = [t for t, length, *_ in data if length == size]
        runs_seen[size] = (times[0], times[-1])
    windows = [(ms(a), ms(b)) for a, b in runs_seen.values()]
    phase, exact = fit_trace_phase(per_ms, period, used, windows)
    agree = window_agreement(per_ms, period, used, windows, phase)

    report, errors = [], {}
    for size, (first, last) in runs_seen.items():
        delivered = sum(length for t, length, *_ in packets if first <= t <= last)  # all IP bytes
        allowed = 1500 * sum(per_ms[(phase + m) % period] for m in range(ms(first), ms(last) + 1))
        errors[size] = delivered / allowed - 1
        report.append(f"{size} B packets: {delivered} B delivered in {(last - first) / 1e9:.3f} s, "
                      f"the trace allows {allowed} B ({100 * errors[size]:+.2f} %)")
    report = (f"trace phase {phase} ms, {exact:.1%} of the milliseconds and {agree:.1%} of the 100-ms spans "
              "as in the trace; " + "; ".join(report))
    print(report)
    for size, error in errors.items():
        record_property(f"error_{size}B", error)
    record_property("exact_ms_share", exact)
    record_property("span_100ms_share", agree)
    # Never more than the trace allows. Less when the sender, short of CPU for longer than the queue
    # lasts, let the link idle: -0.8 to 0 % over 10 runs with one core hogged, -8.7 % once with the
    # machine loaded further (load average 10).
    assert all(-0.15 <= e <= 0.03 for e in errors.values()), report
    # The link follows the trace's shape. Millisecond by millisecond it does when it has a CPU (96-100 %
    # of the milliseconds as in the trace, idle), but with one core hogged 31-100 % over 10 runs: a
    # forwarding thread that waited for a CPU sends late. That figure is printed, not asserted; spans
    # of 100 ms show the shape (a constant rate gets 20 %): 92-100 % over those runs.
    assert agree >= 0.5, report


# ------------------------------------------------------------------ the multipath example

MULTIPATH_SCRIPT = """
D={dir}
NS=$(ip netns identify $$); PREFIX=${{NS%-wifi}}
echo "$RATTAN_WIFI_IP $RATTAN_WIRED_IP" > $D/addresses
SERVER="ip netns exec ${{RATTAN_SERVER_NETNS:-$PREFIX-server}}"
WIRED="ip netns exec ${{RATTAN_WIRED_NETNS:-$PREFIX-wired}}"
ping -c 10 -i 0.1 -W 2 $RATTAN_SERVER_IP > $D/ping-wifi.txt; echo $? > $D/ping-wifi.rc
$WIRED ping -c 10 -i 0.1 -W 2 $RATTAN_SERVER_IP > $D/ping-wired.txt; echo $? > $D/ping-wired.rc
{capture}
$SERVER timeout 30 iperf3 -s -1 -p 5201 -J > $D/server-wifi.json & S1=$!
$SERVER timeout 30 iperf3 -s -1 -p 5202 -J > $D/server-wired.json & S2=$!
i=0; until [ $($SERVER ss -ltnH | grep -cE ':520[12] ') -ge 2 ] || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.05; done
timeout 30 iperf3 -c $RATTAN_SERVER_IP -p 5201 -t 5 -J > $D/client-wifi.json & C1=$!
$WIRED timeout 30 iperf3 -c $RATTAN_SERVER_IP -p 5202 -t 5 -J > $D/client-wired.json & C2=$!
wait $C1 $C2 $S1 $S2
{stop}
"""


def ping_rtts(out: str) -> list[float]:
    assert " 0% packet loss" in out, out
    return ping_times_ms(out)


def test_multipath_shares_the_bottleneck_and_routes_replies_back(tmp_path, record_property):
    """wifi and wired both reach the server (each reply routed back to its own interface: wifi's
    through its extra 3 ms); two simultaneous TCP uploads together get at most the shared
    30 Mbit/s, each a part of it; at the server the uplink carries 30 Mbit/s of IP bytes."""
    script = MULTIPATH_SCRIPT.format(dir=tmp_path, capture=CAPTURE.format(ns="$SERVER", dir=tmp_path, name="srv"),
                                     stop=STOP_CAPTURE)
    r = rattan_run(str(MULTIPATH), "sh", "-c", script)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    for ep in ("wifi", "wired"):
        assert (tmp_path / f"ping-{ep}.rc").read_text().strip() == "0", (tmp_path / f"ping-{ep}.txt").read_text()
    wired = ping_rtts((tmp_path / "ping-wired.txt").read_text())
    wifi = ping_rtts((tmp_path / "ping-wifi.txt").read_text())
    check_path_delay(wired, 30.0, record_property, "wired")  # 15 ms each way
    # and 3 ms (2 ms Pareto jitter) on the air, 3 ms on the way back: 35.1-39.8 ms at the fastest
    # over 10 runs with one core hogged (the mean, which the jitter's long tail moves, reached 59.8)
    wifi_min, wifi_median = min(wifi), statistics.median(wifi)
    record_property("wifi_min_ms", wifi_min)
    record_property("wifi_median_ms", wifi_median)
    assert 33.0 <= wifi_min and wifi_median < 36.0 + MEDIAN_OVER_MS, wifi

    goodput = {ep: iperf3_result(tmp_path / f"server-{ep}.json")["sum_received"]["bits_per_second"]
               for ep in ("wifi", "wired")}
    combined = sum(goodput.values())
    record_property("goodput_min_bps", min(goodput.values()))
    record_property("combined_bps", combined)
    assert all(g > 1e6 for g in goodput.values()), goodput
    # 25.6-28.4 Mbit/s over 10 runs with one core hogged (idle: 28.4)
    assert 20e6 <= combined <= 30e6, goodput

    # On the wire at the server, while both uploads run (after their first second), the shared
    # link delivers 30 Mbit/s of IP bytes; a TCP backoff may leave it idle for a moment, never above.
    captured, dropped = capture_stats(tmp_path / "srv.err")
    assert dropped == 0, (captured, dropped)
    wifi_ip, wired_ip = (tmp_path / "addresses").read_text().split()
    senders = {ipv4(wifi_ip): "wifi", ipv4(wired_ip): "wired"}
    packets = [p for p in read_pcap(tmp_path / "srv.pcap") if p[3] in senders and p[2] == 6]
    spans = {ep: [t for t, length, _, src in packets if senders[src] == ep and length > 1000] for ep in senders.values()}
    start = max(ts[0] for ts in spans.values()) + 10**9
    end = min(ts[-1] for ts in spans.values())
    assert end - start > 2 * 10**9, (start, end)
    inside = [(length, senders[src]) for t, length, _, src in packets if start < t <= end]
    rate = 8 * sum(length for length, _ in inside) / ((end - start) / 1e9)
    each = {ep: 8 * sum(length for length, e in inside if e == ep) / ((end - start) / 1e9) for ep in senders.values()}
    print(f"ping wired {min(wired)}/{statistics.median(wired)} ms, wifi {wifi_min}/{wifi_median} ms; goodput "
          + ", ".join(f"{ep} {g / 1e6:.2f}" for ep, g in goodput.items())
          + f", combined {combined / 1e6:.2f} Mbit/s; on the wire {rate / 1e6:.3f} Mbit/s ("
          + ", ".join(f"{ep} {v / 1e6:.2f}" for ep, v in each.items()) + ")")
    record_property("wire_bps", rate)
    record_property("wire_min_each_bps", min(each.values()))
    assert 20e6 <= rate <= 30e6 * 1.005, each  # 26.9-30.0 Mbit/s over 10 runs with one core hogged
    assert all(v > 1e6 for v in each.values()), each

"""How the real-time loop sleeps and sends (root): `--precise` measures its stretch at start and
spins before departures; batched sends keep every frame and carry several, of several ports, per
system call. Timing figures themselves are benchmarks/real_timing.py's."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.runtime.conftest import check_path_delay, ping_times_ms

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

CHANNEL = """
channel c {{
    endpoints left, right
    left -> {up} -> right
    right -> {down} -> left
}}
"""


def channel_run(up: str, down: str, offload: str | None = None, **kw):
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.run import ChannelRun
    comp = compile_text(CHANNEL.format(up=up, down=down), "timing.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    if offload:
        plan["run"]["offload"] = offload
    return ChannelRun(plan, choose_channel(plan, None), **kw)


def ping(ns: str, address: str, count: int, interval: str = "0.01") -> list[float]:
    out = subprocess.run(["ip", "netns", "exec", ns, "ping", "-n", "-c", str(count), "-i", interval, "-W", "1", address],
                         capture_output=True, text=True, timeout=60).stdout
    return ping_times_ms(out)


def tx_packets(ns: str, ifname: str) -> int:
    """Frames the interface sent (the kernel's count: what the engine's send calls handed it)."""
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", "dev", ifname],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["packets"]


# Precise-mode lateness of 100 ping frames (engine count) on this 2-core machine while other test
# suites and builds ran (load average 4-5): median 3 us, p99 81 us, once 5.9 ms (14 frames over 1 ms:
# the engine thread preempted); default mode median 30-44 us. Only the median is asserted, loosely.
PRECISE_P50_US = 100.0


def test_precise_mode_measures_its_stretch_and_spins_up_to_each_departure(record_property):
    with channel_run("delay { delay = 2ms }", "delay { delay = 2ms }", precise=True) as live:
        timing = live.timing()
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        rtts = ping(left.netns, right.address, 50)
        after, late = live.timing(), live.lateness()
    record_property("stretch_us", timing["stretch_ns"] / 1000)
    record_property("calib_p50_us", timing["calib_p50_ns"] / 1000)
    record_property("precise_p99_us", late.quantile_us(0.99))
    assert timing["precise"] == 1
    # the p99 of a few hundred timer sleeps: at least their median, and a machine's wake-up
    # latency, not a guess (15-110 us on these VMs)
    assert 0 < timing["calib_p50_ns"] <= timing["stretch_ns"] < 2_000_000
    assert len(rtts) == 50 and late.sent == 100
    check_path_delay(rtts, 4.0, record_property)  # spinning never sends before a frame's time
    # departures were reached by spinning: the timer woke the loop early, and it read the clock (not
    # every one on a loaded machine, where a wake-up can come later than the stretch: 17 of 100 once)
    assert after["spin_ns"] > 0 and after["early_wakeups"] > 0
    assert late.quantile_us(0.5) < PRECISE_P50_US


def test_default_mode_does_not_spin_and_learns_how_early_to_arm():
    with channel_run("delay { delay = 2ms }", "delay { delay = 2ms }") as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        rtts = ping(left.netns, right.address, 100, interval="0.005")
        timing, late = live.timing(), live.lateness()
    assert len(rtts) == 100 and late.sent == 200
    assert timing["precise"] == 0 and timing["spin_ns"] == 0 and timing["stretch_ns"] == 0
    # the least wake-up latency of the timer wake-ups seen (each frame of the 200 has one)
    assert 0 < timing["margin_ns"] < 2_000_000
    assert min(rtts) >= 4.0  # armed early, it still never sends early


def test_batched_sends_keep_every_frame_and_carry_several_ports_per_call(record_property):
    """A TCP transfer through `bw`: data one way, ACKs the other. Every frame the graph delivered
    to an endpoint was sent (the engine's count, and the kernel's count of what the veths sent),
    calls carried several frames each, and some carried frames of both ports."""
    # plain mode: MTU-sized frames, several due at a wake-up (a GSO super-frame takes 2.6 ms at 200 Mbit/s)
    with channel_run("bw { rate = 200Mbps }", "bw { rate = 200Mbps }", offload="plain") as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        ns, ifs = live.net.engine_netns, (left.engine_ifname, right.engine_ifname)
        before = {i: tx_packets(ns, i) for i in ifs}
        t0 = live.timing()
        server = subprocess.Popen(["ip", "netns", "exec", right.netns, "iperf3", "-s", "-1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            client = subprocess.run(["ip", "netns", "exec", left.netns, "iperf3", "-c", right.address, "-t", "2"],
                                    capture_output=True, text=True, timeout=30)
            server.wait(10)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert client.returncode == 0, client.stdout + client.stderr
        time.sleep(0.2)  # the last frames (FIN, its ACK) through the bw cells
        live.engine.stop()
        t1 = live.timing()
        late = {n: live.engine.lateness(live.nodes[n]) for n in ("left", "right")}
        counters = {n: live.engine.counters(live.nodes[n]) for n in ("left", "right")}
        sent_by_kernel = {i: tx_packets(ns, i) - before[i] for i in ifs}
    calls, frames = t1["tx_calls"] - t0["tx_calls"], t1["tx_frames"] - t0["tx_frames"]
    record_property("frames_per_call", frames / calls)
    for name, ifname in zip(("left", "right"), ifs):
        assert late[name].sent == counters[name].delivered_packets  # every frame delivered was sent
        assert sent_by_kernel[ifname] == late[name].sent  # ... and the interface sent each one
    assert frames == sum(x.sent for x in late.values()) - t0["tx_frames"]
    # several frames a call (frames == calls exactly: a call per frame, the timing before batching).
    # Measured 1.14-1.31 frames a call on an idle machine and down to 1.049 with a CPU hog on one core,
    # so the bound only says that calls are shared at all
    assert frames > calls
    # calls that carried frames of both ports counted once for each
    assert sum(x.tx_calls for x in late.values()) > t1["tx_calls"]


def test_precise_flag_of_rattan_run(tmp_path):
    path = tmp_path / "p.rtn"
    path.write_text(CHANNEL.format(up="delay { delay = 1ms }", down="pass {}"))
    r = subprocess.run([sys.executable, "-m", "rattan", "run", str(path), "--precise", "--", "sh", "-c",
                        "ping -c 3 -i 0.05 $RATTAN_RIGHT_IP"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "rattan: precise timing: the engine spins the last" in r.stderr, r.stderr


RECEIVER = """
import json, socket, struct, sys, time
n, port = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_TIMESTAMPNS", 35), 1)  # Linux: 35
s.bind(("0.0.0.0", port))
s.settimeout(5)
print("ready", flush=True)
got = []
try:
    while len(got) < n:
        data, anc, _, _ = s.recvmsg(2048, 64)
        sec, nsec = struct.unpack("qq", anc[0][2][:16])  # the kernel's receive time: the engine's send
        seq, sent = struct.unpack("!IQ", data[:12])
        got.append((seq, sent, sec * 1_000_000_000 + nsec))
except socket.timeout:
    pass
print(json.dumps(got), flush=True)
"""

SENDER = """
import socket, struct, sys, time
n, port, size, dst = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
pad = bytes(size - 12)
for i in range(n):  # each with its send time (CLOCK_REALTIME), taken before it entered the kernel
    s.sendto(struct.pack("!IQ", i, time.time_ns()) + pad, (dst, port))
"""


def udp_burst(live, n: int, payload: int, release=None) -> tuple[int, list[tuple[int, int, int]]]:
    """`n` datagrams left -> right as fast as Python sends them, then `release()` called (if given,
    after they are queued): when it was called (CLOCK_REALTIME ns) and each datagram's (sequence,
    send time, kernel receive time) at the receiver."""
    left, right = live.net.endpoints["left"], live.net.endpoints["right"]
    rx = subprocess.Popen(["ip", "netns", "exec", right.netns, sys.executable, "-c", RECEIVER, str(n), "9000"],
                          stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "ready"
        tx = subprocess.run(["ip", "netns", "exec", left.netns, sys.executable, "-c", SENDER, str(n), "9000",
                             str(payload), right.address], capture_output=True, text=True, timeout=30)
        assert tx.returncode == 0, tx.stderr
        released = time.time_ns()
        if release:
            time.sleep(0.2)  # every datagram into the stopped link's queue
            released = time.time_ns()
            release()
        out, _ = rx.communicate(timeout=30)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    return released, [tuple(x) for x in json.loads(out)]


def test_a_paced_cells_departures_share_wake_ups_never_early_at_its_exact_rate():
    """A burst queued behind a stopped `bw` (a paced cell: x-rattan.departures), then the link set to
    500 Mbit/s: departures 22.4 us apart, so with the default slack (at most 50 us, two intervals of 22.4) about three share
    a timer wake-up. No datagram reaches the receiver before the link could have sent it since it was
    started, and the burst drains at the cell's rate."""
    n, payload, rate = 2000, 1372, 500e6
    ser_ns = (payload + 28) * 8 / rate * 1e9  # the IP packet's time on the link: 22.4 us
    with channel_run("bw { rate = 0bps }", "pass {}") as live:
        bw = next(c["name"] for c in live.channel["cells"] if c["type"] == "bw")
        t0 = live.timing()
        started, got = udp_burst(live, n, payload, lambda: live.engine.set(live.nodes[bw], "rate", rate))
        t1 = live.timing()
        late = live.lateness()
    assert [x[0] for x in got] == list(range(n))  # none lost (an unbounded queue), in order
    # the engine's own count: no frame left before its logical time, the slack notwithstanding
    assert late.sent == n and late.early == 0
    # ... and the receiver's: the i-th left (i + 1) sends after the link was started, or later (1 us
    # for the clocks; this catches only sends earlier than the change's wake-up latency, 0.1-0.2 ms)
    early = [(i, started + (i + 1) * ser_ns - ts) for i, _, ts in got if ts < started + (i + 1) * ser_ns - 1000]
    assert not early, early[:5]
    # ... and the link kept up with its rate: the last one left about n sends after the start. Under
    # other tests and CPU hogs the engine thread, preempted, fell 2-8 ms behind on this 45 ms burst (and
    # caught up in batches), so the bound is loose
    assert got[-1][2] - started <= n * ser_ns * 1.02 + 30_000_000, (got[-1][2] - started) / (n * ser_ns)
    # departures shared timer wake-ups: about n / 3 of them with the slack; without it (slack_ns=0)
    # each departure has one of its own on a quiet machine (the coalescing window is a few us there)
    wakeups = t1["timer_wakeups"] - t0["timer_wakeups"]
    assert wakeups < 0.7 * n, wakeups

"""Benchmark: rattan on real packets against the kernel's own forwarding between namespaces.

Measures, in one run, between a client and a server namespace joined by veths:
  kernel   the kernel routing between them: client <-veth-> middle namespace (ip_forward=1)
           <-veth-> server, with the settings rattan applies (transmit checksumming, and with it
           TSO, off on the endpoint veths, so frames are at most 1514 bytes; IPv6 off; static
           neighbours);
  pass     rattan with a `pass` cell each way: the engine's own cost on real packets;
  bw       rattan with `bw { rate = 1Gbps }` each way;
  delay    rattan with `delay { delay = 5ms }` each way.
For kernel, pass and bw: iperf3 TCP goodput (one stream, first second omitted), 64-byte UDP sent
as fast as iperf3 can (packets per second the server received, and loss), and idle ping RTT
(average and p99 of the individual replies; added RTT is rattan's minus the kernel's). TCP and
UDP run in rounds that visit the paths in turn, and ratios to the kernel are taken round by round,
because the sender, receiver and forwarder share two cores and figures move with any other load.
For rattan, the engine thread's time on a CPU and waiting for one (run queue) during TCP tells
whether the CPU bounded the figure.

1 Gbit/s accuracy, on two bases: the bw cell serializes IP packets (frame minus the 14-byte
Ethernet header; see stdlib_cells/bw), so 1448 bytes of TCP payload per 1500-byte packet (MTU 1500,
timestamps on) give an expected goodput of 1 Gbit/s x 1448 / 1500; and the bw cell's counters give
the rate of IP bytes it sent while the transfer ran.

Delay error: tcpdump (nanosecond kernel timestamps) on the forwarder's side of the client's veth,
where the engine takes the kernel receive time it plans each departure from (arrival + 5 ms), and
on the server's veth, while iperf3 sends 500 Mbit/s of UDP; packets are matched by iperf3's UDP
header (send time, sequence number). Transit minus the delay set is the lateness; it holds one
veth hop, and the same measure through the kernel and through `pass` shows the floor.

The kernel runs twice: with rattan's settings (`tx off`: frames of at most 1514 bytes) and with
the kernel's default offloads (TSO/GRO: 64 KB super-frames cross it whole); ratios are taken round
by round to both.

Real-time scaling (--scaling, or --only-scaling): 1, 2, 4, 8 and 16 instances of the `bw` channel
in one run (one engine, as `rattan run -n N`), one TCP stream through each at once: the aggregate
goodput, each path's against 1 Gbit/s x 1448/1500, and each path's lateness p99 (the engine's count
at the server's endpoint); the highest count that holds every path within 2 % with p99 under
1 ms, printed with the machine's core count. It stops after the first count that does not hold
(--scaling-all: measure every count).

Run as root: python benchmarks/real_forwarding.py [--quick] [--json] [--scaling | --only-scaling]
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from rattan.compiler import compile_text
from rattan.engine.binding import Lateness, netdev_tune
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.channel import choose_channel
from rattan.runtime.netns import NETNS_DIR, STATE_DIR, stop_inside
from rattan.runtime.run import ChannelRun, LiveRun, in_namespace

MTU = 1500
TCP_PAYLOAD = MTU - 20 - 20 - 12  # IP, TCP, timestamps option
DELAY_NS = 5_000_000
PORT = 5201
LOAD = "500M"  # iperf3 -b: the UDP load under which one-way transit is measured
# One-way transit: (path, delay set, iperf3 --pacing-timer in us, with captures). Paced every 100 us,
# iperf3 sends about 4 packets at a time and lateness is the engine's timing; at its default 1 ms,
# bursts of 45 packets arrive within microseconds and the last of each waits for the engine to send
# the others. Without captures, only the engine's own count of lateness, undisturbed by tcpdump.
TRANSITS = [("kernel", 0, 100, True), ("pass", 0, 100, True), ("delay", DELAY_NS, 100, True),
            ("delay", DELAY_NS, 100, False), ("pass", 0, 1000, True), ("delay", DELAY_NS, 1000, True)]
NUD_PERMANENT = 0x80

CHANNEL = """
channel c {{
    endpoints left, right
    left -> {cell} -> right
    right -> {cell} -> left
}}
"""
CELLS = {
    "pass": "pass {}",
    "bw": "bw { rate = 1Gbps, queue = droptail { packets = 2000 } }",
    "delay": "delay { delay = 5ms }",
}


class OtherLoad:
    """CPU time used by processes other than this one and its children while the benchmark runs
    (with what exited processes left to their parents), as a share of all CPUs: a sign that
    something else perturbed the figures. Kernel threads (ksoftirqd carries our own packets) are
    left out."""

    def __init__(self) -> None:
        self.t0, self.s0 = time.monotonic(), self._read()

    @staticmethod
    def _read() -> dict[tuple[int, int], int]:
        me, out = os.getpid(), {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    v = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(pid) == me or int(v[1]) in (me, 2) or int(pid) == 2:
                continue
            out[(int(pid), int(v[19]))] = sum(int(x) for x in v[11:15])  # utime stime cutime cstime
        return out

    def share(self) -> float:
        """Their CPU time since this object was made, as a share of all CPUs."""
        s1, dt = self._read(), time.monotonic() - self.t0
        ticks = sum(t - self.s0.get(key, 0) for key, t in s1.items())
        # a process that exited handed its whole time to its parent: take back what came before
        ticks -= sum(t for key, t in self.s0.items() if key not in s1)
        return max(0, ticks) / os.sysconf("SC_CLK_TCK") / dt / os.cpu_count()


def log(msg: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Terminated(Exception):
    """SIGTERM arrived: unwind, stop what was started and remove the namespaces."""


MAIN_PID = os.getpid()


def on_sigterm(signum, frame):
    """SIGTERM unwinds the benchmark as Ctrl-C does."""
    # pyroute2 forks a helper for each namespace socket and stops it with SIGTERM; the helper
    # inherits this handler, and raising there would unwind (and tear down) a copy of our stack.
    if os.getpid() != MAIN_PID:
        os._exit(128 + signum)
    raise Terminated()


# ---------------------------------------------------------------- paths under test
@dataclass
class Path:
    """One path under test: where the client and server run, where packets enter the forwarder."""
    name: str
    client_ns: str           # netns paths
    server_ns: str
    server_ip: str
    server_if: str
    forwarder_ns: str        # the forwarder's side of the client's veth (engine or middle namespace)
    forwarder_if: str
    live: ChannelRun | None = None
    engine_tids: list[int] = field(default_factory=list)
    bw_node: int | None = None  # rattan bw: the cell on the client -> server direction
    procs: list = field(default_factory=list)
    app_cpus: frozenset | None = None  # where the commands run (None: anywhere), as `rattan run --app-cpus`

    def start(self, side: str, argv: list[str], **kw) -> subprocess.Popen:
        """A command in the namespace of "client", "server" or the netns path `side`, remembered
        to be stopped by PID."""
        ns = self.client_ns if side == "client" else self.server_ns if side == "server" else side
        p = in_namespace(ns, argv, dict(os.environ), cpus=self.app_cpus, **kw)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        """Stop every process started on this path (those still running)."""
        for p in self.procs:
            stop(p)
        self.procs.clear()


def stop(p: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL, one process we started."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextmanager
def netns_lock():
    """rattan's registry lock: creating a namespace may remount /run/netns and hide one that a
    concurrent rattan run creates at that moment, so builds and removals take turns."""
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(os.path.join(STATE_DIR, "lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def remove_stale_kernel_paths() -> None:
    """Namespaces a killed run of this benchmark left (its commands died with it: PDEATHSIG)."""
    from pyroute2 import netns
    with netns_lock():
        for name in netns.listnetns():
            m = re.fullmatch(r"rtbench-(\d+)-\w+", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                stop_inside([name])
                netns.remove(name)


@contextmanager
def kernel_path(offloads: bool = False):
    """client <-veth-> middle (routes, ip_forward=1) <-veth-> server, removed on exit. `offloads`:
    the endpoint veths keep the kernel's defaults (checksum offload, TSO, GRO: 64 KB super-frames
    cross the path whole) instead of rattan's `tx off`."""
    from pyroute2 import NetNS, netns
    remove_stale_kernel_paths()
    prefix = f"rtbench-{os.getpid()}"
    names = {r: f"{prefix}-{'tso' if offloads else ''}{r}" for r in ("left", "middle", "right")}
    made: list[str] = []
    try:
        with netns_lock():
            for n in names.values():
                netns.create(n)
                made.append(n)
            ends = {"left": ("rt-left", "e0", "10.250.1"), "right": ("rt-right", "e1", "10.250.2")}
            macs = {}
            for role, (ifname, peer, net) in ends.items():
                with NetNS(names[role]) as ns:
                    ns.link("add", ifname=ifname, kind="veth", peer={"ifname": peer, "net_ns_fd": names["middle"]})
                    idx = ns.link_lookup(ifname=ifname)[0]
                    ns.addr("add", index=idx, address=f"{net}.2", prefixlen=24)
                    ns.link("set", index=idx, state="up")
                    ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
                    ns.route("add", dst="0.0.0.0/0", gateway=f"{net}.1")
                    macs[ifname] = ns.get_links(idx)[0].get_attr("IFLA_ADDRESS")
                with NetNS(names["middle"]) as mid:
                    idx = mid.link_lookup(ifname=peer)[0]
                    mid.addr("add", index=idx, address=f"{net}.1", prefixlen=24)
                    mid.link("set", index=idx, state="up")
                    macs[peer] = mid.get_links(idx)[0].get_attr("IFLA_ADDRESS")
            # static neighbours both ways, as rattan's endpoints have (no ARP in the figures)
            for role, (ifname, peer, net) in ends.items():
                with NetNS(names[role]) as ns:
                    ns.neigh("add", dst=f"{net}.1", lladdr=macs[peer], ifindex=ns.link_lookup(ifname=ifname)[0],
                             state=NUD_PERMANENT)
                with NetNS(names["middle"]) as mid:
                    mid.neigh("add", dst=f"{net}.2", lladdr=macs[ifname], ifindex=mid.link_lookup(ifname=peer)[0],
                              state=NUD_PERMANENT)
                netdev_tune(os.path.join(NETNS_DIR, names[role]), None if offloads else ifname, no_ipv6=True)
            middle = os.path.join(NETNS_DIR, names["middle"])
            netdev_tune(middle, None, no_ipv6=True)
            p = in_namespace(middle, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], dict(os.environ))
            if p.wait(10) != 0:
                raise RuntimeError("cannot turn on ip_forward in the middle namespace")
        path = Path("kernel_tso" if offloads else "kernel",
                    os.path.join(NETNS_DIR, names["left"]), os.path.join(NETNS_DIR, names["right"]),
                    "10.250.2.2", "rt-right", middle, "e0")
        try:
            yield path
        finally:
            path.stop_all()
    finally:
        stop_inside(made)  # anything of ours still inside, by PID
        with netns_lock():
            existing = set(netns.listnetns())
            for n in made:
                if n in existing:
                    netns.remove(n)


@contextmanager
def rattan_path(name: str, cell: str):
    """A rattan channel with `cell` each way, its engine running in this process."""
    comp = compile_text(CHANNEL.format(cell=cell), f"<bench {name}>.rtn")
    if not comp.ok:
        raise RuntimeError(f"channel does not compile: {comp.diagnostics}")
    plan = build_plan(comp.program, comp.sources, default_registry())
    before = threads()
    with ChannelRun(plan, choose_channel(plan, None), seed=1) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        path = Path(name, left.netns_path, right.netns_path, right.address, right.ifname,
                    live.net.engine_netns_path, left.engine_ifname, live=live,
                    engine_tids=sorted(threads() - before))
        try:
            yield path
        finally:
            path.stop_all()


# ---------------------------------------------------------------- measurements
def threads() -> set[int]:
    """This process's thread ids."""
    return {int(t) for t in os.listdir("/proc/self/task")}


class EngineLoad:
    """The engine thread's time on a CPU and waiting for one (run queue), as shares of wall time:
    their sum near 1 means the engine always had work, so the CPU bounded the figure."""

    def __init__(self, path: Path) -> None:
        self.tids = path.engine_tids
        self.t0, self.s0 = time.monotonic(), self._read()

    def _read(self) -> tuple[int, int]:
        cpu = wait = 0
        for tid in self.tids:
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    run_ns, wait_ns, _ = f.read().split()
                cpu, wait = cpu + int(run_ns), wait + int(wait_ns)
            except (OSError, ValueError):
                pass
        return cpu, wait

    def shares(self) -> dict:
        """engine_cpu and engine_wait since this object was made (empty for the kernel path)."""
        if not self.tids:
            return {}
        dt = (time.monotonic() - self.t0) * 1e9
        cpu, wait = self._read()
        return {"engine_cpu": (cpu - self.s0[0]) / dt, "engine_wait": (wait - self.s0[1]) / dt}


def listening(pid: int, port: int) -> bool:
    """A TCP socket listening on `port` in the network namespace of process `pid`."""
    want = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                if any(c[1].endswith(want) and c[3] == "0A" for c in (line.split() for line in f.readlines()[1:])):
                    return True
        except OSError:
            pass
    return False


def iperf3(path: Path, client_args: list[str], seconds: float) -> dict:
    """One iperf3 test, bounded in time: the client's JSON (which holds the server's figures)."""
    server = path.start("server", ["iperf3", "-s", "-1", "-p", str(PORT)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not listening(server.pid, PORT):
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"{path.name}: iperf3 server did not start")
        time.sleep(0.02)
    client = path.start("client", ["iperf3", "-c", path.server_ip, "-p", str(PORT), "-J", *client_args],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = client.communicate(timeout=seconds + 20)
        server.wait(10)
    finally:
        stop(client)
        stop(server)
    try:
        return json.loads(out)
    except ValueError:
        raise RuntimeError(f"{path.name}: iperf3 gave no result: {err.strip()[-300:]}") from None


def tcp_goodput(path: Path, seconds: float) -> dict:
    """One TCP stream client -> server: goodput, retransmits, engine load, and the rate at which
    the path's bw cell sent IP bytes (its counters, sampled while the transfer runs)."""
    bw_node = path.bw_node
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        done.wait(1.5)  # past the omitted first second
        while not done.wait(0.25):
            samples.append((time.monotonic(), path.live.engine.counters(bw_node).out_bytes))
    sampler = threading.Thread(target=sample, daemon=True) if bw_node is not None else None
    load = EngineLoad(path)
    if sampler:
        sampler.start()
    try:
        client = iperf3(path, ["-t", str(seconds), "-O", "1"], seconds + 1)
    finally:
        done.set()
        if sampler:
            sampler.join()
    end = client["end"]
    r = {"goodput_bps": end["sum_received"]["bits_per_second"],
         "retransmits": end["sum_sent"].get("retransmits", 0),
         "mss": client["start"].get("tcp_mss_default"), **load.shares()}
    if len(samples) >= 3:
        (ta, ba), (tb, bb) = samples[0], samples[-2]  # the last may fall after the sender stopped
        r["bw_ip_bps"] = (bb - ba) * 8 / (tb - ta)
    return r


def udp_small(path: Path, seconds: float) -> dict:
    """64-byte UDP datagrams as fast as iperf3 sends them: packets per second received, loss."""
    load = EngineLoad(path)
    client = iperf3(path, ["-u", "-l", "64", "-b", "0", "-t", str(seconds)], seconds)
    s = client["end"]["sum_received"]
    received = s["packets"] - s["lost_packets"]
    sent = client["end"]["sum_sent"]
    r = {"sent_pps": sent["packets"] / sent["seconds"], "received_pps": received / s["seconds"],
         "loss": s["lost_packets"] / s["packets"] if s["packets"] else 0.0, **load.shares()}
    return r


def quantile(xs: list[float], q: float) -> float:
    """The q-quantile of xs (nearest rank)."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def ping_rtt(path: Path, count: int) -> dict:
    """Idle RTT of `count` pings 5 ms apart (ms): average, p50, p99."""
    p = path.start("client", ["ping", "-n", "-c", str(count), "-i", "0.005", "-W", "1", path.server_ip],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=count * 0.005 + 15)
    finally:
        stop(p)
    rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]
    if not rtts:
        raise RuntimeError(f"{path.name}: no ping replies: {err.strip()[-300:]}")
    return {"avg_ms": sum(rtts) / len(rtts), "p50_ms": quantile(rtts, 0.5), "p99_ms": quantile(rtts, 0.99),
            "replies": len(rtts), "sent": count}


def start_capture(path: Path, ns: str, ifname: str, out: str, limit: int) -> subprocess.Popen:
    """tcpdump of incoming iperf3 UDP on `ifname`, nanosecond kernel timestamps, headers only."""
    p = path.start(ns, ["tcpdump", "-i", ifname, "-Q", "in", "-n", "-s", "96", "-B", "32768", "-c", str(limit),
                        "-Z", "root", "--time-stamp-precision", "nano", "-w", out, f"udp and dst port {PORT}"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([p.stderr], [], [], 0.2)
        if ready:
            line = p.stderr.readline()
            seen += line
            if "listening on" in line:
                return p
            if not line:
                break
    raise RuntimeError(f"tcpdump on {ifname} did not start: {seen.strip()[-300:]}")


def pcap_times(file: str) -> dict[bytes, int]:
    """iperf3 UDP header (send time, sequence) -> capture time in ns, from a nanosecond pcap."""
    with open(file, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data)[0]
    order = "<" if magic in (0xA1B23C4D, 0xA1B2C3D4) else ">"
    magic, _, _, _, _, _, link = struct.unpack_from(order + "IHHiIII", data)
    scale = 1 if magic == 0xA1B23C4D else 1000
    l2 = 14 if link == 1 else 0
    times, off = {}, 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from(order + "IIII", data, off)
        pkt = data[off + 16: off + 16 + caplen]
        off += 16 + caplen
        ip = pkt[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        payload = ip[(ip[0] & 15) * 4 + 8:]
        if len(payload) >= 12:
            times.setdefault(payload[:12], sec * 1_000_000_000 + frac * scale)
    return times


def stop_capture(p: subprocess.Popen, file: str) -> str:
    """Let tcpdump drain its ring (it hands over a partly filled block only after its 1 s
    timeout), then stop it; its statistics."""
    last, since = -1, time.monotonic()
    deadline = since + 8
    while time.monotonic() < deadline and p.poll() is None:
        size = os.path.getsize(file) if os.path.exists(file) else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since > 1.5:
            break
        time.sleep(0.1)
    stop(p, grace=5)
    return p.stderr.read()


def transit(path: Path, seconds: float, rate: str, planned_ns: int, pacing_us: int, capture: bool) -> dict:
    """Lateness of UDP at `rate`, sent in bursts every `pacing_us`, in us: as the captures see it
    (server arrival - arrival at the forwarder - the delay set), and, for rattan, as the engine
    counts it (send time - planned time, by its lateness histogram of the server's endpoint)."""
    args = ["-u", "-l", "1400", "-b", rate, "--pacing-timer", str(pacing_us), "-t", str(seconds)]
    r = {"planned_ms": planned_ns / 1e6, "pacing_us": pacing_us, "captured": capture}
    engine_before = path.live.engine.lateness(path.live.nodes["right"]) if path.live else None
    if not capture:
        client = iperf3(path, args, seconds)
    else:
        with tempfile.TemporaryDirectory(prefix="rtbench-") as tmp:
            before, after = os.path.join(tmp, "forwarder_in.pcap"), os.path.join(tmp, "server_in.pcap")
            limit = 500_000
            caps = [(start_capture(path, path.forwarder_ns, path.forwarder_if, before, limit), before),
                    (start_capture(path, "server", path.server_if, after, limit), after)]
            stats = []
            try:
                client = iperf3(path, args, seconds)
            finally:
                for c, file in caps:
                    stats.append(stop_capture(c, file))
            t_in, t_out = pcap_times(before), pcap_times(after)
        late = sorted((t_out[k] - t_in[k] - planned_ns) / 1000 for k in t_in.keys() & t_out.keys())
        if not late:
            raise RuntimeError(f"{path.name}: no packet matched between the two captures")
        r.update(matched=len(late), captured_in=len(t_in), captured_out=len(t_out),
                 capture_dropped=sum(int(m) for s in stats for m in re.findall(r"(\d+) packets? dropped by kernel", s)),
                 min_us=late[0], p50_us=quantile(late, 0.5), p99_us=quantile(late, 0.99),
                 p999_us=quantile(late, 0.999), max_us=late[-1])
    if engine_before is not None:
        after_ = path.live.engine.lateness(path.live.nodes["right"])
        delta = Lateness(after_.sent - engine_before.sent, after_.late - engine_before.late, after_.max_ns, 0,
                         [a - b for a, b in zip(after_.hist, engine_before.hist)])
        # None: beyond the histogram's last bucket (1024 us or more)
        r["engine"] = {"sent": delta.sent, **{f"p{k}_us": None if v == float("inf") else v for k, v in
                                              (("50", delta.quantile_us(0.5)), ("99", delta.quantile_us(0.99)),
                                               ("999", delta.quantile_us(0.999)))}}
    s = client["end"]["sum_received"]
    r.update(received_bps=s["bits_per_second"], loss=s["lost_packets"] / s["packets"] if s["packets"] else 0.0)
    return r


# ---------------------------------------------------------------- the run
def run_all(a) -> dict:
    """Every path built at once (an idle engine sleeps), then each test in rounds that visit the
    paths in turn, so a change in the machine's load touches every path alike."""
    names = ("kernel", "kernel_tso", "pass", "bw")
    r: dict = {name: {"tcp": [], "udp64": []} for name in names}
    with ExitStack() as stack:
        paths = {"kernel": stack.enter_context(kernel_path()),
                 "kernel_tso": stack.enter_context(kernel_path(offloads=True))}
        for name in ("pass", "bw", "delay"):
            paths[name] = stack.enter_context(rattan_path(name, CELLS[name]))
        paths["bw"].bw_node = paths["bw"].live.nodes[bw_cell(paths["bw"].live)]
        for name in (*names, "delay"):
            log(f"{name}: ping, {a.pings} x 5 ms")
            r.setdefault(name, {})["ping"] = ping_rtt(paths[name], a.pings)
        for i in range(a.rounds):
            for name in names:
                log(f"{name}: TCP, {a.seconds} s (round {i + 1} of {a.rounds})")
                r[name]["tcp"].append(tcp_goodput(paths[name], a.seconds))
        for i in range(a.rounds):
            for name in names:
                log(f"{name}: 64-byte UDP, {a.seconds} s (round {i + 1} of {a.rounds})")
                r[name]["udp64"].append(udp_small(paths[name], a.seconds))
        for name, planned, pacing, capture in TRANSITS:
            log(f"{name}: one-way transit, UDP {LOAD}bit/s in bursts every {pacing} us, {a.capture_seconds} s"
                + (" with captures" if capture else ""))
            r[name].setdefault("transit", []).append(
                transit(paths[name], a.capture_seconds, LOAD, planned, pacing, capture))
    return r


def bw_cell(live: ChannelRun) -> str:
    """The name of the bw cell on left -> right (the TCP data direction)."""
    links = {(link["from"], link["to"]) for link in live.channel["links"]}
    for c in live.channel["cells"]:
        if c["type"] == "bw" and ("left", c["name"]) in links:
            return c["name"]
    raise RuntimeError("no bw cell after `left`")


def median(xs: list[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    s = sorted(xs)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


def summary(rounds: list[dict], key: str) -> float:
    """The median of `key` over the rounds that have it."""
    return median([x[key] for x in rounds if key in x])


def ratios(r: dict, name: str, test: str, key: str, base: str = "kernel") -> list[float]:
    """Round by round, `name` over a kernel baseline (`kernel`: endpoint veths `tx off`; `kernel_tso`:
    default offloads): rounds ran back to back, so each pair shares its load."""
    return [x[key] / k[key] for x, k in zip(r[name][test], r[base][test])]


def vs_kernel(r: dict, name: str, test: str, key: str, base: str = "kernel") -> str:
    """The median ratio to a kernel baseline, with its range over the rounds."""
    xs = ratios(r, name, test, key, base)
    if name == base or len(xs) == 1:
        return f"{median(xs):.2f}"
    return f"{median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def report(r: dict) -> str:
    """The figures as a person reads them: two tables, then each goal and its verdict."""
    k = r["kernel"]
    labels = {"kernel": "kernel, routed", "kernel_tso": "kernel, TSO/GRO", "pass": "rattan pass",
              "bw": "rattan bw 1 Gbit/s", "delay": "rattan delay 5 ms"}
    lines = [f"{'path':<19} {'TCP Gbit/s':>10} {'vs kernel':>16} {'vs TSO':>16} {'retx':>6} {'engine':>10}   "
             f"{'64B UDP kpps':>12} {'loss':>6} {'vs kernel':>16} {'vs TSO':>16}   {'ping avg ms':>11} {'p99':>6} "
             f"{'added':>6}"]
    for name in ("kernel", "kernel_tso", "pass", "bw"):
        x, ping = r[name], r[name]["ping"]
        tcp, udp = x["tcp"], x["udp64"]
        engine = (f"{summary(tcp, 'engine_cpu'):.0%} + {summary(tcp, 'engine_wait'):.0%}"
                  if "engine_cpu" in tcp[0] else "-")
        added = f"{ping['avg_ms'] - k['ping']['avg_ms']:>6.3f}" if not name.startswith("kernel") else f"{'-':>6}"
        lines.append(
            f"{labels[name]:<19} {summary(tcp, 'goodput_bps') / 1e9:>10.3f} "
            f"{vs_kernel(r, name, 'tcp', 'goodput_bps'):>16} {vs_kernel(r, name, 'tcp', 'goodput_bps', 'kernel_tso'):>16} "
            f"{summary(tcp, 'retransmits'):>6.0f} "
            f"{engine:>10}   {summary(udp, 'received_pps') / 1e3:>12.0f} {summary(udp, 'loss'):>6.1%} "
            f"{vs_kernel(r, name, 'udp64', 'received_pps'):>16} "
            f"{vs_kernel(r, name, 'udp64', 'received_pps', 'kernel_tso'):>16}   {ping['avg_ms']:>11.3f} "
            f"{ping['p99_ms']:>6.3f} {added}")
    rounds = len(k["tcp"])
    lines += [f"Medians of {rounds} round{'s' * (rounds > 1)}; vs kernel (endpoint veths tx off, as rattan's) and vs",
              "TSO (the kernel's default offloads): median (range) of the round-by-round ratios.",
              "TCP: one stream, first second omitted. engine: the engine thread's share of a core on a CPU + waiting",
              "for one (run queue), during TCP. 64B UDP: iperf3 -b 0, packets/s the server received. ping: idle.",
              "",
              f"lateness, UDP {LOAD}bit/s of 1400 B datagrams: tcpdump, arrival at the server veth - arrival at the",
              "forwarder's side of the client veth - the delay set; engine, its own count (send - planned time)",
              f"{'path':<19} {'set ms':>6} {'bursts':>8} {'packets':>8} {'p50 us':>7} {'p99 us':>7} "
              f"{'p99.9 us':>8} {'max us':>7}   {'engine p50':>10} {'p99':>5} {'p99.9':>6}   {'UDP loss':>8}"]
    for name in ("kernel", "pass", "delay"):
        for t in r[name]["transit"]:
            cap = (f"{t['matched']:>8} {t['p50_us']:>7.1f} {t['p99_us']:>7.1f} {t['p999_us']:>8.1f} {t['max_us']:>7.1f}"
                   if t["captured"] else f"{'no tcpdump':>8} {'':>7} {'':>7} {'':>8} {'':>7}")
            e = t.get("engine")
            eng = (f"{us(e['p50_us']):>10} {us(e['p99_us']):>5} {us(e['p999_us']):>6}" if e
                   else f"{'-':>10} {'':>5} {'':>6}")
            lines.append(f"{labels[name]:<19} {t['planned_ms']:>6g} {t['pacing_us']:>5} us {cap}   {eng}   "
                         f"{t['loss']:>8.2%}")
    bw, d = r["bw"], r["delay"]
    tcp_ratio = median(ratios(r, "pass", "tcp", "goodput_bps"))
    added = r["pass"]["ping"]["avg_ms"] - k["ping"]["avg_ms"]
    expected = 1e9 * TCP_PAYLOAD / MTU
    good = summary(bw["tcp"], "goodput_bps")
    lines += ["",
              goal_line("pass-through TCP vs kernel", f"{tcp_ratio:.2f}", ">= 0.65", tcp_ratio >= 0.65),
              f"{'pass-through TCP vs kernel TSO':<32} {median(ratios(r, 'pass', 'tcp', 'goodput_bps', 'kernel_tso')):.2f}",
              goal_line("pass-through added RTT", f"{added:.3f} ms", "< 0.1 ms", added < 0.1),
              goal_line("bw 1 Gbit/s, TCP goodput", f"{good / 1e6:.1f} Mbit/s ({good / expected - 1:+.2%})",
                        "within 2 %", abs(good / expected - 1) <= 0.02)
              + f"   expected {expected / 1e6:.1f}: {TCP_PAYLOAD} B of payload per {MTU} B IP packet"]
    if "bw_ip_bps" in bw["tcp"][0]:
        ip = summary(bw["tcp"], "bw_ip_bps")
        lines.append(goal_line("bw 1 Gbit/s, IP bytes sent", f"{ip / 1e6:.1f} Mbit/s ({ip / 1e9 - 1:+.2%})",
                               "within 2 %", abs(ip / 1e9 - 1) <= 0.02) + "   the bw cell's counters while TCP ran")
    for t in d["transit"]:
        p99, how = (t["p99_us"], "tcpdump") if t["captured"] else (t["engine"]["p99_us"], "engine count, no tcpdump")
        lines.append(goal_line("delay 5 ms, lateness p99", f"{us(p99)} us", "< 100 us", p99 is not None and p99 < 100)
                     + f"   bursts every {t['pacing_us']} us; {how}")
    lines.append(f"{'delay 5 ms each way, idle ping':<32} avg {d['ping']['avg_ms']:.3f} ms, "
                 f"p99 {d['ping']['p99_ms']:.3f} ms (10 ms set)")
    return "\n".join(lines)


# ---------------------------------------------------------------- real-time scaling
SCALING_COUNTS = (1, 2, 4, 8, 16)
SCALING_TOLERANCE = 0.02      # every path within 2 % of its expected goodput
SCALING_LATE_P99_US = 1000    # ... and its lateness p99 under 1 ms


def scaling_point(n: int, seconds: float) -> dict:
    """N instances of the `bw` channel (1 Gbit/s each way) in one run, one engine, one TCP stream
    through each at once: every path's goodput and lateness p99 (the engine's count at the server's
    endpoint: send time - planned time), the aggregate and the engine thread's CPU share."""
    comp = compile_text(CHANNEL.format(cell=CELLS["bw"]), "<bench scaling>.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    channel = choose_channel(plan, None)
    before = threads()
    with LiveRun(plan, [channel] * n, seed=1) as live:
        paths = []
        for inst in live.instances:
            left, right = inst.net.endpoints["left"], inst.net.endpoints["right"]
            paths.append(Path(inst.label, left.netns_path, right.netns_path, right.address, right.ifname,
                              inst.net.engine_netns_path, left.engine_ifname))
        engine = Path("engine", "", "", "", "", "", "", engine_tids=sorted(threads() - before))
        try:
            servers = [p.start("server", ["iperf3", "-s", "-1", "-p", str(PORT)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) for p in paths]
            deadline = time.monotonic() + 10
            while not all(listening(s.pid, PORT) for s in servers):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"scaling {n}: iperf3 servers did not start")
                time.sleep(0.02)
            late0 = [live.engine.lateness(inst.nodes["right"]) for inst in live.instances]
            load = EngineLoad(engine)
            clients = [p.start("client", ["iperf3", "-c", p.server_ip, "-p", str(PORT), "-J", "-t", str(seconds),
                                           "-O", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                       for p in paths]
            outs = [c.communicate(timeout=seconds + 30)[0] for c in clients]
            shares = load.shares()
            late1 = [live.engine.lateness(inst.nodes["right"]) for inst in live.instances]
        finally:
            for p in paths:
                p.stop_all()
    goodputs, p99s = [], []
    for out, a, b in zip(outs, late0, late1):
        try:
            goodputs.append(json.loads(out)["end"]["sum_received"]["bits_per_second"])
        except (ValueError, KeyError):
            goodputs.append(0.0)
        delta = Lateness(b.sent - a.sent, b.late - a.late, b.max_ns, 0, [y - x for x, y in zip(a.hist, b.hist)])
        q = delta.quantile_us(0.99) if delta.sent else float("inf")
        p99s.append(None if q == float("inf") else q)
    expected = 1e9 * TCP_PAYLOAD / MTU
    held = all(abs(g / expected - 1) <= SCALING_TOLERANCE for g in goodputs) and \
        all(p is not None and p < SCALING_LATE_P99_US for p in p99s)
    return {"paths": n, "goodput_bps": goodputs, "aggregate_bps": sum(goodputs), "late_p99_us": p99s,
            "held": held, **shares}


def run_scaling(a) -> dict:
    """The real-time scaling figure: N concurrent `bw 1 Gbit/s` paths for each N of SCALING_COUNTS,
    stopping after the first count that fails to hold (larger ones would only take longer)."""
    points = []
    for n in SCALING_COUNTS:
        log(f"scaling: {n} concurrent bw 1 Gbit/s path{'s' * (n > 1)}, TCP {a.scaling_seconds} s")
        points.append(scaling_point(n, a.scaling_seconds))
        if not points[-1]["held"] and not a.scaling_all:
            break
    held = [p["paths"] for p in points if p["held"]]
    return {"cores": os.cpu_count(), "points": points,
            "highest_held": max((n for n in held if all(q["held"] for q in points if q["paths"] <= n)), default=0)}


def report_scaling(s: dict) -> str:
    """The scaling table and its headline figure."""
    expected = 1e9 * TCP_PAYLOAD / MTU
    lines = [f"real-time scaling, {s['cores']} cores: N concurrent `bw 1 Gbit/s` paths, one TCP stream each "
             f"(expected {expected / 1e6:.1f} Mbit/s a path)",
             f"{'paths':>5} {'aggregate Gbit/s':>16} {'worst path':>12} {'best path':>11} {'worst p99 us':>12} "
             f"{'engine':>10}  held"]
    for p in s["points"]:
        worst_late = max((x if x is not None else float("inf")) for x in p["late_p99_us"])
        eng = f"{p['engine_cpu']:.0%} + {p['engine_wait']:.0%}" if "engine_cpu" in p else "-"
        lines.append(f"{p['paths']:>5} {p['aggregate_bps'] / 1e9:>16.3f} {min(p['goodput_bps']) / 1e6:>8.1f} Mb/s "
                     f"{max(p['goodput_bps']) / 1e6:>7.1f} Mb/s {us(None if worst_late == float('inf') else worst_late):>12} "
                     f"{eng:>10}  {'yes' if p['held'] else 'no'}")
    lines.append(f"highest count holding every path within {SCALING_TOLERANCE:.0%} of its goodput with lateness p99 "
                 f"under {SCALING_LATE_P99_US / 1000:g} ms: {s['highest_held']} on {s['cores']} cores")
    return "\n".join(lines)


def us(x: float | None) -> str:
    """Microseconds as the tables print them (None: past the engine histogram's 1024 us)."""
    return ">1024" if x is None else f"{x:.0f}" if x == int(x) else f"{x:.1f}"


def goal_line(what: str, value: str, target: str, ok: bool) -> str:
    """A figure beside its goal and the verdict."""
    return f"{what:<32} {value:<26} goal {target:<11} {'ok' if ok else 'MISSED'}"


def main() -> int:
    """Parse the options, run everything, print the tables (or JSON); the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round of 2 s tests instead of three of 4 s")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of the tables")
    ap.add_argument("--scaling", action="store_true",
                    help="then the real-time scaling figure: 1, 2, 4, 8, 16 concurrent bw 1 Gbit/s paths")
    ap.add_argument("--only-scaling", action="store_true", help="the scaling figure alone")
    ap.add_argument("--scaling-all", action="store_true",
                    help="measure every count, not stopping after the first that does not hold")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("real_forwarding: needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    a.rounds, a.seconds, a.capture_seconds, a.pings = (1, 2, 1, 100) if a.quick else (3, 4, 3, 400)
    a.scaling_seconds = 3 if a.quick else 5
    other = OtherLoad()
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    results, scaling = None, None
    try:
        if not a.only_scaling:
            results = run_all(a)
        if a.scaling or a.only_scaling:
            scaling = run_scaling(a)
    except (KeyboardInterrupt, Terminated) as e:
        log("interrupted: everything started was stopped and the namespaces removed")
        return 128 + (signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
    busy = other.share()
    if busy > 0.05:
        log(f"warning: other processes used {busy:.0%} of the CPUs during the run: figures are perturbed")
    if a.json:
        print(json.dumps({"other_cpu": busy, "rounds": a.rounds, "seconds": a.seconds,
                          "capture_seconds": a.capture_seconds, "pings": a.pings, "load": LOAD,
                          "results": results, "scaling": scaling}, indent=2))
    else:
        if results is not None:
            print(report(results))
        if scaling is not None:
            print(("\n" if results is not None else "") + report_scaling(scaling))
        print(f"other processes used {busy:.1%} of the CPUs during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())

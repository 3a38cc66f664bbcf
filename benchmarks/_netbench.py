"""What the benchmarks on real packets share: paths between namespaces, the tests run on them, and
the run's guard.

real_forwarding, real_timing, gso_forwarding, kernel_settings and afxdp_forwarding each measure
paths between a client and a server namespace: the kernel routing between them (kernel_path), or a
rattan channel whose engine runs in this process (rattan_path), or, for afxdp_forwarding, a
forwarder of its own (a Path over its own topology). On a Path, bounded iperf3 tests (tcp_goodput,
udp_small), idle ping (ping_rtt) and one-way transit with captures (transit), with the engine
thread's share of a core (EngineLoad). measured_run runs a benchmark with SIGTERM unwinding it as
Ctrl-C does and says how much of the CPUs other processes took meanwhile (OtherLoad). Every
process started is stopped by PID and every namespace made is removed, however the run ends.
"""
from __future__ import annotations

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from rattan.compiler import compile_text
from rattan.engine.binding import Lateness, netdev_tune
from rattan.passes.context import Options
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.channel import choose_channel
from rattan.runtime.netns import NETNS_DIR, STATE_DIR, stop_inside
from rattan.runtime.run import ChannelRun, in_namespace

MTU = 1500
TCP_PAYLOAD = MTU - 20 - 20 - 12  # IP, TCP, timestamps option
DELAY_NS = 5_000_000
PORT = 5201
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


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped a measured run (everything it started was stopped): `status` is
    the exit status to give."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def measured_run(run: Callable[..., Any], *args) -> tuple[Any, float]:
    """run(*args) with SIGTERM unwinding it as Ctrl-C does; its result and the share of the CPUs
    other processes used meanwhile (warned about on stderr above 5 %). Interrupted when stopped."""
    other = OtherLoad()
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        result = run(*args)
    except (KeyboardInterrupt, Terminated) as e:
        log("interrupted: everything started was stopped and the namespaces removed")
        raise Interrupted(128 + (signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    busy = other.share()
    if busy > 0.05:
        log(f"warning: other processes used {busy:.0%} of the CPUs during the run: figures are perturbed")
    return result, busy


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
def rattan_path(name: str, cell: str, offload: str | None = None, optimize: bool = True, **run_kw):
    """A rattan channel with `cell` each way, its engine running in this process: in `offload`
    mode (None: the plan's default), the cells kept even where they do nothing unless `optimize`,
    the run made with `run_kw` (ChannelRun's: precise, coalesce_ns, ...). Its bw_node is the bw
    cell on left -> right (the TCP data direction), if there is one."""
    comp = compile_text(CHANNEL.format(cell=cell), f"<bench {name}>.rtn", options=Options(optimize=optimize))
    if not comp.ok:
        raise RuntimeError(f"channel does not compile: {comp.diagnostics}")
    plan = build_plan(comp.program, comp.sources, default_registry())
    if offload is not None:
        plan["run"]["offload"] = offload
    before = threads()
    with ChannelRun(plan, choose_channel(plan, None), seed=1, **run_kw) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        path = Path(name, left.netns_path, right.netns_path, right.address, right.ifname,
                    live.net.engine_netns_path, left.engine_ifname, live=live,
                    engine_tids=sorted(threads() - before))
        bw = bw_cell(live)
        path.bw_node = live.nodes[bw] if bw else None
        try:
            yield path
        finally:
            path.stop_all()


def bw_cell(live: ChannelRun) -> str | None:
    """The name of the bw cell on left -> right (the TCP data direction), if there is one."""
    links = {(link["from"], link["to"]) for link in live.channel["links"]}
    for c in live.channel["cells"]:
        if c["type"] == "bw" and ("left", c["name"]) in links:
            return c["name"]
    return None


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


def median(xs: list[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    s = sorted(xs)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


def summary(rounds: list[dict], key: str) -> float:
    """The median of `key` over the rounds that have it."""
    return median([x[key] for x in rounds if key in x])


def us(x: float | None) -> str:
    """Microseconds as the tables print them (None: past the engine histogram's 1024 us)."""
    return ">1024" if x is None else f"{x:.0f}" if x == int(x) else f"{x:.1f}"

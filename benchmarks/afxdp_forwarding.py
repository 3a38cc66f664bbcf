"""Benchmark: AF_XDP against rattan's packet I/O (TPACKET_V2 rx ring + sendmmsg) on veth, with the
kernel's routing as baseline (issue 14, item 6).

Each path is its own three namespaces, client | middle | server, joined by two veth pairs; the
endpoint veths have transmit checksumming (and with it TSO) off, as rattan sets them, so frames are
at most 1514 bytes with full checksums. In the middle:
  kernel     the kernel routes (addresses on the middle veths, ip_forward=1);
  rings      benchmarks/afxdp/ring_fwd: rattan's io.c compiled in as it is, each frame copied out
             of the ring into a batch (as the engine copies into its pool), one sendmmsg a batch;
  xdp-skb    benchmarks/afxdp/xsk_fwd --mode skb: AF_XDP copy mode on generic XDP;
  xdp-drv    xsk_fwd --mode drv: AF_XDP copy mode on veth's own (native) XDP;
  xdp-drv-cp xsk_fwd --mode drv --copy --timestamp: as xdp-drv, but each frame copied out of the UMEM
             and into a fresh UMEM frame, and its receive time taken in the XDP program: the shape an
             AF_XDP port behind io.c's interface would have (io_receive hands a copy and the kernel's
             receive time to the engine, io_send_to copies from the engine's pool);
and, when the kernel accepts it, xdp-zc: native XDP with XDP_ZEROCOPY (the run says whether veth
takes it). The AF_XDP forwarders pass descriptors between two sockets that share one UMEM.

Measured, round by round over the paths (figures move with the machine's load; ratios are taken
within a round): iperf3 TCP goodput (one stream), 64-byte UDP sent as fast as iperf3 can
(packets per second received), 64-byte UDP at an unsaturated 10 Mbit/s, and idle ping RTT. For each
test, CPU time per packet delivered: the forwarder's, and the path's (forwarder, both iperf3,
ksoftirqd), which holds better than throughput on a shared machine. During TCP, the forwarder
process's share of a core (on a CPU + waiting in the run queue) and the machine's busy share.
Findings: benchmarks/afxdp/README.md.

Needs root, iperf3, ping, ip and a C compiler (gcc: the forwarders use the kernel's UAPI headers
only, no libbpf or libxdp); skips saying why otherwise. Measure under `flock /tmp/bench.lock`.
Run: python benchmarks/afxdp_forwarding.py [--quick] [--json] [--profile PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from _netbench import (Interrupted, Path, iperf3, log, measured_run, median, netns_lock, ping_rtt, stop, summary,
                       udp_small)
from afxdp.build import BuildError, build
from rattan.engine.binding import netdev_tune
from rattan.runtime.netns import NETNS_DIR, stop_inside

PR_SET_PDEATHSIG = 1
# name -> xsk_fwd options (None: the kernel routes; [] and "rings": ring_fwd)
PATHS = {"kernel": None, "rings": "ring_fwd", "xdp-skb": ["--mode", "skb"], "xdp-drv": ["--mode", "drv"],
         "xdp-drv-cp": ["--mode", "drv", "--copy", "--timestamp"]}
ZEROCOPY = ["--mode", "drv", "--zerocopy"]
UDP_PACED_BPS = 10_000_000  # iperf3 -b for the unsaturated test: about 19,500 64-byte datagrams a second


def why_not() -> str | None:
    """Why this benchmark cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, raw and AF_XDP sockets, XDP programs)"
    for tool, package in (("iperf3", "iperf3"), ("ping", "iputils-ping"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"needs `{tool}`: apt-get install {package}"
    return None


def ip(*args: str) -> str:
    """One `ip` command; its output."""
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def remove_stale() -> None:
    """Namespaces a killed run of this benchmark left behind (their processes died with it)."""
    names = [n.split()[0] for n in ip("netns", "list").splitlines() if n.strip()]
    stale = [n for n in names if (m := re.fullmatch(r"hxdp-(\d+)-.*", n)) and not os.path.exists(f"/proc/{m.group(1)}")]
    if stale:
        stop_inside(stale)
        with netns_lock():
            for n in stale:
                ip("netns", "delete", n)


@contextmanager
def topology(index: int, routed: bool):
    """client <-veth-> middle <-veth-> server, namespaces hxdp-PID-INDEX-{c,m,s}; routed: the middle
    has addresses and forwards; otherwise the endpoints share one subnet and the middle is a bare
    wire for a forwarder. Yields (Path, middle namespace name); everything is removed on exit."""
    names = {r: f"hxdp-{os.getpid()}-{index}-{r}" for r in "cms"}
    made: list[str] = []
    net = f"10.251.{index}"
    try:
        with netns_lock():
            for n in names.values():
                ip("netns", "add", n)
                made.append(n)
        c, m, s = names["c"], names["m"], names["s"]
        ip("-n", c, "link", "add", "hxdp-c", "type", "veth", "peer", "name", "hxdp-mc", "netns", m)
        ip("-n", s, "link", "add", "hxdp-s", "type", "veth", "peer", "name", "hxdp-ms", "netns", m)
        if routed:
            addrs = {"hxdp-c": f"{net}.2", "hxdp-s": f"10.252.{index}.2"}
            gws = {"hxdp-c": f"{net}.1", "hxdp-s": f"10.252.{index}.1"}
            ip("-n", m, "addr", "add", f"{net}.1/24", "dev", "hxdp-mc")
            ip("-n", m, "addr", "add", f"10.252.{index}.1/24", "dev", "hxdp-ms")
        else:
            addrs = {"hxdp-c": f"{net}.2", "hxdp-s": f"{net}.3"}
        for ns, ifname in ((c, "hxdp-c"), (s, "hxdp-s")):
            ip("-n", ns, "addr", "add", f"{addrs[ifname]}/24", "dev", ifname)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", ifname, "up")
            netdev_tune(os.path.join(NETNS_DIR, ns), ifname, no_ipv6=True)
        netdev_tune(os.path.join(NETNS_DIR, m), None, no_ipv6=True)
        for ifname in ("hxdp-mc", "hxdp-ms"):
            ip("-n", m, "link", "set", ifname, "up")
        mac = {ifname: json.loads(ip("-j", "-n", ns, "link", "show", ifname))[0]["address"]
               for ns, ifname in ((c, "hxdp-c"), (s, "hxdp-s"), (m, "hxdp-mc"), (m, "hxdp-ms"))}
        # static neighbours, as rattan's endpoints have: no ARP in the figures
        if routed:
            for ns, ifname, peer in ((c, "hxdp-c", "hxdp-mc"), (s, "hxdp-s", "hxdp-ms")):
                ip("-n", ns, "route", "add", "default", "via", gws[ifname])
                ip("-n", ns, "neigh", "replace", gws[ifname], "lladdr", mac[peer], "dev", ifname, "nud", "permanent")
                ip("-n", m, "neigh", "replace", addrs[ifname], "lladdr", mac[ifname], "dev", peer, "nud", "permanent")
            ip("netns", "exec", m, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        else:
            for ns, ifname, peer in ((c, "hxdp-c", "hxdp-s"), (s, "hxdp-s", "hxdp-c")):
                ip("-n", ns, "neigh", "replace", addrs[peer], "lladdr", mac[peer], "dev", ifname, "nud", "permanent")
        path = Path("", os.path.join(NETNS_DIR, c), os.path.join(NETNS_DIR, s), addrs["hxdp-s"], "hxdp-s",
                    os.path.join(NETNS_DIR, m), "hxdp-mc")
        try:
            yield path, m
        finally:
            path.stop_all()
    finally:
        stop_inside(made)  # anything of ours still inside, by PID
        with netns_lock():
            existing = set(n.split()[0] for n in ip("netns", "list").splitlines() if n.strip())
            for n in made:
                if n in existing:
                    ip("netns", "delete", n)


NICE = -5  # the forwarders' nice value: rattan's engine thread runs at -5 (--engine-nice, docs/running.md)


def forwarder_child() -> None:
    """In the child before exec: SIGKILL when the benchmark dies, so no forwarder outlives it; and
    the engine thread's nice value."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.nice(NICE - os.nice(0))


@dataclass
class Forwarder:
    """A forwarder process in the middle namespace: started, ready, and stopped with its counts."""
    proc: subprocess.Popen
    counts: str = ""
    stopped: bool = False

    @classmethod
    def start(cls, netns: str, argv: list[str]) -> "Forwarder":
        p = subprocess.Popen(["ip", "netns", "exec", netns, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=forwarder_child)
        ready, _, _ = select.select([p.stdout], [], [], 10)
        line = p.stdout.readline() if ready else ""
        if line.strip() != "ready":
            stop(p)
            raise ForwarderRefused(p.returncode, (p.stderr.read() or line).strip())
        return cls(p)

    def schedstat(self) -> tuple[int, int]:
        """Nanoseconds on a CPU and waiting for one, over the forwarder's threads."""
        cpu = wait = 0
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            with open(f"/proc/{self.proc.pid}/task/{tid}/schedstat") as f:
                run_ns, wait_ns, _ = f.read().split()
            cpu, wait = cpu + int(run_ns), wait + int(wait_ns)
        return cpu, wait

    def stop(self) -> None:
        """SIGTERM; its last line of counts (once: later calls do nothing)."""
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.counts = out.strip().splitlines()[-1] if out.strip() else ""


class ForwarderRefused(Exception):
    """A forwarder exited before it was ready: exit status, what it said."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


def machine_busy() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def softirq_threads() -> list[int]:
    """The PIDs of the ksoftirqd threads: softirq work deferred there belongs to no process."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().startswith("ksoftirqd/"):
                    out.append(int(pid))
        except OSError:
            pass
    return out


def cpu_ns(pids: list[int]) -> int:
    """Nanoseconds these threads spent on a CPU."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total


def children_cpu_ns() -> int:
    """CPU time of the children this process has waited for (iperf3 and its wrapper, once exited)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


SOFTIRQ = softirq_threads()


def measured(path: Path, fwd: Forwarder | None, test, *args) -> dict:
    """One test, with the forwarder's share of a core (CPU, run queue), the machine's busy share, and
    the path's CPU time per packet: the forwarder (with the softirq work done in its context: this
    kernel charges it to the task, no IRQ_TIME_ACCOUNTING), both iperf3 processes (theirs likewise)
    and ksoftirqd, over the packets the test counted."""
    f0 = fwd.schedstat() if fwd else (0, 0)
    c0, s0 = children_cpu_ns(), cpu_ns(SOFTIRQ)
    b0, t0, w0 = *machine_busy(), time.monotonic()
    r = test(path, *args)
    b1, t1 = machine_busy()
    dt = (time.monotonic() - w0) * 1e9
    f1 = fwd.schedstat() if fwd else (0, 0)
    r["machine_busy"] = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
    if fwd:
        r["fwd_cpu"], r["fwd_wait"] = (f1[0] - f0[0]) / dt, (f1[1] - f0[1]) / dt
    if r.get("packets"):
        path_ns = (f1[0] - f0[0]) + (children_cpu_ns() - c0) + (cpu_ns(SOFTIRQ) - s0)
        r["path_ns_per_packet"] = path_ns / r["packets"]
        if fwd:
            r["fwd_ns_per_packet"] = (f1[0] - f0[0]) / r["packets"]
    return r


def tcp(path: Path, seconds: float) -> dict:
    """One TCP stream client -> server for the whole test (no omitted second: the CPU time counts
    all of it): goodput, retransmits, and the data segments it took."""
    client = iperf3(path, ["-t", str(seconds)], seconds + 1)
    end, mss = client["end"], client["start"].get("tcp_mss_default") or 1448
    return {"goodput_bps": end["sum_received"]["bits_per_second"], "retransmits": end["sum_sent"].get("retransmits", 0),
            "packets": end["sum_received"]["bytes"] / mss}


def udp_flood(path: Path, seconds: float) -> dict:
    """64-byte UDP as fast as iperf3 sends (_netbench.udp_small): the packets received."""
    r = udp_small(path, seconds)
    r["packets"] = r["received_pps"] * seconds
    return r


def udp_paced(path: Path, seconds: float) -> dict:
    """64-byte UDP at a rate every path carries (UDP_PACED_BPS): what a packet costs, unsaturated."""
    client = iperf3(path, ["-u", "-l", "64", "-b", str(UDP_PACED_BPS), "-t", str(seconds)], seconds)
    s = client["end"]["sum_received"]
    return {"received_pps": (s["packets"] - s["lost_packets"]) / s["seconds"],
            "loss": s["lost_packets"] / s["packets"] if s["packets"] else 0.0,
            "packets": s["packets"] - s["lost_packets"]}


def run_all(a, exes: dict[str, str]) -> dict:
    """Every path built at once (idle forwarders sleep in poll), then each test in rounds visiting
    the paths in turn."""
    remove_stale()
    r: dict = {"paths": {}, "zerocopy": None}
    with ExitStack() as stack:
        paths: dict[str, tuple[Path, Forwarder | None]] = {}
        # zero-copy first: veth may refuse it, and then it is a line in the report, not a path
        zc_path, zc_ns = stack.enter_context(topology(len(PATHS), routed=False))
        try:
            zc = Forwarder.start(zc_ns, [exes["xsk_fwd"], *ZEROCOPY, "hxdp-mc", "hxdp-ms"])
            stack.callback(zc.stop)
            zc_path.name = "xdp-zc"
            paths["xdp-zc"] = (zc_path, zc)
            r["zerocopy"] = "accepted"
        except ForwarderRefused as e:
            r["zerocopy"] = f"refused (exit {e.status}): {e}"
            log(f"xdp-zc: {r['zerocopy']}")
        for i, (name, how) in enumerate(PATHS.items()):
            path, ns = stack.enter_context(topology(i, routed=how is None))
            path.name = name
            fwd = None
            if how is not None:
                argv = [exes["ring_fwd"]] if how == "ring_fwd" else [exes["xsk_fwd"], *how]
                fwd = Forwarder.start(ns, [*argv, "hxdp-mc", "hxdp-ms"])
                stack.callback(fwd.stop)
            paths[name] = (path, fwd)
        names = [n for n in (*PATHS, "xdp-zc") if n in paths]
        for name in names:
            log(f"{name}: ping, {a.pings} x 5 ms")
            r["paths"][name] = {"ping": ping_rtt(paths[name][0], a.pings), "tcp": [], "udp64": [], "udp_paced": []}
        for test, key, fn in (("TCP", "tcp", tcp), ("64-byte UDP", "udp64", udp_flood),
                              (f"64-byte UDP at {UDP_PACED_BPS / 1e6:g} Mbit/s", "udp_paced", udp_paced)):
            for i in range(a.rounds):
                for name in names:
                    log(f"{name}: {test}, {a.seconds} s (round {i + 1} of {a.rounds})")
                    r["paths"][name][key].append(measured(*paths[name], fn, a.seconds))
        for name in names:
            if paths[name][1]:
                paths[name][1].stop()
                r["paths"][name]["counts"] = paths[name][1].counts
    return r


def profile(a, exes: dict[str, str], name: str) -> str:
    """One TCP test on path `name` with `perf record -a` sampling the whole machine for 2 s of it:
    the processes, and the symbols (kernel and user) that took the most samples."""
    remove_stale()
    how = PATHS[name]
    with tempfile.TemporaryDirectory(prefix="hxdp-perf-") as tmp, topology(0, routed=how is None) as (path, ns):
        fwd = None
        if how is not None:
            argv = [exes["ring_fwd"]] if how == "ring_fwd" else [exes["xsk_fwd"], *how]
            fwd = Forwarder.start(ns, [*argv, "hxdp-mc", "hxdp-ms"])
        data = os.path.join(tmp, "perf.data")
        perf: list[subprocess.Popen] = []
        timer = threading.Timer(1.5, lambda: perf.append(subprocess.Popen(  # past iperf3's omitted second
            ["perf", "record", "-a", "-F", "1999", "-o", data, "--", "sleep", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        timer.start()
        try:
            r = measured(path, fwd, tcp, a.seconds + 1)
        finally:
            timer.cancel()
            for p in perf:
                p.wait(10)
            if fwd:
                fwd.stop()
        out = [f"{name}: TCP {r['goodput_bps'] / 1e9:.3f} Gbit/s, machine busy {r['machine_busy']:.0%}"]
        comms = ",".join(["iperf3", "ring_fwd", "xsk_fwd", *(f"ksoftirqd/{i}" for i in range(os.cpu_count()))])
        out.append(f"samples of {comms} only (other processes left out), as shares of theirs:")
        for sort, limit in (("comm", "1"), ("sym", "1")):
            rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--comms", comms, "--percentage",
                                  "relative", "--sort", sort, "--stdio", "--percent-limit", limit],
                                 capture_output=True, text=True)
            out += [line for line in rep.stdout.splitlines() if line.strip() and not line.startswith("#")]
        return "\n".join(out)


def ratio_str(r: dict, name: str, base: str, test: str, key: str) -> str:
    """Median (range) of name/base over the rounds."""
    xs = [x[key] / b[key] for x, b in zip(r["paths"][name][test], r["paths"][base][test]) if b[key]]
    if not xs:
        return "-"
    return f"{median(xs):.2f}" if len(xs) == 1 or name == base else f"{median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def report(r: dict) -> str:
    """The figures as a person reads them."""
    lines = [f"{'path':<11} {'TCP Gbit/s':>10} {'vs rings':>16} {'vs kernel':>16} {'fwd cpu+wait':>12} {'busy':>5}"
             f"   {'UDP kpps':>8} {'loss':>6} {'vs rings':>16} {'vs kernel':>16}   {'ping ms':>7} {'p99':>6}"]
    for name, x in r["paths"].items():
        tcp, udp = x["tcp"], x["udp64"]
        fwd = (f"{summary(tcp, 'fwd_cpu'):.0%} + {summary(tcp, 'fwd_wait'):.0%}" if "fwd_cpu" in tcp[0] else "-")
        lines.append(
            f"{name:<11} {summary(tcp, 'goodput_bps') / 1e9:>10.3f} "
            f"{ratio_str(r, name, 'rings', 'tcp', 'goodput_bps'):>16} "
            f"{ratio_str(r, name, 'kernel', 'tcp', 'goodput_bps'):>16} {fwd:>12} {summary(tcp, 'machine_busy'):>5.0%}"
            f"   {summary(udp, 'received_pps') / 1e3:>8.0f} {summary(udp, 'loss'):>6.1%} "
            f"{ratio_str(r, name, 'rings', 'udp64', 'received_pps'):>16} "
            f"{ratio_str(r, name, 'kernel', 'udp64', 'received_pps'):>16}   {x['ping']['avg_ms']:>7.3f} "
            f"{x['ping']['p99_ms']:>6.3f}")
    lines += ["", f"{'CPU per packet':<14} {'TCP path ns':>11} {'vs rings':>16} {'fwd ns':>7} {'vs rings':>16}   "
                  f"{'UDP paced: path ns':>18} {'vs rings':>16} {'fwd ns':>7} {'vs rings':>16} {'loss':>6}"]
    for name, x in r["paths"].items():
        tcp, paced = x["tcp"], x["udp_paced"]
        fwd = "fwd_ns_per_packet" in tcp[0]
        lines.append(
            f"{name:<14} {summary(tcp, 'path_ns_per_packet'):>11.0f} "
            f"{ratio_str(r, name, 'rings', 'tcp', 'path_ns_per_packet'):>16} "
            f"{summary(tcp, 'fwd_ns_per_packet') if fwd else float('nan'):>7.0f} "
            f"{ratio_str(r, name, 'rings', 'tcp', 'fwd_ns_per_packet') if fwd else '-':>16}   "
            f"{summary(paced, 'path_ns_per_packet'):>18.0f} "
            f"{ratio_str(r, name, 'rings', 'udp_paced', 'path_ns_per_packet'):>16} "
            f"{summary(paced, 'fwd_ns_per_packet') if fwd else float('nan'):>7.0f} "
            f"{ratio_str(r, name, 'rings', 'udp_paced', 'fwd_ns_per_packet') if fwd else '-':>16} "
            f"{summary(paced, 'loss'):>6.1%}")
    rounds = len(next(iter(r["paths"].values()))["tcp"])
    lines += [f"Medians of {rounds} round{'s' * (rounds > 1)}; ratios: median (range) of the round-by-round ratios.",
              "TCP: one stream; fwd: the forwarder process's share of a core on a CPU + in the run queue, during TCP;",
              "busy: the machine's CPUs busy during TCP. UDP: 64-byte datagrams, iperf3 -b 0, packets/s the server",
              "received. ping: idle, average and p99. CPU per packet: CPU time of the forwarder, both iperf3 and",
              "ksoftirqd (softirq work is charged to the task it interrupts) over the TCP data segments delivered,",
              f"or the datagrams delivered at {UDP_PACED_BPS / 1e6:g} Mbit/s of 64-byte payloads (unsaturated);",
              "fwd ns: the forwarder's share of that.",
              f"Forwarders at nice {NICE}, as rattan's engine thread.",
              f"AF_XDP zero-copy (XDP_ZEROCOPY) on veth: {r['zerocopy']}"]
    for name, x in r["paths"].items():
        if x.get("counts"):
            lines.append(f"{name} counts: {x['counts']}")
    return "\n".join(lines)


def main() -> int:
    """Parse the options, build the forwarders, run, print; the exit status (0 also when skipped)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round of 2 s tests instead of three of 3 s")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    ap.add_argument("--profile", choices=PATHS, metavar="PATH",
                    help=f"instead: one TCP test on PATH ({', '.join(PATHS)}) under `perf record -a`, its top symbols")
    a = ap.parse_args()
    why = why_not()
    if why:
        print(f"afxdp_forwarding: skipped: {why}", file=sys.stderr)
        return 0
    a.rounds, a.seconds, a.pings = (1, 2, 100) if a.quick else (3, 3, 200)
    with tempfile.TemporaryDirectory(prefix="hxdp-") as tmp:
        try:
            exes = build(tmp)
        except BuildError as e:
            print(f"afxdp_forwarding: skipped: {e}", file=sys.stderr)
            return 0
        if a.profile:
            if shutil.which("perf") is None:
                print("afxdp_forwarding: --profile needs perf (apt-get install linux-perf)", file=sys.stderr)
                return 2
            print(profile(a, exes, a.profile))
            return 0
        try:
            results, busy = measured_run(run_all, a, exes)
        except Interrupted as e:
            return e.status
    if a.json:
        print(json.dumps({"other_cpu": busy, "rounds": a.rounds, "seconds": a.seconds, "pings": a.pings,
                          "nice": NICE, "kernel": os.uname().release, "results": results}, indent=2))
    else:
        print(report(results))
        print(f"kernel {os.uname().release}, {os.cpu_count()} CPUs; other processes used {busy:.1%} of the CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: where the time of 64-byte UDP goes, party by party, on the kernel's path and rattan's.

For each path, iperf3 sends 64-byte UDP datagrams as fast as it can (`-u -l 64 -b 0`, as
real_forwarding.py) for --seconds; over the middle of the run it reads the CPU time (schedstat:
time on a CPU, and waiting for one) of the three busy parties, the sender (iperf3 client), the
forwarder (the engine's threads; the kernel's path has none: its forwarding runs in softirq, in the
sender's context or ksoftirqd's) and the receiver (iperf3 server), plus ksoftirqd and the
machine's total, and prints them as shares of one core beside the packets per second received.
With --perf, `perf record -g` on the engine's threads (rattan's paths) over the same window, and the
top symbols of `perf report` (self time).

Paths: kernel (routed, endpoints `tx off`), pass (GSO mode, receive ring), pass_socket (GSO mode,
recvmmsg alone: RATTAN_GSO_RX=socket), pass_plain (`--offload plain`).

Run as root: flock /tmp/bench.lock python benchmarks/udp64_profile.py [--seconds 6] [--perf] [--paths ...]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from _netbench import CELLS, PORT, kernel_path, listening, log, rattan_path, stop

PATHS = ("kernel", "pass", "pass_socket", "pass_plain")


def descendants(pid: int) -> list[int]:
    """`pid` and every process under it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def tids(pids: list[int]) -> list[str]:
    """Every thread of `pids`, as /proc/PID/task/TID paths."""
    out = []
    for p in pids:
        try:
            out += [f"/proc/{p}/task/{t}" for t in os.listdir(f"/proc/{p}/task")]
        except OSError:
            pass
    return out


def schedstat(paths: list[str]) -> tuple[int, int]:
    """Sum of (on CPU ns, waiting ns) of the threads at `paths`."""
    run = wait = 0
    for p in paths:
        try:
            with open(f"{p}/schedstat") as f:
                a, b, _ = f.read().split()
            run, wait = run + int(a), wait + int(b)
        except (OSError, ValueError):
            pass
    return run, wait


def ksoftirqd() -> list[str]:
    """ksoftirqd's threads."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().startswith("ksoftirqd"):
                        out.append(f"/proc/{p}")
            except OSError:
                pass
    return out


def busy_ns() -> tuple[int, int]:
    """The machine's busy CPU time (all but idle and iowait) and softirq time, ns."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v[:8]) - v[3] - v[4]) * 10**9 // hz, v[6] * 10**9 // hz


def udp_rcvbuf_errors(path) -> int:
    """The server namespace's UDP RcvbufErrors (/proc/net/snmp): datagrams its full socket dropped."""
    p = path.start("server", ["cat", "/proc/net/snmp"], stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=10)
    head, values = [l.split() for l in out.splitlines() if l.startswith("Udp:")][:2]
    return int(values[head.index("RcvbufErrors")])


def ring_drops(path) -> int:
    """Frames the engine's client-side endpoint lost before reading them (its ring full), 0 for the kernel."""
    if path.live is None:
        return 0
    return path.live.engine.counters(path.live.nodes["left"]).dropped_packets


def measure(path, seconds: float, perf: bool, rate: str = "0") -> dict:
    """One 64-byte UDP run through `path`: pps received and each party's CPU over its middle."""
    rcvbuf0, ring0 = udp_rcvbuf_errors(path), ring_drops(path)
    server = path.start("server", ["iperf3", "-s", "-1", "-p", str(PORT)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not listening(server.pid, PORT):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path.name}: iperf3 server did not start")
        time.sleep(0.02)
    client = path.start("client", ["iperf3", "-c", path.server_ip, "-p", str(PORT), "-J", "-u", "-l", "64", "-b", rate,
                                   "-t", str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    report = None
    try:
        time.sleep(1.0)
        window = seconds - 3.0
        parties = {"sender": tids(descendants(client.pid)), "receiver": tids(descendants(server.pid)),
                   "engine": [f"/proc/self/task/{t}" for t in path.engine_tids], "ksoftirqd": ksoftirqd()}
        before = {k: schedstat(v) for k, v in parties.items()}
        m0, t0 = busy_ns(), time.monotonic()
        rec = None
        if perf and path.engine_tids:  # a round of its own: perf's own cost stays out of the CPU figures
            data = tempfile.mktemp(prefix="udp64-", suffix=".perf")
            rec = subprocess.Popen(["perf", "record", "-g", "-o", data, "-t", ",".join(map(str, path.engine_tids)),
                                    "--", "sleep", str(window)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rec.wait(window + 30)
        else:
            time.sleep(window)
        dt = (time.monotonic() - t0) * 1e9
        m1 = busy_ns()
        after = {k: schedstat(v) for k, v in parties.items()}
        out, _ = client.communicate(timeout=seconds + 20)
        if rec is not None:
            report = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "symbol", "--stdio",
                                     "-g", "none"], capture_output=True, text=True).stdout
            os.unlink(data)
    finally:
        stop(client)
        stop(server)
    import json
    end = json.loads(out)["end"]["sum_received"]
    r = {"pps": (end["packets"] - end["lost_packets"]) / end["seconds"], "sent": end["packets"],
         "lost_receiver": udp_rcvbuf_errors(path) - rcvbuf0, "lost_ring": ring_drops(path) - ring0,
         "busy": (m1[0] - m0[0]) / dt, "softirq": (m1[1] - m0[1]) / dt}
    for k in parties:
        r[k] = (after[k][0] - before[k][0]) / dt
        r[k + "_wait"] = (after[k][1] - before[k][1]) / dt
    r["perf"] = report
    return r


# Where an engine's time goes: the system calls it makes (children: with what the kernel does inside
# them), and its own code in user space
SYMBOLS = [("__sendmmsg", "sendmmsg: sending, and inside it ..."),
           ("net_rx_action", "... the receiving veth's stack (softirq, on the engine's CPU)"),
           ("__recvmmsg", "recvmmsg"), ("epoll_wait", "epoll_wait: sleeping and waking"),
           ("finish_task_switch.isra.0", "the scheduler switching the engine back in")]


def profile_lines(report: str) -> str:
    """The shares of SYMBOLS in a `perf report --children` text, and the engine's own user-space code."""
    got, own = {}, 0.0
    for line in report.splitlines():
        f = line.split()
        if len(f) >= 5 and f[0].endswith("%") and f[1].endswith("%"):
            got.setdefault(f[3], (f[0], f[1]))
            sym = f[3] if f[2] == "[.]" else ""
            if sym and not sym.startswith(("0x", "__sendmmsg", "epoll_wait", "__recvmmsg", "__vdso", "clock_gettime",
                                           "__GI_", "__mem")):
                own += float(f[1].rstrip("%"))
    lines = [f"  {got.get(sym, ('0%', '0%'))[0]:>7} {got.get(sym, ('0%', '0%'))[1]:>7}  {label}" for sym, label in SYMBOLS]
    return "\n".join(lines + [f"  {'':>7} {own:>6.1f}%  rattan's own code (user space, self)"])


def main() -> int:
    """Build the paths, measure each in turn, print the table (and the profiles)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--perf", action="store_true", help="perf record -g on the engine's threads, top symbols")
    ap.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    ap.add_argument("--rate", default="0", help="iperf3 -b: the sender's rate (0: as fast as it can)")
    ap.add_argument("--hold", action="store_true",
                    help="rattan's engines held to the last CPU, the applications on the others (as `taskset -c` on "
                         "rattan with --app-cpus auto); the kernel's path free on every CPU")
    a = ap.parse_args()
    every = os.sched_getaffinity(0)
    held = {max(every)} if a.hold else every
    if os.geteuid() != 0:
        print("udp64_profile: needs root", file=sys.stderr)
        return 2
    rows, profiles = [], []
    with ExitStack() as stack:
        paths = {}
        for name in a.paths:
            os.sched_setaffinity(0, held)  # the engine's thread starts with it
            if name == "kernel":
                paths[name] = stack.enter_context(kernel_path())
            elif name == "pass_socket":
                os.environ["RATTAN_GSO_RX"] = "socket"  # read when the engine opens its ports
                try:
                    paths[name] = stack.enter_context(rattan_path(name, CELLS["pass"]))
                finally:
                    del os.environ["RATTAN_GSO_RX"]
            else:
                paths[name] = stack.enter_context(
                    rattan_path(name, CELLS["pass"], offload="plain" if name == "pass_plain" else None))
        os.sched_setaffinity(0, every)
        for name, path in paths.items():
            path.app_cpus = frozenset(every - held) if path.engine_tids and a.hold else frozenset(every)
        for i in range(a.rounds):
            for name in a.paths:
                log(f"{name}: 64-byte UDP, {a.seconds} s (round {i + 1} of {a.rounds})")
                rows.append((name, measure(paths[name], a.seconds, False, a.rate)))
        if a.perf:
            for name in a.paths:
                if paths[name].engine_tids:
                    log(f"{name}: 64-byte UDP, {a.seconds} s, perf record -g on the engine")
                    profiles.append((name, measure(paths[name], a.seconds, True, a.rate)))
    print(f"{'path':<12} {'kpps':>6}   {'sender':>13} {'engine':>13} {'receiver':>13} {'ksoftirqd':>9} "
          f"{'all CPUs':>8} {'softirq':>7} {'lost: ring':>10} {'receiver':>8}   (shares of one core: on CPU + waiting; "
          f"2 cores = 2.00; losses as shares of the datagrams sent)")
    for name, r in rows:
        print(f"{name:<12} {r['pps'] / 1e3:>6.0f}   " + " ".join(
            f"{r[k]:>5.2f} + {r[k + '_wait']:>4.2f}" for k in ("sender", "engine", "receiver"))
              + f" {r['ksoftirqd']:>9.2f} {r['busy']:>8.2f} {r['softirq']:>7.2f} {r['lost_ring'] / r['sent']:>10.1%} "
              f"{r['lost_receiver'] / r['sent']:>8.1%}")
    for name, r in profiles:
        print(f"\n--- {name}: {r['pps'] / 1e3:.0f} kpps under perf; the engine's samples in (children, self):")
        print(profile_lines(r["perf"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

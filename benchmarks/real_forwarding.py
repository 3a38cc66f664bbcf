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

GSO mode's receive paths side by side (--gso-rx): `pass` reads from a TPACKET_V2 ring with the
virtio-net header (super-frames through the socket's queue), `pass_socket` with recvmmsg alone
(RATTAN_GSO_RX=socket, what GSO mode did first), `pass_plain` is `--offload plain`.

Run as root: python benchmarks/real_forwarding.py [--quick] [--json] [--gso-rx] [--scaling | --only-scaling]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from _netbench import (CELLS, CHANNEL, DELAY_NS, MTU, PORT, TCP_PAYLOAD, EngineLoad, Interrupted, Path, kernel_path,
                       listening, log, measured_run, median, ping_rtt, rattan_path, summary, tcp_goodput, threads,
                       transit, udp_small, us)
from rattan.compiler import compile_text
from rattan.engine.binding import Lateness
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.channel import choose_channel
from rattan.runtime.run import LiveRun

GSO_RX_PATHS = ("pass_socket", "pass_plain")  # --gso-rx: `pass` with GSO mode's other receive path, and plain
LOAD = "500M"  # iperf3 -b: the UDP load under which one-way transit is measured
# One-way transit: (path, delay set, iperf3 --pacing-timer in us, with captures). Paced every 100 us,
# iperf3 sends about 4 packets at a time and lateness is the engine's timing; at its default 1 ms,
# bursts of 45 packets arrive within microseconds and the last of each waits for the engine to send
# the others. Without captures, only the engine's own count of lateness, undisturbed by tcpdump.
TRANSITS = [("kernel", 0, 100, True), ("pass", 0, 100, True), ("delay", DELAY_NS, 100, True),
            ("delay", DELAY_NS, 100, False), ("pass", 0, 1000, True), ("delay", DELAY_NS, 1000, True)]


# ---------------------------------------------------------------- the run
def run_all(a) -> dict:
    """Every path built at once (an idle engine sleeps), then each test in rounds that visit the
    paths in turn, so a change in the machine's load touches every path alike."""
    names = ("kernel", "kernel_tso", "pass", "bw") + (GSO_RX_PATHS if a.gso_rx else ())
    r: dict = {name: {"tcp": [], "udp64": []} for name in names}
    with ExitStack() as stack:
        paths = {"kernel": stack.enter_context(kernel_path()),
                 "kernel_tso": stack.enter_context(kernel_path(offloads=True))}
        for name in ("pass", "bw", "delay"):
            paths[name] = stack.enter_context(rattan_path(name, CELLS[name]))
        if a.gso_rx:
            os.environ["RATTAN_GSO_RX"] = "socket"  # read when the engine opens its ports
            try:
                paths["pass_socket"] = stack.enter_context(rattan_path("pass_socket", CELLS["pass"]))
            finally:
                del os.environ["RATTAN_GSO_RX"]
            paths["pass_plain"] = stack.enter_context(rattan_path("pass_plain", CELLS["pass"], offload="plain"))
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
              "bw": "rattan bw 1 Gbit/s", "delay": "rattan delay 5 ms", "pass_socket": "rattan pass recvmmsg",
              "pass_plain": "rattan pass plain"}
    lines = [f"{'path':<19} {'TCP Gbit/s':>10} {'vs kernel':>16} {'vs TSO':>16} {'retx':>6} {'engine':>10}   "
             f"{'64B UDP kpps':>12} {'loss':>6} {'vs kernel':>16} {'vs TSO':>16}   {'ping avg ms':>11} {'p99':>6} "
             f"{'added':>6}"]
    for name in ("kernel", "kernel_tso", "pass", "bw") + tuple(n for n in GSO_RX_PATHS if n in r):
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


def goal_line(what: str, value: str, target: str, ok: bool) -> str:
    """A figure beside its goal and the verdict."""
    return f"{what:<32} {value:<26} goal {target:<11} {'ok' if ok else 'MISSED'}"


def main() -> int:
    """Parse the options, run everything, print the tables (or JSON); the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round of 2 s tests instead of three of 4 s")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of the tables")
    ap.add_argument("--gso-rx", action="store_true",
                    help="also `pass` with GSO mode reading by recvmmsg alone, and in plain mode (A/B of the ring)")
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

    def run() -> tuple[dict | None, dict | None]:
        results = None if a.only_scaling else run_all(a)
        return results, run_scaling(a) if a.scaling or a.only_scaling else None
    try:
        (results, scaling), busy = measured_run(run)
    except Interrupted as e:
        return e.status
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

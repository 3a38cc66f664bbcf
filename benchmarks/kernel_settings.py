"""Benchmark: kernel settings around rattan's real-time path, measured one at a time (issue 14, item 4).

On one rattan `pass` path (the engine's own cost on real packets; see real_forwarding.py) and the
kernel routing the same traffic (endpoint veths `tx off`), in rounds that visit every setting in
turn, so that a change in the machine's load touches them alike:

  default        what rattan does without options: engine thread and applications anywhere
  rps-ep-all     receive packet steering on the endpoint veths (rt-left, rt-right, in the
                 endpoints' namespaces) to every CPU: the flow hash picks one
  pin            the engine thread pinned to the last CPU (os.sched_setaffinity on its TID)
  pin+rps-ep     ... and RPS on the endpoint veths to the other CPUs: what the engine sends into
                 a veth is received (the receiver's TCP stack) off the engine's core
  pin+rps-ep+apps ... and the applications (iperf3) on the other CPUs (rattan run --app-cpus)
  pin+rps-eng    pin+rps-ep, plus RPS on the engine-side veths (e0, e1) to the engine's CPU
  pin+apps       the engine pinned, the applications on the other CPUs, no RPS
  pin+apps-same  the engine and the applications on the same CPU
  apps           the applications on the other CPUs, the engine anywhere

With --busy-poll, two more: `busy-read` (net.core.busy_read = 50 us while the engine's sockets
are opened, so SO_BUSY_POLL is 50 us on them) and `busy-poll` (net.core.busy_poll = 50 us during
the tests too: epoll busy polling). These are host-wide sysctls: each is put back right after.

Figures: iperf3 TCP goodput (one stream), 64-byte UDP packets/s received and loss, the engine
thread's share of a CPU (and of waiting for one), each setting's ratio to `default` round by round.
Ring sizes are build-time constants of io.c (RING_BLOCKS of RING_BLOCK bytes, RING_FRAME a frame):
build with RATTAN_CFLAGS="-DRING_BLOCKS=32" (python setup.py build_ext --inplace) and run `--only
default` for each size; the kernel's figures in each run are the common base.
Run as root, under `flock /tmp/bench.lock`: python benchmarks/kernel_settings.py [--quick]
[--only NAME,...] [--busy-poll] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
import _netbench as nb
from rattan.runtime import netns

CPUS = frozenset(os.sched_getaffinity(0))
ENGINE_CPU = frozenset({max(CPUS)})
OTHERS = CPUS - ENGINE_CPU or CPUS


@dataclass(frozen=True)
class Setting:
    """What one setting changes: where the engine thread and the applications run, and RPS masks
    on the endpoint veths and on the engine-side veths (None: untouched)."""
    engine: frozenset | None = None
    apps: frozenset | None = None
    rps_endpoint: frozenset | None = None
    rps_engine: frozenset | None = None
    busy: str = ""  # "", "read" (busy_read at socket set-up), "poll" (and busy_poll meanwhile)


SETTINGS = {
    "default": Setting(),
    "rps-ep-all": Setting(rps_endpoint=CPUS),
    "pin": Setting(engine=ENGINE_CPU),
    "pin+rps-ep": Setting(engine=ENGINE_CPU, rps_endpoint=OTHERS),
    "pin+rps-ep+apps": Setting(engine=ENGINE_CPU, rps_endpoint=OTHERS, apps=OTHERS),
    "pin+rps-eng": Setting(engine=ENGINE_CPU, rps_endpoint=OTHERS, rps_engine=ENGINE_CPU),
    "pin+apps": Setting(engine=ENGINE_CPU, apps=OTHERS),
    "pin+apps-same": Setting(engine=ENGINE_CPU, apps=ENGINE_CPU),
    "apps": Setting(apps=OTHERS),
}
BUSY = {"busy-read": Setting(busy="read"), "busy-poll": Setting(busy="poll")}
BUSY_US = "50"


def sysctl(name: str, value: str | None = None) -> str:
    """A host-wide sysctl's value; set to `value` when given (the old value is returned)."""
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path) as f:
        old = f.read().strip()
    if value is not None:
        with open(path, "w") as f:
            f.write(value)
    return old


@contextmanager
def applied(path: nb.Path, s: Setting):
    """Setting `s` on a rattan path for the duration of the block; everything put back after."""
    live = path.live
    eps = list(live.net.endpoints.values())
    old_poll = sysctl("net.core.busy_poll", BUSY_US) if s.busy == "poll" else None
    try:
        if s.engine:
            for tid in path.engine_tids:
                os.sched_setaffinity(tid, s.engine)
        for ep in eps:
            if s.rps_endpoint is not None:
                netns.set_rps(ep.netns, ep.ifname, s.rps_endpoint)
            if s.rps_engine is not None:
                netns.set_rps(live.net.engine_netns, ep.engine_ifname, s.rps_engine)
        path.app_cpus = s.apps
        yield
    finally:
        path.app_cpus = None
        for ep in eps:
            if s.rps_endpoint is not None:
                netns.set_rps(ep.netns, ep.ifname, frozenset())
            if s.rps_engine is not None:
                netns.set_rps(live.net.engine_netns, ep.engine_ifname, frozenset())
        for tid in path.engine_tids:
            try:
                os.sched_setaffinity(tid, CPUS)
            except OSError:
                pass
        if old_poll is not None:
            sysctl("net.core.busy_poll", old_poll)


def udp_small(path: nb.Path, seconds: float) -> dict:
    """The 64-byte UDP test (_netbench.udp_small), plus the frames the client's receive ring dropped (full)."""
    node = path.live.nodes["left"] if path.live else None
    before = path.live.engine.counters(node).dropped_by_reason.get("ring", 0) if node is not None else 0
    r = nb.udp_small(path, seconds)
    if node is not None:
        dropped = path.live.engine.counters(node).dropped_by_reason.get("ring", 0) - before
        r["ring_drop"] = dropped / max(1, r["sent_pps"] * seconds)
    return r


def run_all(a) -> dict:
    names = a.only
    r: dict = {"kernel": {"tcp": [], "udp64": []}, **{n: {"tcp": [], "udp64": []} for n in names}}
    settings = {**SETTINGS, **BUSY}
    with ExitStack() as stack:
        kernel = stack.enter_context(nb.kernel_path())
        plain = stack.enter_context(nb.rattan_path("pass", nb.CELLS["pass"]))
        paths = {n: plain for n in names if not settings[n].busy}
        if any(settings[n].busy for n in names):
            old = sysctl("net.core.busy_read", BUSY_US)  # new sockets take it as their SO_BUSY_POLL
            try:
                busy = stack.enter_context(nb.rattan_path("pass-busy", nb.CELLS["pass"]))
            finally:
                sysctl("net.core.busy_read", old)
            paths.update({n: busy for n in names if settings[n].busy})
        for test, fn in (("tcp", nb.tcp_goodput), ("udp64", udp_small)):
            for i in range(a.rounds):
                nb.log(f"kernel: {test}, {a.seconds} s (round {i + 1} of {a.rounds})")
                r["kernel"][test].append(fn(kernel, a.seconds))
                for n in names:
                    nb.log(f"{n}: {test}, {a.seconds} s (round {i + 1} of {a.rounds})")
                    with applied(paths[n], settings[n]):
                        r[n][test].append(fn(paths[n], a.seconds))
    return r


def ratio(r: dict, name: str, test: str, key: str, base: str) -> list[float]:
    """Round by round, `name` over `base`."""
    return [x[key] / b[key] for x, b in zip(r[name][test], r[base][test]) if b[key]]


def span(xs: list[float]) -> str:
    return f"{nb.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})" if len(xs) > 1 else f"{xs[0]:.2f}"


def report(r: dict, names: list[str]) -> str:
    lines = [f"CPUs {os.cpu_count()} (engine pinned to {sorted(ENGINE_CPU)}, others {sorted(OTHERS)})",
             f"{'setting':<17} {'TCP Gbit/s':>10} {'vs default':>17} {'vs kernel':>17} {'engine':>10}   "
             f"{'64B kpps':>8} {'loss':>6} {'ring':>6} {'vs default':>17} {'engine':>10}"]
    for n in ["kernel", *names]:
        tcp, udp = r[n]["tcp"], r[n]["udp64"]

        def eng(rounds):
            return (f"{nb.summary(rounds, 'engine_cpu'):.0%} + {nb.summary(rounds, 'engine_wait'):.0%}"
                    if "engine_cpu" in rounds[0] else "-")
        vs_def = lambda test, key: span(ratio(r, n, test, key, "default")) if "default" in r and n != "kernel" else "-"
        lines.append(f"{n:<17} {nb.summary(tcp, 'goodput_bps') / 1e9:>10.3f} {vs_def('tcp', 'goodput_bps'):>17} "
                     f"{span(ratio(r, n, 'tcp', 'goodput_bps', 'kernel')):>17} {eng(tcp):>10}   "
                     f"{nb.summary(udp, 'received_pps') / 1e3:>8.0f} {nb.summary(udp, 'loss'):>6.1%} "
                     f"{(format(nb.summary(udp, 'ring_drop'), '.1%') if 'ring_drop' in udp[0] else '-'):>6} "
                     f"{vs_def('udp64', 'received_pps'):>17} {eng(udp):>10}")
    rounds = len(r["kernel"]["tcp"])
    lines.append(f"Medians of {rounds} round{'s' * (rounds > 1)}; ratios: median (range) round by round. "
                 "engine: its thread's share of a CPU + of waiting for one.\nring: the share of the 64-byte datagrams sent that the engine's receive ring dropped (full).")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round of 2 s tests instead of three of 3 s")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    ap.add_argument("--only", type=lambda v: v.split(","), help="these settings only (default: all)")
    ap.add_argument("--busy-poll", action="store_true", help="add the busy-polling settings (host-wide sysctls)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("kernel_settings: needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.seconds = 2 if a.quick else 3
    a.only = a.only or [*SETTINGS, *(BUSY if a.busy_poll else {})]
    unknown = [n for n in a.only if n not in SETTINGS and n not in BUSY]
    if unknown:
        print(f"kernel_settings: unknown setting {', '.join(unknown)}; known: {', '.join([*SETTINGS, *BUSY])}",
              file=sys.stderr)
        return 2
    try:
        results, busy = nb.measured_run(run_all, a)
    except nb.Interrupted as e:
        return e.status
    if a.json:
        print(json.dumps({"cpus": sorted(CPUS), "engine_cpu": sorted(ENGINE_CPU), "other_cpu": busy,
                          "rounds": a.rounds, "seconds": a.seconds, "results": results}, indent=2))
    else:
        print(report(results, a.only))
        print(f"other processes used {busy:.1%} of the CPUs during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())

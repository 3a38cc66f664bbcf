"""Benchmark: how the real-time loop's sleeping and waking costs CPU and lateness (docs/running.md, "Timing").

Measures, in one run, rattan channels between two namespaces, each built several ways:
  before    coalescing, merging and slack off (Engine.set_coalesce(0), merge=False, slack_ns=0): a
            timer wake-up at every departure's exact time and a sendmmsg per port, each TCP segment
            a frame of its own, the loop's timing before departures were batched;
  exact     as the default, but the bw cell's departures without slack (slack_ns=0, bw only):
            each leaves on time, sharing a wake-up only within the coalescing window;
  unmerged  batched as by default, but GSO merging at egress off (bw only): the segments the bw
            cell releases at one wake-up leave as separate frames instead of one super-frame;
  default   the default: the timer armed early by the least recent wake-up latency, timer
            wake-ups spaced by the automatic coalescing window, one sendmmsg for both ports,
            consecutive TCP segments merged into super-frames, the bw cell's departures (a paced
            cell) up to 8 of its departure intervals late, at most 50 us, to share a wake-up;
  slack100  the default with a slack of at most 100 us instead of 50 (slack_ns=100_000, bw only);
  rps       the default with receive packet steering on the endpoint veths (rps_cpus="auto", bw
            only): the receiver's TCP stack runs off the engine's core;
  precise   --precise: the last stretch before each departure spun (delay only).
For `bw { rate = 1Gbps }` each way: iperf3 TCP goodput (one stream, first second omitted), the
engine thread's CPU time (utime + stime of /proc/self/task/<tid>/stat) as a share of a core, frames
per sendmmsg and timer wake-ups per second. For `delay { delay = 5ms }` each way: the engine's own
count of lateness (send time - planned time) of UDP at 500 Mbit/s in 1400-byte datagrams, paced
every 100 us (about 4 packets a burst) and every 1 ms (bursts of about 45), with the engine's CPU.
Rounds visit the modes in turn, so a change in the machine's load touches each alike.

Run as root, alone on the machine (flock /tmp/bench.lock): python benchmarks/real_timing.py [--quick] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import ExitStack, contextmanager

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from _netbench import (CELLS, DELAY_NS, MTU, TCP_PAYLOAD, Interrupted, Path, log, measured_run, median, rattan_path,
                       tcp_goodput, transit, us)

MODES = {"before": {"coalesce_ns": 0, "merge": False, "slack_ns": 0}, "unmerged": {"merge": False},
         "exact": {"slack_ns": 0}, "default": {}, "slack100": {"slack_ns": 100_000}, "rps": {"rps_cpus": "auto"}, "precise": {"precise": True}}
BW_MODES = ("before", "unmerged", "exact", "default", "slack100", "rps")
DELAY_MODES = ("before", "default", "precise")
LOAD = "500M"
PACINGS = (100, 1000)


@contextmanager
def timing_path(cell: str, mode: str):
    """A rattan channel with `cell` each way, its engine in this process with `mode`'s timing."""
    with rattan_path(f"{cell} {mode}", CELLS[cell], **MODES[mode]) as path:
        path.live.timing()  # precise: the stretch is measured before anything is
        yield path


class EngineCPU:
    """The engine thread's CPU time (utime + stime, /proc/self/task/<tid>/stat) since this object
    was made, as a share of one core; and its loop's counters over the same time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0, self.c0, self.timing0 = time.monotonic(), self._ticks(), path.live.timing()

    def _ticks(self) -> int:
        total = 0
        for tid in self.path.engine_tids:
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    v = f.read().rsplit(")", 1)[1].split()
                total += int(v[11]) + int(v[12])
            except OSError:
                pass
        return total

    def result(self) -> dict:
        dt = time.monotonic() - self.t0
        cpu = (self._ticks() - self.c0) / os.sysconf("SC_CLK_TCK") / dt
        t1 = self.path.live.timing()
        d = {k: t1[k] - self.timing0[k] for k in ("wakeups", "timer_wakeups", "timer_sets", "tx_calls", "tx_frames",
                                                   "spin_ns")}
        return {"engine_cpu": cpu, "frames_per_call": d["tx_frames"] / d["tx_calls"] if d["tx_calls"] else 0.0,
                "timer_wakeups_per_s": d["timer_wakeups"] / dt, "wakeups_per_s": d["wakeups"] / dt,
                "spin_share": d["spin_ns"] / 1e9 / dt, "coalesce_us": t1["coalesce_ns"] / 1000,
                "margin_us": t1["margin_ns"] / 1000, "stretch_us": t1["stretch_ns"] / 1000}


def run_all(a) -> dict:
    """Every path built at once (an idle engine sleeps), then each test in rounds over the modes."""
    r: dict = {"bw": {m: [] for m in BW_MODES},
               "delay": {m: {p: [] for p in PACINGS} for m in DELAY_MODES}}
    with ExitStack() as stack:
        paths = {("bw", m): stack.enter_context(timing_path("bw", m)) for m in r["bw"] if a.only != "delay"}
        paths.update({("delay", m): stack.enter_context(timing_path("delay", m)) for m in DELAY_MODES
                      if a.only != "bw"})
        for i in range(a.rounds if a.only != "delay" else 0):
            for m in r["bw"]:
                log(f"bw 1 Gbit/s, {m}: TCP, {a.seconds} s (round {i + 1} of {a.rounds})")
                cpu = EngineCPU(paths[("bw", m)])
                res = tcp_goodput(paths[("bw", m)], a.seconds)
                # how late the data direction's frames left, since the path was built (both endpoints)
                late = paths[("bw", m)].live.lateness()
                r["bw"][m].append({**res, **cpu.result(), "late_p50_us": late.quantile_us(0.5),
                                   "late_p99_us": late.quantile_us(0.99)})
        for i in range(a.rounds if a.only != "bw" else 0):
            for pacing in PACINGS:
                for m in DELAY_MODES:
                    log(f"delay 5 ms, {m}: UDP {LOAD}bit/s in bursts every {pacing} us, {a.seconds} s "
                        f"(round {i + 1} of {a.rounds})")
                    cpu = EngineCPU(paths[("delay", m)])
                    res = transit(paths[("delay", m)], a.seconds, LOAD, DELAY_NS, pacing, False)
                    r["delay"][m][pacing].append({**res, **cpu.result()})
    return r


def med(rounds: list[dict], key: str) -> float:
    return median([x[key] for x in rounds])


def med_engine(rounds: list[dict], key: str) -> float | None:
    xs = [x["engine"][key] for x in rounds]
    return None if any(v is None for v in xs) else median(xs)


def goal(what: str, value: str, target: str, ok: bool) -> str:
    return f"{what:<40} {value:<22} goal {target:<9} {'ok' if ok else 'MISSED'}"


def report(r: dict, rounds: int) -> str:
    lines = bw_report(r) if r["bw"]["default"] else []
    if r["delay"]["default"][PACINGS[0]]:
        lines += delay_report(r)
    lines.append(f"Medians of {rounds} round{'s' * (rounds > 1)}.")
    return "\n".join(lines)


def bw_report(r: dict) -> list[str]:
    expected = 1e9 * TCP_PAYLOAD / MTU
    lines = [f"bw 1 Gbit/s each way, one TCP stream (expected goodput {expected / 1e6:.1f} Mbit/s)",
             f"{'timing':<9} {'goodput Mbit/s':>14} {'engine CPU':>10} {'per Gbit/s':>10} {'frames/call':>11} "
             f"{'timer wake/s':>12} {'wake-ups/s':>10} {'window us':>9} {'late p50':>8} {'late p99':>8}"]
    for m, rs in r["bw"].items():
        per = median([x["engine_cpu"] / (x["goodput_bps"] / 1e9) for x in rs])
        lines.append(f"{m:<9} {med(rs, 'goodput_bps') / 1e6:>14.1f} {med(rs, 'engine_cpu'):>10.0%} {per:>10.0%} "
                     f"{med(rs, 'frames_per_call'):>11.2f} {med(rs, 'timer_wakeups_per_s'):>12.0f} "
                     f"{med(rs, 'wakeups_per_s'):>10.0f} {med(rs, 'coalesce_us'):>9.0f} "
                     f"{med(rs, 'late_p50_us'):>8.1f} {med(rs, 'late_p99_us'):>8.1f}")

    def per_goodput(base: str) -> str:
        return ", ".join(f'{(d["engine_cpu"] / d["goodput_bps"]) / (b["engine_cpu"] / b["goodput_bps"]):.2f}'
                         for b, d in zip(r["bw"][base], r["bw"]["default"]))
    lines += ["engine CPU: the engine thread's share of a core; per Gbit/s: that over the goodput; late: the "
              "lateness (us) of the frames the endpoints sent, over the run so far",
              f"default / before, engine CPU per goodput, round by round: {per_goodput('before')}",
              f"default / unmerged (GSO merging at egress off), the same: {per_goodput('unmerged')}",
              f"default / exact (the bw cell's departures without slack), the same: {per_goodput('exact')}",
              f"default / rps (receive packet steering on the veths), the same: {per_goodput('rps')}",
              f"default / slack100 (at most 100 us of slack), the same: {per_goodput('slack100')}", ""]
    cpu = med(r["bw"]["default"], "engine_cpu")
    good, good0 = med(r["bw"]["default"], "goodput_bps"), med(r["bw"]["before"], "goodput_bps")
    # a lower CPU share at a lower goodput is no saving: the goal holds only with the goodput kept
    lines.append(goal("bw 1 Gbit/s engine CPU", f"{cpu:.0%} (before {med(r['bw']['before'], 'engine_cpu'):.0%})",
                      "<= 50 %", cpu <= 0.5 and good >= 0.98 * expected))
    lines.append(goal("bw 1 Gbit/s goodput, default vs before", f"{good / 1e6:.1f} vs {good0 / 1e6:.1f} Mbit/s",
                      "unchanged", good >= 0.98 * good0))
    return lines + [""]


def delay_report(r: dict) -> list[str]:
    lines = [f"delay 5 ms each way, UDP {LOAD}bit/s of 1400 B datagrams: the engine's lateness count (us)",
             f"{'timing':<9} {'bursts':>8} {'p50':>6} {'p99':>6} {'p99.9':>6} {'engine CPU':>10} {'spinning':>8} "
             f"{'UDP loss':>8}"]
    for pacing in PACINGS:
        for m in DELAY_MODES:
            rs = r["delay"][m][pacing]
            lines.append(f"{m:<9} {pacing:>5} us {us(med_engine(rs, 'p50_us')):>6} {us(med_engine(rs, 'p99_us')):>6} "
                         f"{us(med_engine(rs, 'p999_us')):>6} {med(rs, 'engine_cpu'):>10.0%} "
                         f"{med(rs, 'spin_share'):>8.0%} {med(rs, 'loss'):>8.2%}")
    stretch = med(r["delay"]["precise"][PACINGS[0]], "stretch_us")
    lines += [f"precise stretch: {stretch:.0f} us (p99 of 300 timer sleeps at start); default margin "
              f"{med(r['delay']['default'][PACINGS[0]], 'margin_us'):.0f} us, window "
              f"{med(r['delay']['default'][PACINGS[0]], 'coalesce_us'):.0f} us", ""]
    for m, target in (("default", 100), ("precise", 30)):
        for pacing in PACINGS:
            p99 = med_engine(r["delay"][m][pacing], "p99_us")
            lines.append(goal(f"delay 5 ms lateness p99, {m}, {pacing} us", f"{us(p99)} us "
                              f"(CPU {med(r['delay'][m][pacing], 'engine_cpu'):.0%})",
                              f"<= {target} us", p99 is not None and p99 <= target))
    return lines + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round of 2 s tests instead of three of 4 s")
    ap.add_argument("--only", choices=("bw", "delay"), help="measure only the bw or only the delay figures")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of the tables")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("real_timing: needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    a.rounds, a.seconds = (1, 2) if a.quick else (3, 4)
    try:
        results, busy = measured_run(run_all, a)
    except Interrupted as e:
        return e.status
    if a.json:
        print(json.dumps({"other_cpu": busy, "rounds": a.rounds, "seconds": a.seconds, "results": results}, indent=2))
    else:
        print(report(results, a.rounds))
        print(f"other processes used {busy:.1%} of the CPUs during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())

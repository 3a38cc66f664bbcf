"""Benchmark: `rattan sim` memory against the length of the run, for a 10 Gbit/s flow.

One `rattan sim` run (the same API the command calls) of a 10 Gbit/s CBR flow of 1500-byte
packets through `bw { rate = 10Gbps } -> delay { delay = 10ms }` for 10 minutes of virtual time
(500 M packets). At 1, 2, 5 and 10 minutes of virtual time it prints the packets delivered so far,
the process's resident memory then (/proc/self/statm) and its peak so far (getrusage ru_maxrss),
and the wall time; then the ratio of the memory at 10 minutes to that at 1 minute, which is 1.00
when memory is flat. The delay statistics live in the engine's fixed-size histogram; with
`--samples` (raw per-packet samples, as `rattan sim --samples`) the same run grows by 16 bytes per
packet, so give it a shorter `--minutes`.

    python benchmarks/sim_memory.py [--minutes M] [--rate R] [--size BYTES] [--samples]
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from rattan.compiler import compile_text
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.sim import run

PATH = "channel c {\n    left -> bw { rate = 10Gbps } -> delay { delay = 10ms } -> right\n}\n"
MIB = 2**20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10, help="virtual time to run (default 10)")
    ap.add_argument("--rate", default="10Gbps", help="the flow's rate (default 10Gbps)")
    ap.add_argument("--size", default="1500B", help="packet size (default 1500B)")
    ap.add_argument("--samples", action="store_true", help="keep raw per-packet samples (rattan sim --samples)")
    a = ap.parse_args()
    comp = compile_text(PATH, "sim_memory.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    dur_ns = round(a.minutes * 60e9)
    marks = sorted({m * 60 * 10**9 for m in (1, 2, 5, 10) if m * 60e9 <= dur_ns} | {dur_ns})
    rows, t0 = [], time.monotonic()

    def progress(t_ns: int, _dur: int) -> None:  # called once per interval of the series (100 ms)
        while marks and t_ns >= marks[0]:
            rows.append((marks.pop(0), rss_bytes(), peak_bytes(), time.monotonic() - t0))

    print(f"rattan sim: {a.rate} CBR of {a.size} packets through bw 10Gbps -> delay 10ms, "
          f"{a.minutes:g} min of virtual time{' with --samples' if a.samples else ''}")
    before = rss_bytes()
    r = run(plan, None, [f"left->right:cbr:{a.rate}:size={a.size}"], f"{dur_ns}ns", 1, progress=progress,
            samples=a.samples)
    f = r["flows"][0]
    pps = f["sent_packets"] / (dur_ns / 1e9)
    print(f"resident before the run: {before / MIB:.1f} MiB\n")
    print(f"{'virtual time':>12} {'packets':>12} {'RSS MiB':>9} {'peak MiB':>9} {'wall s':>8}")
    for t_ns, rss, peak, wall in rows:
        print(f"{t_ns / 60e9:>10g} min {round(pps * t_ns / 1e9):>12} {rss / MIB:>9.1f} {peak / MIB:>9.1f} {wall:>8.1f}")
    print(f"\ndelivered {f['received_packets']} packets ({f['throughput_bps'] / 1e9:.2f} Gbit/s), "
          f"delay p50 {f['delay_ms']['p50']:.3f} ms, p99 {f['delay_ms']['p99']:.3f} ms")
    print(f"the result's time series: {len(r['series']['t_s'])} samples (one per 100 ms, at most 10,000: it grows "
          "with virtual time, not with packets)")
    if len(rows) > 1:
        print(f"peak memory at {rows[-1][0] / 60e9:g} min / at {rows[0][0] / 60e9:g} min: "
              f"{rows[-1][2] / rows[0][2]:.2f} (1.00: flat)")


if __name__ == "__main__":
    main()

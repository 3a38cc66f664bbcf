"""Benchmark: the engine cost of a channel with a Python cell ticking every 10 ms.

The channel is `bw { rate = 50Mbps } -> delay { delay = 10ms }` driven by a Python cell whose tick
reads both cells' counters and the delay in force, and sets the delay (a model of realistic weight:
three reads and one change per tick). The same channel without the cell (its plan with the
controller removed: the very same C cells) is the baseline, measured in the same run:
  sim   `rattan sim` of 60 s of virtual time with a 40 Mbit/s CBR flow: CPU time (process) and wall
        time of each, their ratio, and the cost of one tick;
  real  (root) `rattan run`'s process, both directions pinged 200 times a second for 10 s: its CPU
        time (engine thread, Python cell thread and all) with and without the cell.
Figures move with the machine's load: each is the best of --repeat runs, taken in turns.
Run: python benchmarks/python_cell_tick.py [--repeat N] [--no-real]
"""
from __future__ import annotations

import argparse
import copy
import os
import resource
import subprocess
import sys
import time

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from rattan import PythonCell
from rattan.compiler import compile_text
from rattan.plan import build_plan
from rattan.registry import Registry

TICK = "10ms"


class Wobble(PythonCell):
    """Reads its cells' counters and the delay in force at every tick, and moves the delay."""

    def inner(self, config):
        return [("link", "bw", {"rate": config["rate"]}), ("path", "delay", {"delay": config["delay"]})]

    def tick(self, now_ns, cells):
        link, path = cells["link"], cells["path"]
        queued = link.counters().queued_packets + path.counters().queued_packets
        base = self.config["delay"]
        path.set("delay", base + (now_ns // 10_000_000 % 5) * 1_000_000 + (queued > 1000))
        path.get("delay")


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "wobble",
    "description": "Benchmark Python cell.", "type": "object", "additionalProperties": False,
    "properties": {
        "rate": {"type": "integer", "minimum": 1, "x-unit": "rate", "description": "Link rate."},
        "delay": {"type": "integer", "minimum": 0, "x-unit": "time", "description": "Base delay."},
        "interval": {"type": "integer", "minimum": 1, "x-unit": "time", "description": "Tick period."},
    },
    "required": ["rate", "delay", "interval"],
    "x-rattan": {"python": "python_cell_tick:Wobble", "tick": "interval"},  # this file, as a module
}

TEXT = f"""channel c {{
  cell w: wobble {{ rate = 50Mbps, delay = 10ms, interval = {TICK} }}
  left -> w -> right
  right -> delay {{ delay = 10ms }} -> left
}}
"""


def plans() -> tuple[dict, dict]:
    """(with the Python cell, the same channel without its controller)."""
    reg = Registry()
    reg.load_builtins()
    reg.add_cell(SCHEMA, "benchmark")
    comp = compile_text(TEXT, "bench.rtn", registry=reg)
    assert comp.ok, [d.message for d in comp.diagnostics]
    with_cell = build_plan(comp.program, comp.sources, reg)
    without = copy.deepcopy(with_cell)
    del without["channels"][0]["controllers"]
    return with_cell, without


def sim_once(plan: dict) -> tuple[float, float, int]:
    from rattan.runtime import sim
    c0, w0 = time.process_time(), time.perf_counter()
    doc = sim.run(plan, None, ["left->right:cbr:40Mbps"], "60s", seed=1)
    return time.process_time() - c0, time.perf_counter() - w0, doc.get("python_cells", {}).get("w", {}).get("ticks", 0)


def real_once(plan: dict, seconds: float = 10.0) -> float:
    """CPU seconds of this process (every thread) while a real run forwards pings for `seconds`."""
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.run import ChannelRun
    with ChannelRun(plan, choose_channel(plan, None)) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        subprocess.run(["ip", "netns", "exec", left.netns, "ping", "-q", "-n", "-i", "0.005",
                        "-w", str(int(seconds)), right.address], capture_output=True, timeout=seconds + 10)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-real", action="store_true", help="skip the real run (it needs root)")
    args = ap.parse_args()
    with_cell, without = plans()
    best: dict[str, tuple] = {}
    for _ in range(args.repeat):
        for name, plan in (("without", without), ("with", with_cell)):
            got = sim_once(plan)
            if name not in best or got[0] < best[name][0]:
                best[name] = got
    (cb, wb, _), (cw, ww, ticks) = best["without"], best["with"]
    print(f"sim, 60 s virtual, CBR 40 Mbit/s, best of {args.repeat}:")
    print(f"  without the Python cell   CPU {cb:6.3f} s   wall {wb:6.3f} s")
    print(f"  with it, tick {TICK:>5}     CPU {cw:6.3f} s   wall {ww:6.3f} s   {ticks} ticks")
    print(f"  ratio with/without        CPU {cw / cb:6.3f}     wall {ww / wb:6.3f}")
    print(f"  cost of one tick          {(cw - cb) / ticks * 1e6:6.1f} us of CPU "
          f"({(cw - cb) / 60 * 100:.3f} % of a core per virtual second)")
    if args.no_real:
        return 0
    if os.geteuid() != 0:
        print("real: skipped (needs root)")
        return 0
    real = {"without": [], "with": []}
    for _ in range(args.repeat):
        for name, plan in (("without", without), ("with", with_cell)):
            real[name].append(real_once(plan))
    rb, rw = min(real["without"]), min(real["with"])
    print(f"real, 10 s, ping every 5 ms, CPU of the rattan process, best of {args.repeat} "
          f"(all: without {', '.join(f'{x:.2f}' for x in real['without'])}; "
          f"with {', '.join(f'{x:.2f}' for x in real['with'])}):")
    print(f"  without the Python cell   {rb:6.3f} s  ({rb / 10 * 100:.1f} % of a core)")
    print(f"  with it, tick {TICK:>5}     {rw:6.3f} s  ({rw / 10 * 100:.1f} % of a core)")
    print(f"  ratio with/without        {rw / rb:6.3f}   (+{(rw - rb) / 10 * 100:.2f} % of a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

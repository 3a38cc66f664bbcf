"""Benchmark: what a C cell costs as a plugin library against the same cell built into the engine.

The very same source, stdlib_cells/token_bucket/token_bucket.c, is compiled twice: into the engine
(the built-in `token_bucket`), and into a plugin library whose copy of the ops table is registered
as `token_bucket_plugin` through rt_load_cells, as `pip install` of a plugin does. Both run the
same policed chain (token bucket as a policer at 20 Gbit/s, so every packet passes through it,
then a delay) in virtual time, alternated in one process; the figure is packets per CPU second.
Run: python benchmarks/plugin_cell_cost.py [--packets N] [--rounds R]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from rattan.engine import Engine
from rattan.engine.binding import load_cells
from rattan.registry import default_registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEC = 10**9

# The built-in's source, with its ops table copied under another name when the library loads. The
# table is renamed first: the engine's symbols are global, and a plugin's reference to a global name the
# engine also defines would bind to the engine's (the built-in's) table.
WRAPPER = r"""
#define rt_cell_token_bucket rt_cell_token_bucket_in_plugin
#include "token_bucket/token_bucket.c"
static rt_cell_ops copy;
__attribute__((constructor)) static void name_the_copy(void) {
    copy = rt_cell_token_bucket_in_plugin;
    copy.type = "token_bucket_plugin";
}
RT_PLUGIN(&copy);
"""


def build_plugin(into: str) -> str:
    from rattan.engine import build
    src, lib = os.path.join(into, "plugin.c"), os.path.join(into, "token_bucket_plugin.so")
    with open(src, "w") as f:
        f.write(WRAPPER)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-std=c11", *("-I" + d for d in build.include_dirs()),
                    src, "-o", lib], check=True)
    return lib


def pps(type_: str, config: dict, packets: int) -> float:
    e = Engine(1)
    left, right = e.add_endpoint(), e.add_endpoint()
    tb = e.add_cell(type_, config)
    d = e.add_cell("delay", {"delay": 10_000_000, "jitter": 0, "distribution": "uniform",
                             "correlation": 0.0, "reorder": False})
    e.link(left, 0, tb)
    e.link(tb, 0, d)
    e.link(d, 0, right)
    f = e.add_flow(left, right, "cbr", 1_000_000 * 1500 * 8, 1500)  # 1 Mpps of logical time
    t0 = time.process_time()
    e.run_until(packets // 1_000_000 * SEC)
    dt = time.process_time() - t0
    s = e.flow_stats(f)
    assert s["received_packets"] > 0.99 * s["sent_packets"] - 20_000, s  # nothing policed away
    return s["sent_packets"] / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--packets", type=int, default=5_000_000, help="packets per measurement (default 5M)")
    ap.add_argument("--rounds", type=int, default=5, help="alternated measurements of each (default 5)")
    a = ap.parse_args()
    ct = default_registry().get("token_bucket")
    config = {k: v["default"] for k, v in ct.properties.items() if "default" in v}
    config.update(rate=20_000_000_000, burst=1_000_000)
    with tempfile.TemporaryDirectory() as d:
        load_cells(build_plugin(d))
        builtin, plugin = [], []
        for _ in range(a.rounds):
            builtin.append(pps("token_bucket", config, a.packets))
            plugin.append(pps("token_bucket_plugin", config, a.packets))
    b, p = max(builtin), max(plugin)
    print(f"token bucket + delay, {a.packets:,} packets, best of {a.rounds} alternated runs:")
    print(f"  built in:           {b / 1e6:6.2f} Mpps  {1e9 / b:6.1f} ns/packet  (runs {min(builtin) / 1e6:.2f}-{b / 1e6:.2f})")
    print(f"  plugin library:     {p / 1e6:6.2f} Mpps  {1e9 / p:6.1f} ns/packet  (runs {min(plugin) / 1e6:.2f}-{p / 1e6:.2f})")
    print(f"  plugin / built in:  {p / b:.3f}x throughput, {1e9 / p - 1e9 / b:+.1f} ns per packet")


if __name__ == "__main__":
    main()

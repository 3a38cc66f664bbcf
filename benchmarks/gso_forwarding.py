"""GSO mode against plain mode and the kernel: pass-through TCP, and what each cell's exactness costs.

Rows, in one run, each a single TCP stream (iperf3, first second omitted) through:
  kernel tx off   the kernel routing between namespaces, endpoint veths `tx off` (frames <= MTU)
  kernel tso      the same with the veths' default offloads (TSO/GRO: 64 KiB super-frames)
  plain pass      rattan, `--offload plain`, no cell
  gso pass        rattan, `--offload gso`, no cell: super-frames cross whole
  gso loss 0%     a `loss` cell that drops nothing: the engine cuts every super-frame (exactness's cost)
  gso bw 5Gbps    a `bw` cell: super-frames stay whole, counted as the bytes of all their segments
Ratios are against `kernel tx off` and `kernel tso` of the same run. For `bw`, the IP rate the cell
sent (its counters) is printed against 5 Gbit/s.

Run as root, one at a time on the machine: flock /tmp/bench.lock python benchmarks/gso_forwarding.py
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager

import real_forwarding as rf
from rattan.compiler import compile_text
from rattan.passes.context import Options
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.channel import choose_channel
from rattan.runtime.run import ChannelRun

ROWS = {
    "plain pass": ("plain", "pass {}"),
    "gso pass": ("gso", "pass {}"),
    "gso loss 0%": ("gso", "loss { rate = 0% }"),
    "gso bw 5Gbps": ("gso", "bw { rate = 5Gbps }"),
}


@contextmanager
def kernel_tso_path():
    """rf.kernel_path with the endpoints' offloads left on (only IPv6 turned off)."""
    tune = rf.netdev_tune
    rf.netdev_tune = lambda ns, ifname, no_ipv6=True: tune(ns, None, no_ipv6)
    try:
        with rf.kernel_path() as p:
            p.name = "kernel tso"
            yield p
    finally:
        rf.netdev_tune = tune


@contextmanager
def rattan_gso_path(name: str, offload: str, cell: str):
    """A rattan channel with `cell` each way in `offload` mode (cells kept even if they do nothing)."""
    comp = compile_text(rf.CHANNEL.format(cell=cell), f"<bench {name}>.rtn", options=Options(optimize=False))
    if not comp.ok:
        raise RuntimeError(f"channel does not compile: {comp.diagnostics}")
    plan = build_plan(comp.program, comp.sources, default_registry())
    plan["run"]["offload"] = offload
    before = rf.threads()
    with ChannelRun(plan, choose_channel(plan, None), seed=1) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        path = rf.Path(name, left.netns_path, right.netns_path, right.address, right.ifname,
                       live.net.engine_netns_path, left.engine_ifname, live=live,
                       engine_tids=sorted(rf.threads() - before))
        if "bw" in cell:
            path.bw_node = next(n for k, n in live.nodes.items() if k.startswith("bw"))
        try:
            yield path
        finally:
            path.stop_all()


def measure(seconds: float, rounds: int) -> dict:
    out: dict[str, list[dict]] = {}
    for _ in range(rounds):
        with rf.kernel_path() as p:
            out.setdefault("kernel tx off", []).append(rf.tcp_goodput(p, seconds))
        with kernel_tso_path() as p:
            out.setdefault("kernel tso", []).append(rf.tcp_goodput(p, seconds))
        for name, (offload, cell) in ROWS.items():
            with rattan_gso_path(name, offload, cell) as p:
                r = rf.tcp_goodput(p, seconds)
                left = p.live.nodes["left"]
                r.update(p.live.engine.gso_stats(left))
                out.setdefault(name, []).append(r)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = measure(a.seconds, a.rounds)
    if a.json:
        print(json.dumps(res, indent=1))
    print(f"{'row':14} {'round':>5} {'Gbit/s':>7} {'/tx off':>7} {'/tso':>6} {'eng cpu':>7} "
          f"{'super':>7} {'segs/sf':>7} {'cut':>7} {'bw IP Gbit/s':>12}")
    for i in range(a.rounds):
        base, tso = res["kernel tx off"][i]["goodput_bps"], res["kernel tso"][i]["goodput_bps"]
        for name, rows in res.items():
            r = rows[i]
            g = r["goodput_bps"]
            sf = r.get("super_frames", 0)
            print(f"{name:14} {i:5d} {g / 1e9:7.2f} {g / base:7.2f} {g / tso:6.2f} "
                  f"{r.get('engine_cpu', 0):7.2f} {sf:7d} {r.get('super_segments', 0) / sf if sf else 0:7.1f} "
                  f"{r.get('cut_frames', 0):7d} {r['bw_ip_bps'] / 1e9 if 'bw_ip_bps' in r else float('nan'):12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

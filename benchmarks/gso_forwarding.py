"""GSO mode against plain mode and the kernel: pass-through TCP, and what each cell's exactness costs.

Rows, in one run, each a single TCP stream (iperf3, first second omitted) through:
  kernel tx off   the kernel routing between namespaces, endpoint veths `tx off` (frames <= MTU)
  kernel tso      the same with the veths' default offloads (TSO/GRO: 64 KiB super-frames)
  plain pass      rattan, `--offload plain`, no cell
  gso pass        rattan, `--offload gso`, no cell: super-frames cross whole
  gso recvmmsg    the same, GSO mode reading with recvmmsg alone, not its receive ring
                  (RATTAN_GSO_RX=socket: what GSO mode did first)
  gso loss 0%     a `loss` cell that drops nothing: the engine cuts every super-frame (exactness's cost)
  gso bw 5Gbps    a `bw` cell: super-frames stay whole, counted as the bytes of all their segments
Ratios are against `kernel tx off` and `kernel tso` of the same run. For `bw`, the IP rate the cell
sent (its counters) is printed against 5 Gbit/s.

Run as root, one at a time on the machine: flock /tmp/bench.lock python benchmarks/gso_forwarding.py
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from _netbench import kernel_path, rattan_path, tcp_goodput

ROWS = {
    "plain pass": ("plain", "pass {}"),
    "gso pass": ("gso", "pass {}"),
    "gso recvmmsg": ("gso", "pass {}"),
    "gso loss 0%": ("gso", "loss { rate = 0% }"),
    "gso bw 5Gbps": ("gso", "bw { rate = 5Gbps }"),
}


def measure(seconds: float, rounds: int) -> dict:
    out: dict[str, list[dict]] = {}
    for i in range(rounds):
        with kernel_path() as p:
            out.setdefault("kernel tx off", []).append(tcp_goodput(p, seconds))
        with kernel_path(offloads=True) as p:  # the endpoints' offloads left on (only IPv6 off)
            out.setdefault("kernel tso", []).append(tcp_goodput(p, seconds))
        rows = list(ROWS.items())
        if i % 2:  # the two receive paths of GSO mode swap places every other round: neither always goes first
            a, b = rows.index(("gso pass", ROWS["gso pass"])), rows.index(("gso recvmmsg", ROWS["gso recvmmsg"]))
            rows[a], rows[b] = rows[b], rows[a]
        for name, (offload, cell) in rows:
            if name == "gso recvmmsg":
                os.environ["RATTAN_GSO_RX"] = "socket"  # read when the engine opens its ports
            with rattan_path(name, cell, offload=offload, optimize=False) as p:  # cells kept even if they do nothing
                os.environ.pop("RATTAN_GSO_RX", None)
                r = tcp_goodput(p, seconds)
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

"""What the packet log costs on the real path (root): iperf3 TCP goodput through a 100 Gbit/s `bw`
cell each way (a real cell that is never the bottleneck; `pass` cells are compiled away, so there
would be nothing to log), without `--packet-log`, with it on both cells keeping whole packets (the
default), and keeping 64 bytes of each (`--packet-log-snaplen 64`): two records per packet and
direction, in alternating rounds.

    python benchmarks/packet_log_cost.py [--rounds N] [--seconds S]

Prints each round's goodput and log size, and each log's slowdown (medians); the goal is under 10 %.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)
from rattan.compiler import compile_text
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.channel import choose_channel
from rattan.runtime.run import LiveRun

PATH = """channel c {
    endpoints left, right
    left -> bw { rate = 100Gbps, queue = droptail { packets = 4000 } } -> right
    right -> bw { rate = 100Gbps, queue = droptail { packets = 4000 } } -> left
}"""


SNAPLENS = {"whole packets": 0, "64 bytes": 64}  # --packet-log-snaplen of each logged case


def goodput(channel: dict, plan: dict, seconds: int, log: str | None, snaplen: int = 0) -> tuple[float, int]:
    """(TCP goodput in bit/s, log bytes written) of one iperf3 run through a fresh instance."""
    with LiveRun(plan, [channel], 1, None, log, packet_log_snaplen=snaplen) as live:
        inst = live.instances[0]
        left, right = inst.net.endpoints["left"], inst.net.endpoints["right"]
        server = subprocess.Popen(["ip", "netns", "exec", right.netns, "iperf3", "-s", "-1"],
                                  stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            out = subprocess.run(["ip", "netns", "exec", left.netns, "iperf3", "-c", right.address, "-t", str(seconds),
                                  "-O", "1", "-J"], capture_output=True, text=True, timeout=seconds + 30).stdout
            server.wait(10)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    size = os.path.getsize(log) if log else 0
    return json.loads(out)["end"]["sum_received"]["bits_per_second"], size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    comp = compile_text(PATH, "fast.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    channel = choose_channel(plan, None)
    off: list[float] = []
    on: dict[str, list[float]] = {name: [] for name in SNAPLENS}
    written: dict[str, int] = {name: 0 for name in SNAPLENS}
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.rounds):
            print(f"round {i + 1}/{a.rounds}", file=sys.stderr)
            off.append(goodput(channel, plan, a.seconds, None)[0])
            line = f"round {i + 1}: without log {off[-1] / 1e9:.2f} Gbit/s"
            for name, snaplen in SNAPLENS.items():
                log = os.path.join(d, f"{i}.log")
                bps, size = goodput(channel, plan, a.seconds, log, snaplen)
                os.unlink(log)  # a whole-packet log of a fast run is gigabytes
                on[name].append(bps)
                written[name] += size
                line += f", {name} {bps / 1e9:.2f} Gbit/s ({size / 2**20:.0f} MiB of log)"
            print(line)
    # medians: on a shared machine one round in a few is cut by others' work, whichever case it runs
    base = statistics.median(off)
    print(f"TCP through 100 Gbit/s cells, median of {a.rounds} rounds of {a.seconds} s: {base / 1e9:.2f} Gbit/s "
          "without the log")
    for name in SNAPLENS:
        slow = 1 - statistics.median(on[name]) / base
        rate = written[name] / (a.rounds * (a.seconds + 1)) / 2**20  # iperf3 -O 1: one more second of traffic
        print(f"  with the log, {name:<13}: {statistics.median(on[name]) / 1e9:.2f} Gbit/s, {100 * slow:5.1f}% "
              f"slower, {rate:.0f} MiB/s of log   goal < 10%   {'ok' if slow < 0.10 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

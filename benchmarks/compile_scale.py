"""Benchmark: check and compile generated files of 1k, 10k and 100k cells; `rattan --help` start-up.

Prints seconds per size, cells per second, and the growth ratio between sizes
(10x more cells should cost about 10x: linear). Run: python benchmarks/compile_scale.py [--max 100000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)

CELLS_PER_CHANNEL = 10  # 5 each way: bw, delay, loss, token_bucket, delay


def generate(n_cells: int) -> str:
    """A file of n_cells cells spread over n_cells/10 channels, with lets and a compound type."""
    lines = ["let base = 10ms", "cell type access(rate: rate, delay: time = 1ms) {",
             "    in -> bw { rate = rate, queue = droptail { packets = 100 } } -> delay { delay = delay } -> out",
             "}", ""]
    for c in range(n_cells // CELLS_PER_CHANNEL):
        r = 10 + c % 90
        lines += [
            f"channel ch{c} {{",
            f"    cell up: bw {{ rate = {r}Mbps, queue = codel {{ target = 5ms, interval = 100ms }} }}",
            f"    cell down: bw {{ rate = {r * 2}Mbps, queue = droptail {{ packets = {100 + c % 900} }} }}",
            f"    left -> up -> delay {{ delay = base + {c % 50}ms }} -> loss {{ rate = {c % 10}.5% }}",
            f"        -> token_bucket {{ rate = {r}Mbps, burst = 64KiB }} -> delay {{ delay = base / 2, jitter = 1ms }} -> right",
            "    right -> down -> delay { delay = base * 2 } -> loss { model = gilbert_elliott { p = 1%, r = 25% } }",
            f"        -> token_bucket {{ rate = {r * 2}Mbps, burst = 32KiB, limit = 100KB }} -> delay {{ delay = 3ms }} -> left",
            "}", ""]
    return "\n".join(lines)


def timed(args: list[str], repeat: int) -> float:
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        best.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(args)}\n{r.stderr[:2000]}")
    return statistics.median(best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--max", type=int, default=100_000, help="largest size (default 100000 cells)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    a = ap.parse_args()
    exe = [sys.executable, "-m", "rattan"]
    # The baseline measured in this run: the interpreter starting and exiting, nothing imported.
    py = timed([sys.executable, "-c", "pass"], 5)
    helpt = timed(exe + ["--help"], 5)
    print(f"python -c pass          {py * 1000:8.1f} ms   (baseline: interpreter start)")
    print(f"rattan --help           {helpt * 1000:8.1f} ms   ({helpt / py:.1f}x baseline; goal < 150 ms)")
    print()
    print(f"{'cells':>8} {'channels':>9} {'lines':>8} {'check s':>9} {'compile s':>10} {'cells/s':>10} {'growth':>8}")
    prev = None
    with tempfile.TemporaryDirectory() as d:
        n = 1000
        while n <= a.max:
            path = os.path.join(d, f"gen{n}.rtn")
            text = generate(n)
            with open(path, "w") as f:
                f.write(text)
            reps = a.repeat if n <= 10_000 else 1
            tc = timed(exe + ["check", path], reps)
            tp = timed(exe + ["compile", path, "-o", os.path.join(d, "plan.json")], reps)
            growth = f"{tp / prev:6.1f}x" if prev else "     -"
            print(f"{n:>8} {n // CELLS_PER_CHANNEL:>9} {text.count(chr(10)):>8} {tc:>9.2f} {tp:>10.2f} "
                  f"{n / tp:>10.0f} {growth:>8}", flush=True)
            prev = tp
            n *= 10
    print("\ngrowth: compile time relative to the previous size (10x more cells); ~10x means linear."
          "\ngoal: 10k cells in under 2 s.")


if __name__ == "__main__":
    main()

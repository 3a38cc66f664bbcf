"""Per-experiment overhead of `rattan batch` (root): what a run costs besides its workload, for the
embedded default (LocalExecutor) without and with warm resources (rattan.runtime.warm: namespaces,
veths and receive rings kept between runs), and for an embedded local Ray without and with a
per-worker pool. The workload is a short ping through a 5 ms path; the runs go one at a time (one
slot), so each figure is one run's own cost.

    python benchmarks/batch_overhead.py [--runs N] [--no-ray]

For each run: setup is from its submission to the executor to its first command starting (the first
packet it can send), teardown from its last command's end (the last packet) to its result stored in
the SQLite results store. Both include the executor's dispatch (a process pool's pipe, a Ray task).
Each executor's start-up (made, to the first run's first packet: worker processes, Ray itself, the
first cold network) is printed apart, and its first run is not counted. Ratios are against the
local executor without reuse, measured in the same invocation.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import _checkout  # noqa: F401  (measure this checkout's rattan: see _checkout.py)

PATH = """channel c {
    endpoints left, right
    left -> delay { delay = 5ms } -> right
    right -> delay { delay = 5ms } -> left
}
"""

# the first and last lines: when the first packet could go, when the last one came back
COMMAND = "date +%s.%N; ping -c 3 -i 0.2 -W 2 $RATTAN_RIGHT_IP >/dev/null; date +%s.%N"

EXPERIMENT = """\
experiment: overhead
topology: path.rtn
seeds: {runs}
workload:
  - endpoint: left
    name: probe
    command: "{command}"
resources: {{cores: 1, instances: 1}}
timeout: 60s
database: results.sqlite
"""


def run_job_warm(job: dict) -> dict:
    """A Ray task's body with this worker process's pool (rattan.runtime.warm)."""
    from rattan.batch.job import run_job
    from rattan.runtime import warm
    return run_job(job, network_pool=warm.pool())


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def measure(name: str, make, jobs: list, store) -> dict:
    """Run `jobs` one at a time on the executor `make()` gives; start-up and per-run overheads (s)."""
    t_made = time.time()
    executor = make()
    setups, teardowns, startup = [], [], None
    try:
        for i, job in enumerate(jobs):
            submitted = time.time()
            result = executor.submit(job.to_dict()).result(timeout=120)
            if result["status"] != "ok":
                raise SystemExit(f"{name}: run {job.key} failed: {result['error']}")
            store.record(result)
            stored = time.time()
            first, last = (float(x) for x in result["outputs"]["probe"]["stdout"].split())
            if i == 0:
                startup = first - t_made
                continue
            setups.append(first - submitted)
            teardowns.append(stored - last)
    finally:
        executor.close()
    print(f"{name}: start-up {startup:.2f} s, then {len(setups)} runs", file=sys.stderr)
    return {"startup": startup, "setup": setups, "teardown": teardowns}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=8, help="runs counted per executor (one more warms it up)")
    ap.add_argument("--no-ray", action="store_true", help="only the local executor")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    from rattan.batch.experiment import load
    from rattan.batch.local import LocalExecutor
    from rattan.batch.store import open_store
    from rattan.runtime import netns
    cases = {
        "local, no reuse": lambda: LocalExecutor(slots=1, reuse=False),
        "local, reuse": lambda: LocalExecutor(slots=1, reuse=True),
    }
    if not a.no_ray:
        from rattan.batch.ray_executor import RayExecutor
        cases["ray local, no reuse"] = lambda: RayExecutor(cores=1, instances=1)
        cases["ray local, reuse"] = lambda: RayExecutor(cores=1, instances=1, run_job=run_job_warm)
    figures = {}
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "path.rtn"), "w") as f:
            f.write(PATH)
        with open(os.path.join(d, "exp.yaml"), "w") as f:
            f.write(EXPERIMENT.format(runs=a.runs + 1, command=COMMAND))
        jobs = load(os.path.join(d, "exp.yaml")).jobs()
        with open_store(os.path.join(d, "results.sqlite")) as store:
            for name, make in cases.items():
                figures[name] = measure(name, make, jobs, store)
    netns.clean_stale()  # what a Ray worker killed at shutdown left (its pool's networks), if anything
    base = figures["local, no reuse"]
    print(f"Per-experiment overhead of `rattan batch`, seconds, {a.runs} runs of a 0.4 s ping each, one at a time "
          "(mean / p90; ratio: mean against local without reuse)")
    print(f"  {'executor':<22} {'start-up':>9}   {'setup':>13} {'ratio':>6}   {'teardown':>13} {'ratio':>6}"
          f"   {'total':>6} {'ratio':>6}")
    for name, f in figures.items():
        s, t = statistics.mean(f["setup"]), statistics.mean(f["teardown"])
        bs, bt = statistics.mean(base["setup"]), statistics.mean(base["teardown"])
        print(f"  {name:<22} {f['startup']:>8.2f}s   {s:.3f} / {p90(f['setup']):.3f} {s / bs:>6.2f}   "
              f"{t:.3f} / {p90(f['teardown']):.3f} {t / bt:>6.2f}   {s + t:>6.3f} {(s + t) / (bs + bt):>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

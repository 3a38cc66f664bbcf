"""Per-experiment overhead of `rattan batch` (root): what a run costs besides its workload, for the
embedded default (LocalExecutor) without and with warm resources (rattan.runtime.warm: namespaces,
veths and receive rings kept between runs), and for an embedded local Ray without and with a
per-worker pool. The workload is a short ping through a 5 ms path; the runs go one at a time (one
slot), so each figure is one run's own cost.

    python benchmarks/batch_overhead.py [--runs N] [--no-ray] [--back-to-back]

For each run: setup is from its submission to the executor to its first command starting (the first
packet it can send), teardown from its last command's end (the last packet) to its result stored in
the SQLite results store. Both include the executor's dispatch (a process pool's pipe, a Ray task).
Each executor's start-up (made, to the first run's first packet: worker processes, Ray itself, the
first cold network) is printed apart, and its first run is not counted; then the executors take
turns, a run each, so that the machine's changing load weighs on all alike. Ratios are against the
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


def run_job_ray(job: dict) -> dict:
    """A Ray task's body: `run_job`, with this worker process's pool (rattan.runtime.warm) when
    the job says so (one RayExecutor at a time: both Ray cases share one)."""
    from rattan.batch.job import run_job
    from rattan.runtime import warm
    job = dict(job)
    return run_job(job, network_pool=warm.pool() if job.pop("bench_reuse") else None)


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def one(executor, job, store, extra: dict) -> tuple[float, float, float]:
    """One run on `executor`: (setup, teardown) in seconds, and the time its first packet could go."""
    submitted = time.time()
    result = executor.submit({**job.to_dict(), **extra}).result(timeout=120)
    if result["status"] != "ok":
        raise SystemExit(f"run {job.key} failed: {result['error']}")
    store.record(result)
    stored = time.time()
    first, last = (float(x) for x in result["outputs"]["probe"]["stdout"].split())
    return first - submitted, stored - last, first


def measure(executors: dict, cases: dict, jobs: list, store, back_to_back: bool = False) -> dict:
    """Each executor made (`executors`: name -> how), then each case (name -> (executor, what its
    jobs add)) warmed up by its first run (the executor's start-up, for its first case), then the
    other runs in rounds, a run of each case in turn: the machine's load changes, and so shifts
    all alike (`back_to_back`: each case's runs one right after another, as in a batch, so that a
    warm pool's resets overlap only with its own next run)."""
    figures, made, started = {}, {}, {}
    try:
        for name, (ex, extra) in cases.items():
            if ex not in made:
                t = time.time()
                made[ex] = executors[ex]()
                started[ex] = t
            first = one(made[ex], jobs[0], store, extra)[2]
            figures[name] = {"startup": first - started.pop(ex) if ex in started else None,
                             "setup": [], "teardown": []}
        order = ([(job, name) for name in cases for job in jobs[1:]] if back_to_back else
                 [(job, name) for job in jobs[1:] for name in cases])
        for job, name in order:
            ex, extra = cases[name]
            setup, teardown, _ = one(made[ex], job, store, extra)
            figures[name]["setup"].append(setup)
            figures[name]["teardown"].append(teardown)
    finally:
        for executor in made.values():
            executor.close()
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=8, help="runs counted per executor (one more warms it up)")
    ap.add_argument("--no-ray", action="store_true", help="only the local executor")
    ap.add_argument("--back-to-back", action="store_true",
                    help="each executor's runs one right after another (default: executors take turns)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    from rattan.batch.experiment import load
    from rattan.batch.local import LocalExecutor
    from rattan.batch.store import open_store
    from rattan.runtime import netns
    executors = {"local, no reuse": lambda: LocalExecutor(slots=1, reuse=False),
                 "local, reuse": lambda: LocalExecutor(slots=1, reuse=True)}
    cases = {"local, no reuse": ("local, no reuse", {}), "local, reuse": ("local, reuse", {})}
    if not a.no_ray:
        from rattan.batch.ray_executor import RayExecutor
        executors["ray"] = lambda: RayExecutor(cores=1, instances=1, run_job=run_job_ray, reuse=True)
        cases["ray local, no reuse"] = ("ray", {"bench_reuse": False})
        cases["ray local, reuse"] = ("ray", {"bench_reuse": True})
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "path.rtn"), "w") as f:
            f.write(PATH)
        with open(os.path.join(d, "exp.yaml"), "w") as f:
            f.write(EXPERIMENT.format(runs=a.runs + 1, command=COMMAND))
        jobs = load(os.path.join(d, "exp.yaml")).jobs()
        with open_store(os.path.join(d, "results.sqlite")) as store:
            figures = measure(executors, cases, jobs, store, a.back_to_back)
    left = netns.clean_stale()  # what a Ray worker killed at shutdown left (its pool's networks), if anything
    if left:
        print(f"(removed {len(left)} networks that worker processes killed at shutdown left)", file=sys.stderr)
    base = figures["local, no reuse"]
    print(f"Per-experiment overhead of `rattan batch`, seconds, {a.runs} runs of a 0.4 s ping each, one at a time, "
          f"{'back to back' if a.back_to_back else 'executors taking turns'} "
          "(mean / p90; ratio: mean against local without reuse)")
    print(f"  {'executor':<22} {'start-up':>9}   {'setup':>13} {'ratio':>6}   {'teardown':>13} {'ratio':>6}"
          f"   {'total':>6} {'ratio':>6}")
    for name, f in figures.items():
        s, t = statistics.mean(f["setup"]), statistics.mean(f["teardown"])
        bs, bt = statistics.mean(base["setup"]), statistics.mean(base["teardown"])
        startup = f"{f['startup']:>8.2f}s" if f["startup"] is not None else f"{'(same)':>9}"
        print(f"  {name:<22} {startup}   {s:.3f} / {p90(f['setup']):.3f} {s / bs:>6.2f}   "
              f"{t:.3f} / {p90(f['teardown']):.3f} {t / bt:>6.2f}   {s + t:>6.3f} {(s + t) / (bs + bt):>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

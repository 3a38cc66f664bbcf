#!/usr/bin/env python3
"""Run the case study's sweep (experiment.yaml) with the Rattan library, then draw its figures.

A stand-in for `rattan batch experiment.yaml` while that command is not on main: it reads the same
experiment file and runs the subset of the format this file uses (one topology, axes set as lets and
placeholders, seeds, a background receiver and one extracted iperf3 command, timeout, retries,
plots). Every run is its own process (`rattan.run` takes its own namespaces and engine); `--jobs`
run at once. Results go to a CSV next to the experiment file, one row per run; a row already there
with status ok is not run again (resume after Ctrl-C).

    sudo .venv/bin/python examples/case-study/run.py --jobs 4          # runs, then plots
    .venv/bin/python examples/case-study/run.py --plot-only            # plots the CSV
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import hashlib
import itertools
import json
import math
import os
import re
import statistics
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = ["goodput_bps", "retransmits", "retransmit_rate", "sent_bytes", "received_bytes",
           "duration_s"]


def _seconds(text: str) -> float:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|min)?\s*", str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * {"ms": 1e-3, "s": 1.0, "min": 60.0, None: 1.0}[m.group(2)]


def _fill(text: str, params: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), text)


def load(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def jobs(exp: dict, path: str) -> list[dict]:
    """Every combination of the axes and seeds, with lets and commands filled in."""
    axes = exp["sweep"]
    seeds = exp.get("seeds", 1)
    seeds = list(range(1, seeds + 1)) if isinstance(seeds, int) else list(seeds)
    topology = os.path.join(os.path.dirname(os.path.abspath(path)), exp["topology"])
    out = []
    for values in itertools.product(*axes.values(), seeds):
        params = dict(zip(list(axes) + ["seed"], values))
        key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        out.append({
            "key": key, "params": params, "topology": topology,
            "lets": {k: _fill(v, params) for k, v in exp.get("lets", {}).items()},
            "workload": [dict(w, command=_fill(w["command"], params)) for w in exp["workload"]],
            "timeout_s": _seconds(exp.get("timeout", "10min")),
            "telemetry": exp.get("collect", {}).get("telemetry", []),
        })
    return out


def iperf3_metrics(stdout: str) -> dict:
    """goodput (receiver), retransmits and their rate (retransmits * MSS / sent bytes), RTT."""
    doc = json.loads(stdout)
    if "error" in doc:
        raise ValueError(doc["error"])
    end = doc["end"]
    sent, recv = end["sum_sent"], end["sum_received"]
    mss = doc.get("start", {}).get("tcp_mss_default") or 1448
    retrans = sent.get("retransmits", 0)
    return {"goodput_bps": recv["bits_per_second"], "retransmits": retrans,
            "retransmit_rate": retrans * mss / sent["bytes"] if sent["bytes"] else 0.0,
            "sent_bytes": sent["bytes"], "received_bytes": recv["bytes"],
            "duration_s": recv["seconds"]}


def run_job(job: dict) -> dict:
    """One run in this (worker) process. Never raises: a failure is a row with its error."""
    import rattan
    row = {"key": job["key"], **job["params"], "status": "failed", "error": ""}
    t0 = time.monotonic()
    try:
        c = rattan.compile(job["topology"], lets=job["lets"])
        c.raise_for_errors()
        with rattan.run(c, seed=job["params"]["seed"]) as r:
            for w in job["workload"]:
                if w.get("background"):
                    p = r.spawn(w["endpoint"], w["command"])
                    if not r.wait_listening(p):
                        raise RuntimeError(f"{w['command']!r} did not start listening")
                    continue
                res = r.exec(w["endpoint"], w["command"], timeout=job["timeout_s"])
                if res.timed_out or res.returncode != 0:
                    raise RuntimeError(f"{w['command']!r} exited {res.returncode}"
                                       f"{' (timed out)' if res.timed_out else ''}: "
                                       f"{res.stderr[-4000:]}{res.stdout[-2000:]}")
                if w.get("extract") == "iperf3":
                    row.update(iperf3_metrics(res.stdout))
            for cell in job["telemetry"]:
                tel = r.telemetry(cell)
                dropped = tel.get("dropped_packets", tel.get("dropped"))
                if dropped is not None:
                    row[f"{cell}_dropped"] = dropped
        row["status"] = "ok"
    except Exception as e:  # the row records it; the sweep goes on
        row["error"] = f"{type(e).__name__}: {e}"[-8000:]
    row["wall_s"] = round(time.monotonic() - t0, 3)
    return row


def run_isolated(job: dict) -> dict:
    """`run_job` in a fresh interpreter, so that a run that crashes is one failed row."""
    import subprocess
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", json.dumps(job)],
                           capture_output=True, text=True, timeout=job["timeout_s"] + 60)
    except subprocess.TimeoutExpired as e:
        return {"key": job["key"], **job["params"], "status": "failed", "wall_s": e.timeout,
                "error": f"the run's process did not end within {e.timeout:.0f} s"}
    lines = p.stdout.strip().splitlines()
    if p.returncode == 0 and lines:
        return json.loads(lines[-1])
    return {"key": job["key"], **job["params"], "status": "failed", "wall_s": "",
            "error": f"the run's process exited {p.returncode}: {p.stderr[-4000:]}"}


def read_rows(csv_path: str) -> list[dict]:
    if not os.path.exists(csv_path):
        return []
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def sweep(exp: dict, path: str, csv_path: str, n_jobs: int, retries: int) -> None:
    todo = jobs(exp, path)
    fields = (["key"] + list(exp["sweep"]) + ["seed", "status", "attempt"] + METRICS
              + [f"{c}_dropped" for c in exp.get("collect", {}).get("telemetry", [])]
              + ["wall_s", "error"])
    done = {r["key"] for r in read_rows(csv_path) if r["status"] == "ok"}
    # seed by seed, the longest transfers first: stopped early, every setting has its first seeds
    todo = sorted((j for j in todo if j["key"] not in done),
                  key=lambda j: (j["params"]["seed"], -_size_bytes(str(j["params"].get("size", "0")))))
    total, ok, failed = len(todo), 0, 0
    print(f"{len(done)} runs done before, {total} to run, {n_jobs} at once", flush=True)
    new_file = not os.path.exists(csv_path)
    t0 = time.monotonic()
    with open(csv_path, "a", newline="") as f, cf.ThreadPoolExecutor(n_jobs) as pool:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        if new_file:
            w.writeheader()
        attempts = {j["key"]: 1 for j in todo}
        by_key = {j["key"]: j for j in todo}
        pending = {pool.submit(run_isolated, j): j["key"] for j in todo}
        while pending:
            for fut in cf.as_completed(list(pending)):
                key = pending.pop(fut)
                row = fut.result()
                row["attempt"] = attempts[key]
                w.writerow(row)
                f.flush()
                if row["status"] == "ok":
                    ok += 1
                elif attempts[key] <= retries:
                    attempts[key] += 1
                    pending[pool.submit(run_isolated, by_key[key])] = key
                else:
                    failed += 1
                el = time.monotonic() - t0
                fin = ok + failed
                eta = el / fin * (total - fin) if fin else math.nan
                print(f"[{el:6.0f}s] {fin}/{total} ok {ok} failed {failed} running {len(pending)} "
                      f"eta {eta:5.0f}s  {row['status']:6} {json.dumps({k: row[k] for k in list(exp['sweep']) + ['seed']})}"
                      f"{'  ' + row['error'][:200] if row['status'] != 'ok' else ''}", flush=True)
                break
    print(f"done in {time.monotonic() - t0:.0f}s: {ok} ok, {failed} failed", flush=True)


def _size_bytes(s: str) -> float:
    m = re.fullmatch(r"([0-9.]+)\s*([KMG]?)B?", s)
    return float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def plot(exp: dict, path: str, csv_path: str) -> list[str]:
    """Each `plots:` entry: mean over seeds (error bars: min..max), a line per `lines`, facets."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in read_rows(csv_path) if r["status"] == "ok"]
    # the last ok row per key (a re-run appends)
    rows = list({r["key"]: r for r in rows}.values())
    axes = exp["sweep"]
    base = os.path.dirname(os.path.abspath(path))
    written = []
    for p in exp.get("plots", []):
        metric = p["metric"].split(".", 1)[-1]
        cols, rws, lines = axes[p["facet"]], axes[p["facet_rows"]], axes[p["lines"]]
        xs = axes[p["x"]]
        scale = float(p.get("scale", 1.0))
        fig, grid = plt.subplots(len(rws), len(cols), figsize=(4.2 * len(cols), 3.4 * len(rws)),
                                 sharex=True, sharey=True, squeeze=False)
        for i, rv in enumerate(rws):
            for j, cv in enumerate(cols):
                ax = grid[i][j]
                for line in lines:
                    px, mean, lo, hi = [], [], [], []
                    for x in xs:
                        vals = [float(r[metric]) * scale for r in rows
                                if r[p["facet"]] == cv and r[p["facet_rows"]] == rv
                                and r[p["lines"]] == line and r[p["x"]] == x and r[metric] != ""]
                        if vals:
                            m = statistics.fmean(vals)
                            px.append(_size_bytes(x)); mean.append(m)
                            lo.append(m - min(vals)); hi.append(max(vals) - m)
                    ax.errorbar(px, mean, yerr=[lo, hi], marker="o", capsize=3, label=line)
                ax.set_xscale("log")
                ax.set_xticks([_size_bytes(x) for x in xs], xs)
                ax.minorticks_off()
                ax.grid(alpha=0.3)
                ax.set_title(f"{p['facet']} = {cv}, {p['facet_rows']} = {rv}", fontsize=9)
                if i == len(rws) - 1:
                    ax.set_xlabel(f"transfer {p['x']}")
                if j == 0:
                    ax.set_ylabel(p.get("ylabel", p["metric"]))
        grid[0][0].legend(title=p["lines"], fontsize=8)
        fig.suptitle(p.get("title", p["metric"]), fontsize=10)
        fig.tight_layout()
        out = os.path.normpath(os.path.join(base, p["output"]))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        for fmt in p.get("formats", [os.path.splitext(out)[1][1:] or "png"]):
            path_f = os.path.splitext(out)[0] + "." + fmt
            fig.savefig(path_f, dpi=110)
            written.append(path_f)
            print(f"wrote {path_f}")
        plt.close(fig)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", nargs="?", default=os.path.join(HERE, "experiment.yaml"))
    ap.add_argument("--jobs", type=int, default=4, help="runs at once (default 4)")
    ap.add_argument("--csv", help="results file (default: <experiment stem>.csv next to it)")
    ap.add_argument("--retries", type=int, help="default: the file's `retries` (or 1)")
    ap.add_argument("--plot-only", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # one job (JSON), its row printed as JSON
    ap.add_argument("--dry-run", action="store_true", help="print the number of runs and exit")
    ap.add_argument("--axis", action="append", default=[], metavar="NAME=V1,V2",
                    help="run only these values of an axis (repeatable), e.g. size=100KB,1MB,10MB")
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(run_job(json.loads(a.one))))
        return 0
    exp = load(a.experiment)
    for spec in a.axis:
        name, _, values = spec.partition("=")
        if name not in exp["sweep"]:
            ap.error(f"no axis {name!r} in {a.experiment}: {', '.join(exp['sweep'])}")
        exp["sweep"][name] = values.split(",")
    csv_path = a.csv or os.path.splitext(os.path.abspath(a.experiment))[0] + ".csv"
    if a.dry_run:
        print(f"{len(jobs(exp, a.experiment))} runs")
        return 0
    if not a.plot_only:
        if os.geteuid() != 0:
            print("real runs need root (network namespaces)", file=sys.stderr)
            return 2
        sweep(exp, a.experiment, csv_path, a.jobs, exp.get("retries", 1) if a.retries is None else a.retries)
    plot(exp, a.experiment, csv_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

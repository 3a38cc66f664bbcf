"""`run_batch`: every run of an experiment that is not done yet, on an executor, into the store.

Resume is by key: a run whose key the store has as `ok` is skipped, so a batch stopped by Ctrl-C
or a crash goes on where it stopped when the same command runs again. A failed run is recorded
(the attempt, with its stderr) and retried up to `retries` times. Ctrl-C stops the running runs
(each tears down) and records nothing for them.
"""
from __future__ import annotations

import concurrent.futures
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class BatchSummary:
    experiment: str
    total: int                 # runs in the sweep
    skipped: int               # done before this invocation
    ok: int = 0
    failed: int = 0            # failed after every retry
    retried: int = 0           # attempts that failed and were run again
    interrupted: bool = False
    seconds: float = 0.0
    database: str = ""
    results: list = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.total - self.skipped - self.ok


class _Progress:
    """done / running / failed and an ETA: a rich bar on a terminal, plain lines elsewhere."""

    def __init__(self, total: int, skipped: int, stream: TextIO, live: bool) -> None:
        self.total, self.done, self.failed, self.running = total, skipped, 0, 0
        self.stream, self.start, self.first = stream, time.monotonic(), skipped
        self.bar = None
        if live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[state]}"), TextColumn("ETA"), TimeRemainingColumn(),
                                console=Console(file=stream), transient=False)
            self.task = self.bar.add_task("runs", total=total, completed=skipped, state=self._state())
            self.bar.start()

    def _state(self) -> str:
        return f"{self.running} running, {self.failed} failed"

    def _eta(self) -> str:
        finished = self.done - self.first
        if not finished:
            return "?"
        left = (time.monotonic() - self.start) / finished * (self.total - self.done)
        return f"{left:.0f}s"

    def update(self, running: int, line: str | None = None) -> None:
        self.running = running
        if self.bar is not None:
            if line:
                self.bar.console.print(line, markup=False, highlight=False)
            self.bar.update(self.task, completed=self.done, state=self._state())
        elif line:
            self.stream.write(f"[{self.done}/{self.total}] {line} ({self.running} running, {self.failed} failed, "
                              f"ETA {self._eta()})\n")
            self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def make_executor(exp, cluster: str | None = None, jobs: int | None = None, reuse: bool = True):
    if cluster is not None:
        try:
            from .ray_executor import RayExecutor
        except ImportError as e:
            raise RuntimeError(f"--cluster needs Ray: pip install 'rattan[cluster]' ({e})") from None
        return RayExecutor(cluster or None)
    from .local import LocalExecutor
    return LocalExecutor(resources=exp.resources, jobs=jobs, reuse=reuse)


def run_batch(experiment, executor=None, store=None, *, database: str | None = None, jobs: int | None = None,
              retries: int | None = None, progress: bool | None = None, stream: TextIO | None = None,
              plots: bool = True) -> BatchSummary:
    """Run what is missing of `experiment` (a path or a loaded Experiment); the summary."""
    from .experiment import Experiment, load
    from .store import open_store
    exp = experiment if isinstance(experiment, Experiment) else load(str(experiment), database)
    stream = stream or sys.stderr
    retries = exp.retries if retries is None else retries
    own_store = store is None
    store = store or open_store(database or exp.database)
    jobs_all = exp.jobs()
    done = store.done_keys(exp.name)
    todo = [j for j in jobs_all if j.key not in done]
    summary = BatchSummary(exp.name, len(jobs_all), len(jobs_all) - len(todo), database=database or exp.database)
    started = time.monotonic()
    own_executor = executor is None
    if todo and executor is None:
        executor = make_executor(exp, jobs=jobs)
    if todo:
        where = executor.describe()
        stream.write(f"rattan batch: {exp.name}: {len(todo)} runs to do"
                     + (f" ({summary.skipped} of {summary.total} done before)" if summary.skipped else "")
                     + f", {where}\n")
    bar = _Progress(summary.total, summary.skipped, stream, stream.isatty() if progress is None else progress)
    pending: dict[concurrent.futures.Future, object] = {}
    queue = list(todo)
    try:
        slots = max(1, getattr(executor, "slots", 1)) if todo else 0
        while queue or pending:
            while queue and len(pending) < max(slots, 1):
                job = queue.pop(0)
                pending[executor.submit(job.to_dict())] = job
            bar.update(len(pending))
            finished, _ = concurrent.futures.wait(list(pending), timeout=1.0,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    result = fut.result()
                except KeyboardInterrupt:
                    raise
                except Exception as e:  # the worker died (a crash, an executor gone)
                    from .job import now_iso
                    result = {**_failed(job, f"the worker failed: {type(e).__name__}: {e}"), "ended": now_iso()}
                store.record(result)
                summary.results.append(result)
                took = _took(result)
                if result["status"] == "ok":
                    summary.ok += 1
                    bar.done += 1
                    bar.update(len(pending), f"ok      {job.label()}{took}")
                elif job.attempt <= retries:
                    summary.retried += 1
                    again = type(job).from_dict({**job.to_dict(), "attempt": job.attempt + 1})
                    queue.insert(0, again)
                    bar.update(len(pending), f"retry   {job.label()} (attempt {job.attempt} failed: "
                                             f"{_first_line(result['error'])})")
                else:
                    summary.failed += 1
                    bar.failed += 1
                    bar.done += 1
                    bar.update(len(pending), f"FAILED  {job.label()}: {_first_line(result['error'])}")
    except KeyboardInterrupt:
        summary.interrupted = True
        bar.close()
        stream.write(f"\nrattan batch: interrupted; stopping {len(pending)} running runs\n")
        if executor is not None:
            executor.cancel_all()
        own_executor = False  # cancel_all has shut it down
    finally:
        bar.close()
        if own_executor and executor is not None:
            executor.close()
        summary.seconds = time.monotonic() - started
    if not summary.interrupted and plots and exp.plots:
        _draw(exp, store, stream)
    stream.write(summary_text(exp, store, summary))
    if own_store:
        store.close()
    return summary


def _took(result: dict) -> str:
    from datetime import datetime
    try:
        s = (datetime.fromisoformat(result["ended"]) - datetime.fromisoformat(result["started"])).total_seconds()
        return f" in {s:.1f}s"
    except Exception:
        return ""


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:160] if (text or "").strip() else "?"


def _failed(job, error: str) -> dict:
    import rattan
    from .job import now_iso
    return {"key": job.key, "experiment": job.experiment, "params": job.params, "seed": job.seed,
            "repetition": job.repetition, "status": "failed", "attempt": job.attempt, "error": error,
            "metrics": {}, "outputs": {}, "plan_hash": None, "rattan_version": rattan.__version__,
            "machine": None, "started": now_iso(), "ended": None, "overhead": {}, "packet_log": None}


def _draw(exp, store, stream) -> None:
    from . import report
    for p in exp.plots:
        try:
            report.plot(store, exp.name, p["metric"], p["x"], lines=p.get("lines"), facet=p.get("facet"),
                        facet_rows=p.get("facet_rows"), output=p["output"], title=p.get("title"),
                        ylabel=p.get("ylabel"), scale=p.get("scale"), order=exp.axes)
            stream.write(f"rattan batch: drew {', '.join(p['output'])}\n")
        except Exception as e:  # a plot that cannot be drawn does not lose the results
            stream.write(f"rattan batch: warning: cannot draw {p['metric']}: {e}\n")


def summary_text(exp, store, summary: BatchSummary) -> str:
    """The closing table: counts, then per combination the runs and the means of the metrics
    of the workload's extractors."""
    lines = [f"{exp.name}: {summary.ok + summary.skipped} of {summary.total} runs ok"
             + (f", {summary.failed} failed" if summary.failed else "")
             + (f", {summary.retried} retried" if summary.retried else "")
             + (f", {summary.missing} not done (interrupted: run the same command again to resume)"
                if summary.interrupted else "")
             + f"; {summary.seconds:.1f}s; results in {summary.database}"]
    rows = store.runs(exp.name)
    if not rows:
        return "\n".join(lines) + "\n"
    from .report import _cell  # the tables' number format
    steps = {s.name for s in exp.workload if s.extract}
    axes = [a for a in exp.axes]
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(str(r["params"].get(a)) for a in axes), []).append(r)
    metric_names = sorted({m for r in rows for m in (r.get("metrics") or {})
                           if m.split(".")[0] in steps and isinstance(r["metrics"][m], (int, float))})[:6]
    header = axes + ["ok", "failed"] + metric_names
    table = [header]
    for combo, rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        row = list(combo) + [str(len(ok)), str(len(rs) - len(ok))]
        for m in metric_names:
            vals = [r["metrics"][m] for r in ok if isinstance((r.get("metrics") or {}).get(m), (int, float))]
            row.append(_cell(statistics.fmean(vals)) if vals else "-")
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines.append("")
    lines += ["  ".join(v.rjust(w) if i >= len(axes) else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
              for r in table]
    return "\n".join(lines) + "\n"

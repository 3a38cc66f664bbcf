"""One run of a sweep: the `Job` that crosses processes (and Ray), and `run_job`, which a worker
executes: compile the topology with the run's lets, start it (rattan.run), run the workload in the
endpoints' namespaces, extract metrics, collect telemetry, tear everything down.

`run_job` never raises for a failed run: the result says `failed` and why (the command, its exit
status and stderr). It raises only KeyboardInterrupt (the batch was stopped: nothing is recorded).
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

OUTPUT_LIMIT = 64 * 1024   # bytes of each command's stdout and stderr kept in the results
BACKGROUND_END_S = 2.0     # a background command that ends by itself (iperf3 -s -1) gets this long
LISTEN_WAIT_S = 10.0


@dataclass
class Job:
    experiment: str
    key: str
    topology: str                      # absolute path
    channel: str | None
    params: dict                       # axis -> value, with topology, seed and repetition
    lets: dict                         # let name -> .rtn text
    seed: int
    repetition: int
    workload: list                     # [{endpoint, name, background, extract, command}]
    telemetry: list = field(default_factory=list)
    timeout_s: float = 600.0
    resources: dict = field(default_factory=lambda: {"cores": 1, "instances": 1})
    packet_log_dir: str | None = None
    attempt: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        return cls(**d)

    def label(self) -> str:
        """The run's parameters in a line: `cc=bbr size=1MB seed=2`."""
        shown = {k: v for k, v in self.params.items() if k != "repetition" or v}
        return " ".join(f"{k}={os.path.basename(v) if k == 'topology' else v}" for k, v in shown.items())


class Shield:
    """Whether a run is building or removing its namespaces and engine, which an exception raised
    at any point (a SIGINT's KeyboardInterrupt) would leave half done: a namespace kept, a lock of
    subprocess held. The worker's SIGINT handler (rattan.batch.local) defers the interrupt while
    `active`, and run_job raises it once the run has started."""

    def __init__(self) -> None:
        self.active = 0
        self.pending = False

    @contextlib.contextmanager
    def __call__(self):
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    def raise_pending(self) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


SHIELD = Shield()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _tail(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= OUTPUT_LIMIT else "[...]" + text[-OUTPUT_LIMIT:]


def _flat(prefix: str, doc, out: dict) -> None:
    """Numbers of a telemetry document as metrics `prefix.key.subkey`."""
    if isinstance(doc, bool):
        out[prefix] = int(doc)
    elif isinstance(doc, (int, float)):
        out[prefix] = doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            _flat(f"{prefix}.{k}", v, out)


def run_job(job: Job | dict, network_pool=None) -> dict:
    """Execute one run; its JobResult as a dict (see INTERFACES: key, status, metrics, outputs...)."""
    import rattan
    if isinstance(job, dict):
        job = Job.from_dict(job)
    t0 = time.monotonic()
    result = {"key": job.key, "experiment": job.experiment, "params": job.params, "seed": job.seed,
              "repetition": job.repetition, "status": "failed", "attempt": job.attempt, "error": None,
              "metrics": {}, "outputs": {}, "plan_hash": None, "rattan_version": rattan.__version__,
              "machine": socket.gethostname(), "started": now_iso(), "ended": None,
              "overhead": {}, "packet_log": None}
    deadline = t0 + job.timeout_s
    try:
        comp = rattan.compile(job.topology, lets=job.lets)
        if not comp.ok:
            raise rattan.CompileError(comp.render(), comp.diagnostics)
        result["plan_hash"] = comp.plan_hash
        log = None
        if job.packet_log_dir:
            os.makedirs(job.packet_log_dir, exist_ok=True)
            log = os.path.join(job.packet_log_dir, f"{job.key}.rtlog")
        with SHIELD():
            network = network_pool.acquire(comp.plan, job.channel) if network_pool is not None else None
        clean = False  # the run ended well: its network may carry the next one
        try:
            # `with rattan.run(...)` spelt out, so that set-up and teardown are shielded
            live = rattan.run(comp, channel=job.channel, seed=job.seed, packet_log=log, quiet=True,
                              network=network)
            with SHIELD():
                run = live.__enter__()
            try:
                SHIELD.raise_pending()  # a Ctrl-C during set-up: stop now, torn down below
                _workload(job, run, result, t0, deadline)
                t_end = time.monotonic()
                for cell in job.telemetry:
                    _flat(cell, run.telemetry(cell), result["metrics"])
            except BaseException:
                with SHIELD():
                    live.__exit__(*sys.exc_info())
                raise
            with SHIELD():
                live.__exit__(None, None, None)
            clean = result["error"] is None
            del run, live  # the engine goes now, and a cold run's rings with it (in teardown_s)
        finally:
            if network is not None:
                with SHIELD():
                    _release(network_pool, network, clean)
        if log:
            result["packet_log"] = log
        if result["error"] is None:
            result["status"] = "ok"
        result["overhead"]["teardown_s"] = round(time.monotonic() - t_end, 4)
    except KeyboardInterrupt:
        raise
    except rattan.CompileError as e:
        result["error"] = f"the topology does not compile:\n{e}"
    except Exception as e:  # RunError, NetnsError, EngineError: the run could not start or went wrong
        result["error"] = f"{type(e).__name__}: {e}"
    result["ended"] = now_iso()
    return result


def _release(pool, network, clean: bool) -> None:
    """Give a warm network back: reset for the next run, or closed after a failed or interrupted
    one. A reset that fails closes it; the run's own result stands."""
    import sys
    try:
        pool.release(network, reuse=clean)
    except Exception as e:
        sys.stderr.write(f"rattan: warning: a network could not be reset for the next run, closed: {e}\n")


class _Failed(Exception):
    pass


def _workload(job: Job, run, result: dict, t0: float, deadline: float) -> None:
    """The workload's commands in order: background ones started and waited for until they
    listen, foreground ones run to their end (the run fails at the first that fails)."""
    from .extractors import ExtractError, extract
    background = []
    result["overhead"]["setup_s"] = round(time.monotonic() - t0, 4)
    try:
        for step in job.workload:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Failed(f"timed out after {job.timeout_s:g}s, before `{step['name']}` started")
            if step["background"]:
                proc = run.spawn(step["endpoint"], step["command"])
                background.append((step, proc))
                try:
                    run.wait_listening(proc, timeout=min(LISTEN_WAIT_S, left))
                except Exception as e:  # it ended before it listened
                    raise _Failed(f"background command `{step['name']}` ended before it listened: {e}")
                continue
            res = run.exec(step["endpoint"], step["command"], timeout=left)
            result["outputs"][step["name"]] = {"returncode": res.returncode, "stdout": _tail(res.stdout),
                                               "stderr": _tail(res.stderr)}
            if res.timed_out:
                raise _Failed(f"`{step['name']}` timed out after {job.timeout_s:g}s (the run's timeout)\n"
                              f"{_tail(res.stderr)}")
            if res.returncode != 0:
                raise _Failed(f"`{step['name']}` exited with status {res.returncode}:\n{_tail(res.stderr)}")
            if step.get("extract"):
                try:
                    for k, v in extract(step["extract"], res.stdout, res.stderr).items():
                        result["metrics"][f"{step['name']}.{k}"] = v
                except ExtractError as e:
                    raise _Failed(f"`{step['name']}`: {e}")
    except _Failed as e:
        result["error"] = str(e)
    finally:
        for step, proc in background:  # a server that serves one client ends by itself
            try:
                proc.wait(BACKGROUND_END_S)
            except Exception:
                pass
            status = proc.stop()
            out = proc.result()
            result["outputs"][step["name"]] = {"returncode": status, "stdout": _tail(out.stdout),
                                               "stderr": _tail(out.stderr)}
            if step.get("extract") and result["error"] is None:
                try:
                    for k, v in extract(step["extract"], out.stdout, out.stderr).items():
                        result["metrics"][f"{step['name']}.{k}"] = v
                except ExtractError as e:
                    result["error"] = f"`{step['name']}`: {e}"

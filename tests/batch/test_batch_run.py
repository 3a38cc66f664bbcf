"""`rattan batch` on small real sweeps (root): runs overlap as the cores allow, Ctrl-C then resume,
failing commands recorded with their stderr and retried.

Each run is a short ping over tests/batch/data/experiments/path.rtn (10 ms RTT), about a second.
What the tests leave behind is checked on what they made only: other processes create namespaces
at the same time, so "ours" are the namespaces whose instance file names one of our processes.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from rattan.batch.runner import run_batch
from rattan.batch.store import open_store

DATA = Path(__file__).resolve().parent / "data" / "experiments"
STATE_DIR = Path(os.environ.get("RATTAN_STATE_DIR", "/run/rattan"))

root = pytest.mark.skipif(os.geteuid() != 0, reason="real runs need root (network namespaces)")


def experiment(folder: Path, name: str, body: str) -> Path:
    """An experiment file over a copy of path.rtn in `folder`."""
    shutil.copy(DATA / "path.rtn", folder / "path.rtn")
    path = folder / f"{name}.yaml"
    path.write_text(f"experiment: {name}\ntopology: path.rtn\n{body}")
    return path


PINGS = """\
sweep:
  count: [3, 4]
seeds: 2
workload:
  - endpoint: left
    name: ping
    command: "ping -c {count} -i 0.2 -W 2 $RATTAN_RIGHT_IP"
    extract: ping
timeout: 60s
"""


def interval(result: dict) -> tuple[float, float]:
    return (datetime.fromisoformat(result["started"]).timestamp(), datetime.fromisoformat(result["ended"]).timestamp())


def overlapping(results: list[dict]) -> list[tuple[str, str]]:
    spans = sorted((interval(r), r["key"]) for r in results)
    return [(a[1], b[1]) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0][0] < a[0][1]]


@root
def test_runs_overlap_as_the_slots_allow(tmp_path):
    path = experiment(tmp_path, "pings", PINGS)
    summary = run_batch(str(path), jobs=2, progress=False, stream=open(os.devnull, "w"))
    assert (summary.ok, summary.failed, summary.total) == (4, 0, 4)
    assert overlapping(summary.results), [interval(r) for r in summary.results]
    assert all(r["metrics"]["ping.received"] == r["params"]["count"] for r in summary.results)


@root
def test_one_at_a_time_with_jobs_1_or_when_a_run_takes_every_core(tmp_path):
    path = experiment(tmp_path, "serial", PINGS)
    summary = run_batch(str(path), jobs=1, progress=False, stream=open(os.devnull, "w"))
    assert summary.ok == 4 and overlapping(summary.results) == []
    # the experiment's own resource declaration: a run that takes every core runs alone
    greedy = experiment(tmp_path, "greedy", PINGS.replace("seeds: 2", f"seeds: 1\nresources: {{cores: {os.cpu_count()}}}"))
    summary = run_batch(str(greedy), progress=False, stream=open(os.devnull, "w"))
    assert summary.ok == 2 and overlapping(summary.results) == []


# -- failures and retries

FAILING = """\
sweep:
  mode: [fine, flaky, broken]
retries: 2
workload:
  - endpoint: left
    name: step
    command: "sh {script} {mode} {marks}"
timeout: 60s
"""

SCRIPT = """\
# fine: succeeds; flaky: fails on its first attempt only (a marker file says it ran); broken: always fails
case "$1" in
  fine) ping -c 1 -W 2 "$RATTAN_RIGHT_IP" >/dev/null ;;
  flaky) if [ -e "$2/flaky" ]; then exit 0; fi; touch "$2/flaky"; echo "flaky: first attempt fails" >&2; exit 3 ;;
  broken) echo "broken: no route to the moon" >&2; exit 7 ;;
esac
"""


def failing(tmp_path: Path, name: str = "failing", retries: int = 2) -> Path:
    (tmp_path / "step.sh").write_text(SCRIPT)
    (tmp_path / "marks").mkdir(exist_ok=True)
    body = FAILING.replace("{script}", str(tmp_path / "step.sh")).replace("{marks}", str(tmp_path / "marks"))
    return experiment(tmp_path, name, body.replace("retries: 2", f"retries: {retries}"))


def by_mode(store, name: str) -> dict:
    return {r["params"]["mode"]: r for r in store.runs(name)}


@root
def test_a_failing_command_is_recorded_with_its_stderr_and_retried(tmp_path):
    path = failing(tmp_path)
    out = open(tmp_path / "out.txt", "w+")
    summary = run_batch(str(path), jobs=2, progress=False, stream=out)
    assert (summary.ok, summary.failed, summary.retried) == (2, 1, 1 + 2)
    with open_store(tmp_path / "failing.sqlite") as store:
        runs = by_mode(store, "failing")
        assert {m: (r["status"], r["attempts"]) for m, r in runs.items()} == {
            "fine": ("ok", 1), "flaky": ("ok", 2), "broken": ("failed", 3)}
        assert "exited with status 7" in runs["broken"]["error"] and "no route to the moon" in runs["broken"]["error"]
        assert "no route to the moon" in runs["broken"]["stderr"]
        broken = store.attempts("failing", runs["broken"]["key"])
        assert [a["attempt"] for a in broken] == [1, 2, 3] and {a["status"] for a in broken} == {"failed"}
        assert all("broken: no route to the moon" in a["stderr"] for a in broken)
        flaky = store.attempts("failing", runs["flaky"]["key"])
        assert [(a["attempt"], a["status"]) for a in flaky] == [(1, "failed"), (2, "ok")]
        assert "flaky: first attempt fails" in flaky[0]["stderr"] and "status 3" in flaky[0]["error"]
    out.seek(0)
    text = out.read()
    assert "FAILED  mode=broken" in text and "retry   mode=flaky" in text
    assert "failing: 2 of 3 runs ok, 1 failed, 3 retried" in text
    # run again: what failed runs again, what succeeded does not
    summary = run_batch(str(path), progress=False, stream=open(os.devnull, "w"))
    assert (summary.skipped, summary.ok, summary.failed, summary.retried) == (2, 0, 1, 2)
    with open_store(tmp_path / "failing.sqlite") as store:
        assert {m: r["attempts"] for m, r in by_mode(store, "failing").items()} == {"fine": 1, "flaky": 2, "broken": 6}
    # the CLI says so with its exit status, and prints the failure with its stderr's first line
    cli = subprocess.run(batch_command(path, "--retries", "0"), capture_output=True, text=True, timeout=120,
                         start_new_session=True, cwd=tmp_path)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "FAILED  mode=broken" in cli.stderr and "1 failed" in cli.stderr, cli.stderr
    with open_store(tmp_path / "failing.sqlite") as store:
        assert by_mode(store, "failing")["broken"]["attempts"] == 7


@root
def test_retries_from_the_caller_override_the_file(tmp_path):
    path = failing(tmp_path, "noretry", retries=2)
    summary = run_batch(str(path), retries=0, progress=False, stream=open(os.devnull, "w"))
    assert (summary.ok, summary.failed, summary.retried) == (1, 2, 0)
    with open_store(tmp_path / "noretry.sqlite") as store:
        assert {m: (r["status"], r["attempts"]) for m, r in by_mode(store, "noretry").items()} == {
            "fine": ("ok", 1), "flaky": ("failed", 1), "broken": ("failed", 1)}


@root
def test_a_run_past_its_timeout_fails_and_is_stopped(tmp_path):
    path = experiment(tmp_path, "slow", "retries: 0\ntimeout: 2s\nworkload:\n"
                      "  - {endpoint: left, name: nap, command: 'echo napping >&2; sleep 30'}\n")
    t0 = time.monotonic()
    summary = run_batch(str(path), progress=False, stream=open(os.devnull, "w"))
    assert summary.failed == 1 and time.monotonic() - t0 < 25
    (result,) = summary.results
    assert "timed out after 2s" in result["error"] and "napping" in result["error"]


# -- Ctrl-C in the middle, then resume

INTERRUPTED = """\
sweep:
  n: [1, 2, 3, 4, 5, 6]
workload:
  - endpoint: left
    name: ping
    command: "ping -c 6 -i 0.25 -W 2 -p {mark} $RATTAN_RIGHT_IP"
    extract: ping
timeout: 60s
"""

RATTAN = str(Path(sys.executable).parent / "rattan")


def batch_command(path: Path, *flags: str) -> list[str]:
    return [RATTAN, "batch", str(path), "--jobs", "2", "--no-progress", *flags]


def processes_with(needle: bytes, where: str) -> list[int]:
    """PIDs whose /proc/PID/{where} (environ or cmdline) contains `needle`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if needle in Path(f"/proc/{pid}/{where}").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def describe(pids: list[int]) -> str:
    """What those processes are: command line, state, parent."""
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ":\t" in line)
            out.append(f"{pid} [{status.get('State')}, parent {status.get('PPid')}] {cmd}")
        except OSError:
            out.append(f"{pid} (gone)")
    return "\n".join(out)


def instances_of(pids: set[int]) -> dict[str, int]:
    """Namespace name -> pid, of the rattan instances those processes hold."""
    out = {}
    for f in (STATE_DIR / "instances").glob("*.json"):
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("pid") in pids:
            out.update({ns: doc["pid"] for ns in doc.get("namespaces", [])})
    return out


@root
@pytest.mark.parametrize("to", ["the batch", "its process group"])
def test_ctrl_c_then_resume_runs_only_what_is_missing(tmp_path, to):
    """`kill -INT PID`, or Ctrl-C on a terminal (which signals the whole foreground process group:
    the batch, its workers, the commands)."""
    mark = uuid.uuid4().hex[:16]  # in every ping's command line (its pad pattern), in every process's env
    path = experiment(tmp_path, "resume", INTERRUPTED.replace("{mark}", mark))
    db = tmp_path / "resume.sqlite"
    env = {**os.environ, "RATTAN_BTEST_MARK": mark}
    log = open(tmp_path / "first.txt", "w+")
    # alone, it starts as under `nohup` or a script's `&`, with SIGINT ignored: `kill -INT` stops it all the same
    ignored = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if to == "the batch" else None
    proc = subprocess.Popen(batch_command(path), stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, cwd=tmp_path, preexec_fn=ignored)
    ours_ns: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                with open_store(db) as store:
                    done = len(store.runs("resume"))
            ours = set(processes_with(f"RATTAN_BTEST_MARK={mark}".encode(), "environ"))
            ours_ns.update(instances_of(ours))
            if done >= 2 and processes_with(mark.encode(), "cmdline"):  # some done, pings of others running
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        assert 2 <= done < 6
        if to == "the batch":
            proc.send_signal(signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    first = log.read()
    assert status == 130, first
    assert "interrupted" in first
    # nothing left behind: no process of ours, no namespace of ours (a name another run took since is not ours)
    # (a process may still be exiting as the batch's own exit returns: a few seconds' grace)
    grace = time.monotonic() + 5
    while True:
        left = processes_with(f"RATTAN_BTEST_MARK={mark}".encode(), "environ") + \
            processes_with(mark.encode(), "cmdline")
        if not left or time.monotonic() > grace:
            break
        time.sleep(0.1)
    assert left == [], describe(left)
    assert ours_ns, "the runs' namespaces should have been seen"
    now = instances_of(set(ours_ns.values()))
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for ns in ours_ns:
        assert ns not in now, f"{ns} is still registered to the batch"
        if ns in listed.split():
            assert any(ns in json.loads(f.read_text()).get("namespaces", [])
                       for f in (STATE_DIR / "instances").glob("*.json")), f"{ns} left behind"
    with open_store(db) as store:
        kept = store.runs("resume")
    assert 2 <= len(kept) < 6 and {r["status"] for r in kept} == {"ok"}, kept
    # the second invocation runs only the missing ones, and ends with all ok
    second = subprocess.run(batch_command(path), capture_output=True, text=True, env=env, timeout=180,
                            start_new_session=True, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    missing = 6 - len(kept)
    assert f"{missing} runs to do ({len(kept)} of 6 done before)" in second.stderr, second.stderr
    assert second.stderr.count("ok      n=") == missing
    with open_store(db) as store:
        runs = store.runs("resume")
        assert sorted(r["params"]["n"] for r in runs) == [1, 2, 3, 4, 5, 6]
        assert {r["status"] for r in runs} == {"ok"} and {r["attempts"] for r in runs} == {1}
        assert {r["key"]: r["started"] for r in runs if r["key"] in {k["key"] for k in kept}} == \
            {k["key"]: k["started"] for k in kept}  # the finished ones were not run again


def test_a_worker_takes_one_sigint_and_defers_it_while_namespaces_change():
    # what keeps a terminal's Ctrl-C (to the worker) followed by the driver's (cancel_all) from cutting
    # a teardown short; the real runs above show it end to end, this shows it every time
    from rattan.batch import job, local
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, local._interruptible)
        try:
            with job.SHIELD():
                os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: deferred, not raised
                time.sleep(0.1)
                os.kill(os.getpid(), signal.SIGINT)  # the second: ignored
                time.sleep(0.1)
        except KeyboardInterrupt:
            pytest.fail("a SIGINT while namespaces change was raised there")
        assert job.SHIELD.pending and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        with pytest.raises(KeyboardInterrupt):
            job.SHIELD.raise_pending()  # once the run has started
        assert not job.SHIELD.pending
        signal.signal(signal.SIGINT, local._interruptible)
        with pytest.raises(KeyboardInterrupt):  # outside set-up and teardown: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    finally:
        signal.signal(signal.SIGINT, previous)

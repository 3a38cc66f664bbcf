"""The same small batch into a real PostgreSQL server (tests/batch/pg.py starts one from the
distribution's package) and into SQLite: the same rows come back.

Two real batches measure different round-trip times, so the comparison is in two parts: each store
gives back exactly what its batch produced (params, status, every metric), both batches have the
same runs (keys, params, status, metric names); and the SQLite batch's results recorded into
PostgreSQL read back equal, row for row.
"""
from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rattan.batch.runner import run_batch
from rattan.batch.store import open_store
from tests.batch.pg import postgres_server, postgres_url  # noqa: F401  (fixtures)

DATA = Path(__file__).resolve().parent / "data" / "experiments"

EXPERIMENT = """\
experiment: both
topology: path.rtn
sweep:
  count: [2, 3]
  delay: [2ms, 5ms]
lets: [delay]
workload:
  - endpoint: left
    name: ping
    command: "ping -c {count} -i 0.2 -W 2 $RATTAN_RIGHT_IP"
    extract: ping
timeout: 60s
"""

RATTAN = str(Path(sys.executable).parent / "rattan")

root = pytest.mark.skipif(os.geteuid() != 0, reason="real runs need root (network namespaces)")


def experiment(folder: Path) -> Path:
    shutil.copy(DATA / "path.rtn", folder / "path.rtn")
    path = folder / "both.yaml"
    path.write_text(EXPERIMENT)
    return path


def show(source: str, *flags: str) -> str:
    """`rattan batch show SOURCE FLAGS`: its stdout (it must exit 0)."""
    r = subprocess.run([RATTAN, "batch", "show", source, *flags], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def comparable(row: dict) -> dict:
    """A run as the store gives it back, without what differs by backend (its id) or by run (times)."""
    return {k: row[k] for k in ("key", "params", "seed", "repetition", "status", "attempts", "error",
                                "metrics", "plan_hash", "rattan_version", "machine")}


@root
def test_the_same_batch_on_postgresql_and_sqlite(tmp_path, postgres_url):  # noqa: F811
    path = experiment(tmp_path)
    quiet = open(os.devnull, "w")
    on_sqlite = run_batch(str(path), progress=False, stream=quiet)
    on_pg = run_batch(str(path), database=postgres_url, progress=False, stream=quiet)
    assert (on_sqlite.ok, on_pg.ok, on_sqlite.failed, on_pg.failed) == (4, 4, 0, 0)
    assert os.path.exists(tmp_path / "both.sqlite")  # the default: next to the file
    with open_store(tmp_path / "both.sqlite") as lite, open_store(postgres_url) as pg:
        assert "postgresql" in pg.url and "sqlite" in lite.url
        for store, summary in ((lite, on_sqlite), (pg, on_pg)):
            rows = {r["key"]: r for r in store.runs("both")}
            produced = {r["key"]: r for r in summary.results}
            assert set(rows) == set(produced)
            for key, r in produced.items():
                assert rows[key]["params"] == r["params"] and rows[key]["status"] == "ok"
                assert rows[key]["metrics"] == r["metrics"], key  # every metric, exactly
                assert rows[key]["metrics"]["ping.received"] == r["params"]["count"]
                # the let took: the round trip crosses the delay twice each way (path.rtn)
                one_way = {"2ms": 2, "5ms": 5}[r["params"]["delay"]]
                assert 2 * one_way <= rows[key]["metrics"]["ping.rtt_min_ms"] < 2 * one_way + 20
        # stored in the order they ended, which two at a time does not fix: compared by key
        a, b = (sorted(s.runs("both"), key=lambda r: r["key"]) for s in (lite, pg))
        assert [(r["key"], r["params"], r["status"], sorted(r["metrics"])) for r in a] == \
            [(r["key"], r["params"], r["status"], sorted(r["metrics"])) for r in b]
        # filters by value and by magnitude (0.005s is 5ms) answer alike on both
        for where in ({"count": 3}, {"delay": "0.005s"}, {"delay": ["2ms", "5000us"], "count": 2}):
            assert sorted(r["key"] for r in lite.runs("both", where=where)) == \
                sorted(r["key"] for r in pg.runs("both", where=where))
        assert len(lite.runs("both", where={"delay": "0.005s"})) == 2
        assert len(pg.runs("both", where={"delay": ["2ms", "5000us"], "count": 2})) == 2
        # `rattan batch show` reads both alike: the same runs, the same columns
        lite_csv = sorted(csv.DictReader(io.StringIO(show(str(path), "--format", "csv"))), key=lambda r: r["key"])
        pg_csv = sorted(csv.DictReader(io.StringIO(show(postgres_url, "--experiment", "both", "--format", "csv"))),
                        key=lambda r: r["key"])
        assert len(lite_csv) == 4 and list(lite_csv[0]) == list(pg_csv[0])
        assert [(r["key"], r["delay"], r["count"], r["status"]) for r in lite_csv] == \
            [(r["key"], r["delay"], r["count"], r["status"]) for r in pg_csv]
        pg_json = json.loads(show(postgres_url, "--experiment", "both", "--format", "json"))
        assert sorted((r["key"], r["params"], r["metrics"]) for r in pg_json) == \
            sorted((r["key"], r["params"], r["metrics"]) for r in b)
        # a second invocation on PostgreSQL resumes: nothing to do
        again = run_batch(str(path), database=postgres_url, progress=False, stream=quiet)
        assert (again.skipped, again.ok) == (4, 0)


@root
def test_sqlite_results_recorded_into_postgresql_read_back_equal(tmp_path, postgres_url):  # noqa: F811
    path = experiment(tmp_path)
    summary = run_batch(str(path), progress=False, stream=open(os.devnull, "w"))
    with open_store(postgres_url) as pg:
        for r in summary.results:
            pg.record(r)
        with open_store(tmp_path / "both.sqlite") as lite:
            assert [comparable(r) for r in lite.runs("both")] == [comparable(r) for r in pg.runs("both")]
            assert [r["started"] for r in lite.runs("both")] == [r["started"] for r in pg.runs("both")]
            for r in lite.runs("both"):
                assert lite.attempts("both", r["key"]) == pg.attempts("both", r["key"])
    # and `rattan batch show` prints the same from either (JSON objects: PostgreSQL's JSONB keeps
    # no key order, so compared as data)
    for fmt in ("csv", "table"):
        assert show(str(path), "--format", fmt) == show(postgres_url, "--experiment", "both", "--format", fmt)
    for flags in (("--format", "json"), ("--attempts", "--format", "json")):
        assert json.loads(show(str(path), *flags)) == json.loads(show(postgres_url, "--experiment", "both", *flags))


def _open(url: str) -> None:
    open_store(url).close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_opening_a_new_database_at_once_all_succeed(backend, tmp_path, request):
    # a batch starting while `rattan batch show` (or a second batch) opens the same new database;
    # a few rounds, as the race is one of timing
    ctx = multiprocessing.get_context("fork")
    for round in range(6):
        url = str(tmp_path / f"new{round}.sqlite") if backend == "sqlite" else request.getfixturevalue("postgres_server").create_database()
        procs = [ctx.Process(target=_open, args=(url,)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0], f"round {round}"
        with open_store(url) as store:
            assert store.schema_version >= 1 and store.runs() == []

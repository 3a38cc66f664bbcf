"""The results store on SQLite and on a real PostgreSQL server: the same tests on both."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from rattan.batch.store import SCHEMA_VERSION, StoreError, database_url, magnitude, open_store
from tests.batch.pg import postgres_server, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


def result(key="k1", status="ok", attempt=1, **over):
    """A JobResult dict as the runner makes them."""
    r = {
        "key": key, "experiment": "exp", "params": {"topology": "policer.rtn", "cc": "cubic",
                                                     "size": "100KB", "seed": 1, "repetition": 0},
        "seed": 1, "repetition": 0, "status": status, "attempt": attempt,
        "error": None if status == "ok" else "transfer exited with 1: iperf3: error - boom",
        "metrics": {"transfer.goodput_bps": 1.5e6, "transfer.retransmits": 3,
                    "transfer.sender_tcp_congestion": "cubic"} if status == "ok" else {},
        "outputs": {"transfer": {"returncode": 0 if status == "ok" else 1, "stdout": "{}",
                                 "stderr": "" if status == "ok" else "iperf3: error - boom"}},
        "plan_hash": "ab" * 32, "rattan_version": "0.9.0", "machine": "node-a",
        "started": "2026-12-02T08:00:00+00:00", "ended": "2026-12-02T08:00:04.250000+00:00",
        "overhead": {"setup_s": 0.4, "teardown_s": 0.2}, "packet_log": None,
    }
    r.update(over)
    return r


def test_record_and_read_back(store):
    store.record(result())
    (run,) = store.runs("exp")
    assert run["key"] == "k1" and run["status"] == "ok" and run["attempts"] == 1
    assert run["params"] == {"topology": "policer.rtn", "cc": "cubic", "size": "100KB", "seed": 1,
                             "repetition": 0}
    assert run["metrics"] == {"transfer.goodput_bps": 1.5e6, "transfer.retransmits": 3,
                              "transfer.sender_tcp_congestion": "cubic"}
    assert run["plan_hash"] == "ab" * 32 and run["rattan_version"] == "0.9.0" and run["machine"] == "node-a"
    assert run["seed"] == 1 and run["repetition"] == 0
    assert run["started"] == "2026-12-02T08:00:00+00:00"
    assert run["ended"] == "2026-12-02T08:00:04.250000+00:00"
    assert run["duration_s"] == pytest.approx(4.25)
    assert run["overhead"] == {"setup_s": 0.4, "teardown_s": 0.2}
    assert "outputs" not in run
    assert store.runs("exp", outputs=True)[0]["outputs"]["transfer"]["stdout"] == "{}"
    assert store.runs("other") == []
    assert store.experiments() == ["exp"]


def test_failures_then_success_keep_every_attempt(store):
    store.record(result(status="failed", attempt=1))
    assert store.done_keys("exp") == set()
    (run,) = store.runs("exp", status="failed")
    assert run["error"].startswith("transfer exited with 1")
    assert run["stderr"] == "--- transfer ---\niperf3: error - boom"
    store.record(result(status="failed", attempt=2, machine="node-b"))
    store.record(result(status="ok", attempt=3))
    assert store.done_keys("exp") == {"k1"}
    (run,) = store.runs("exp")  # one row per run: the last attempt, with the count
    assert run["status"] == "ok" and run["attempts"] == 3 and run["error"] is None and run["stderr"] is None
    attempts = store.attempts("exp", "k1")
    assert [(a["attempt"], a["status"], a["machine"]) for a in attempts] == [
        (1, "failed", "node-a"), (2, "failed", "node-b"), (3, "ok", "node-a")]
    assert attempts[0]["stderr"] == "--- transfer ---\niperf3: error - boom"
    assert store.runs("exp", status="failed") == []


def test_done_keys_are_per_experiment(store):
    store.record(result("a"))
    store.record(result("b", status="failed"))
    store.record(result("a", experiment="other"))
    store.record(result("c", experiment="other"))
    assert store.done_keys("exp") == {"a"}
    assert store.done_keys("other") == {"a", "c"}
    assert store.experiments() == ["exp", "other"]


def test_where_filters_on_parameters(store):
    for i, (cc, size) in enumerate([("cubic", "100KB"), ("bbr", "100KB"), ("cubic", "1MB"), ("reno", "10MB")]):
        store.record(result(f"k{i}", params={"cc": cc, "size": size, "seed": i % 2}))
    keys = lambda **w: [r["key"] for r in store.runs("exp", where=w)]  # noqa: E731
    assert keys(cc="cubic") == ["k0", "k2"]
    assert keys(cc="cubic", size="1MB") == ["k2"]
    assert keys(size="1000KB") == ["k2"]  # by magnitude too
    assert keys(cc=["bbr", "reno"]) == ["k1", "k3"]
    assert keys(seed=1) == ["k1", "k3"]
    assert keys(seed="1") == ["k1", "k3"]  # as `--where seed=1` gives it
    assert keys(cc="vegas") == []
    assert keys(missing_axis="x") == []


def test_sql_users_get_child_tables(store):
    store.record(result("a", params={"cc": "cubic", "size": "1MB"}, metrics={"t.goodput_bps": 1e6}))
    store.record(result("b", params={"cc": "cubic", "size": "1MB"}, metrics={"t.goodput_bps": 3e6}))
    store.record(result("c", params={"cc": "bbr", "size": "1MB"}, metrics={"t.goodput_bps": 5e6, "t.cc": "bbr"}))
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT p.value, avg(m.value) FROM runs r "
            "JOIN run_params p ON p.run_id = r.id AND p.axis = 'cc' "
            "JOIN run_metrics m ON m.run_id = r.id AND m.name = 't.goodput_bps' "
            "WHERE r.experiment = 'exp' GROUP BY p.value ORDER BY p.value")).all()
        assert [(v, float(a)) for v, a in rows] == [("bbr", 5e6), ("cubic", 2e6)]
        number = conn.execute(text("SELECT number FROM run_params WHERE axis = 'size' LIMIT 1")).scalar()
        assert number == 1e6  # bytes
        word = conn.execute(text("SELECT value, text FROM run_metrics WHERE name = 't.cc'")).one()
        assert word == (None, "bbr")
        assert conn.execute(text("SELECT max(version) FROM rattan_schema")).scalar() == SCHEMA_VERSION


def test_rerecord_replaces_params_and_metrics(store):
    store.record(result(metrics={"a": 1, "b": 2}))
    store.record(result(attempt=2, metrics={"a": 5}))
    assert store.runs("exp")[0]["metrics"] == {"a": 5}
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM run_metrics")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM run_params")).scalar() == 5


def test_nan_metrics_are_stored_as_null(store):
    store.record(result(metrics={"x": float("nan"), "y": 1.0}))
    assert store.runs("exp")[0]["metrics"] == {"x": None, "y": 1.0}


def test_reopen_keeps_everything(store_url):
    with open_store(store_url) as s:
        s.record(result())
    with open_store(store_url) as s:
        assert s.done_keys("exp") == {"k1"} and s.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(store_url):
    with open_store(store_url) as s:
        with s.engine.begin() as conn:
            conn.execute(text("INSERT INTO rattan_schema (version, applied) VALUES (99, CURRENT_TIMESTAMP)"))
    with pytest.raises(StoreError, match="schema version 99, newer than this rattan's"):
        open_store(store_url)


def test_concurrent_writers(store_url):
    """Writers in threads with their own connections: every run and attempt lands once."""
    open_store(store_url).close()
    errors = []

    def write(w):
        try:
            with open_store(store_url) as s:
                for i in range(10):
                    s.record(result(f"w{w}-{i}", machine=f"node-{w}"))
                    s.record(result("shared", attempt=w * 10 + i, status="failed"))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    with open_store(store_url) as s:
        runs = s.runs("exp")
        assert len(runs) == 41
        (shared,) = [r for r in runs if r["key"] == "shared"]
        assert shared["attempts"] == 40 and len(s.attempts("exp", "shared")) == 40


def test_urls_and_paths(tmp_path):
    assert database_url(tmp_path / "a.sqlite") == f"sqlite:///{tmp_path}/a.sqlite"
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(StoreError, match="SQLite .* or PostgreSQL"):
        open_store("mysql://u@h/db")
    s = open_store(tmp_path / "sub" / "r.sqlite")  # the folder is made
    s.close()
    assert (tmp_path / "sub" / "r.sqlite").exists()


def test_unreachable_postgres_says_where_without_password():
    with pytest.raises(StoreError) as e:
        open_store("postgresql+psycopg://someone:secret@127.0.0.1:1/nothing?connect_timeout=2")
    assert "cannot open the results database postgresql+psycopg://someone:***@127.0.0.1:1/nothing" in str(e.value)
    assert "secret" not in str(e.value)


def test_missing_fields_are_refused(tmp_path):
    with open_store(tmp_path / "r.sqlite") as s, pytest.raises(StoreError, match="without `key`"):
        s.record({"experiment": "e", "status": "ok"})


@pytest.mark.parametrize("value, number", [
    ("100KB", 1e5), ("1MiB", 1048576.0), ("2Mbps", 2e6), ("20ms", 0.02), ("5", 5.0), (3, 3.0),
    ("1.5", 1.5), ("1%", 0.01), ("cubic", None), (True, None), ("policer.rtn", None)])
def test_magnitude(value, number):
    assert magnitude(value) == number


def test_postgres_fixture_leaves_nothing():
    from pathlib import Path

    from tests.batch.pg import running_postgres
    with running_postgres() as server:
        pid, top = server.pid, server.datadir.parent
        assert Path(f"/proc/{pid}").exists()
        # loopback only: the server is not reachable on another address of this machine
        with open_store(server.create_database()) as s:
            with s.engine.connect() as conn:
                assert conn.execute(text("SHOW listen_addresses")).scalar() == "127.0.0.1"
                assert conn.execute(text("SELECT current_user")).scalar() == "rattan"
    assert not Path(f"/proc/{pid}").exists() and not top.exists()

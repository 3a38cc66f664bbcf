"""The results database of `rattan batch`: one row per run, every attempt, through SQLAlchemy 2.

SQLite by default (a file path), PostgreSQL for a cluster (`postgresql+psycopg://user@host/db`). The
schema is created when the store opens. Besides JSON columns, parameters and metrics have child tables
(`run_params` (run_id, axis, value, number), `run_metrics` (run_id, name, value, text)) so that plain
SQL on either backend can filter and aggregate without JSON functions, which SQLite and PostgreSQL
spell differently:

    SELECT p.value AS cc, avg(m.value) FROM runs r
      JOIN run_params p ON p.run_id = r.id AND p.axis = 'cc'
      JOIN run_metrics m ON m.run_id = r.id AND m.name = 'transfer.goodput_bps'
     WHERE r.experiment = 'policer-vs-shaper' AND r.status = 'ok' GROUP BY p.value;
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

from sqlalchemy import (JSON, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text, UniqueConstraint, and_, create_engine, delete, event, exists, func, insert,
                        or_, select)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from rattan.units import NUMBER, RATE, SIZE, TIME, UNITS, split_quantity

SCHEMA_VERSION = 1
STDERR_LIMIT = 64 * 1024  # per attempt, as the runner truncates each command's output
# PostgreSQL advisory lock id under which one writer creates or migrates the schema at a time
_SCHEMA_LOCK = 0x7261_7474  # "ratt"

_JSON = JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = MetaData()

schema_version = Table(
    "rattan_schema", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied", DateTime(timezone=True), nullable=False),
)

runs_table = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment", String(200), nullable=False),
    Column("key", String(128), nullable=False),
    Column("params", _JSON, nullable=False),
    Column("plan_hash", String(64)),
    Column("rattan_version", String(40)),
    Column("seed", Integer),
    Column("repetition", Integer),
    Column("machine", String(255)),
    Column("started", DateTime(timezone=True)),
    Column("ended", DateTime(timezone=True)),
    Column("duration_s", Float),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),  # attempts recorded so far; the row holds the last
    Column("error", Text),
    Column("stderr", Text),
    Column("metrics", _JSON, nullable=False),
    Column("outputs", _JSON),
    Column("overhead", _JSON),
    Column("packet_log", Text),
    Column("recorded", DateTime(timezone=True), nullable=False),
    UniqueConstraint("experiment", "key", name="runs_experiment_key"),
)
Index("runs_experiment_status", runs_table.c.experiment, runs_table.c.status)

run_params = Table(
    "run_params", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("axis", String(200), primary_key=True),
    Column("value", Text, nullable=False),  # as written in the sweep: `cubic`, `100KB`, `3`
    Column("number", Float),  # its magnitude in base units (bytes, bit/s, s) when it has one
)
Index("run_params_axis_value", run_params.c.axis, run_params.c.value)

run_metrics = Table(
    "run_metrics", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", Float),  # numeric metrics
    Column("text", Text),  # the few that are words (e.g. iperf3's congestion control)
)
Index("run_metrics_name", run_metrics.c.name)

attempts_table = Table(
    "attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("machine", String(255)),
    Column("started", DateTime(timezone=True)),
    Column("ended", DateTime(timezone=True)),
    Column("error", Text),
    Column("stderr", Text),
    Column("metrics", _JSON),
    Column("recorded", DateTime(timezone=True), nullable=False),
)
Index("attempts_run", attempts_table.c.run_id)

# Future schema changes: version -> function(connection) that brings a database from it to version+1.
MIGRATIONS: dict[int, object] = {}


class StoreError(RuntimeError):
    """The results database cannot be opened or used; the message names it (without password)."""


def value_text(value) -> str:
    """A parameter's value as the text `run_params.value` holds and `--where axis=value` matches."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def magnitude(value) -> float | None:
    """The number behind a parameter value, in base units: 100KB -> 100000 (bytes), 2Mbps -> 2e6
    (bit/s), 20ms -> 0.02 (s), 5 -> 5; None for words such as `cubic`."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return float(Fraction(value.strip()))
    except (ValueError, ZeroDivisionError):
        pass
    q = split_quantity(value)
    if q is None or q[1] not in UNITS:
        return None
    dim, scale = UNITS[q[1]]
    try:
        base = Fraction(q[0]) * scale
    except ValueError:
        return None
    if dim == SIZE:
        return float(base / 8)  # bytes, as the plan counts sizes
    if dim in (TIME, RATE, NUMBER):
        return float(base)
    return None


def database_url(url_or_path: str | os.PathLike) -> str:
    """A SQLAlchemy URL: a path becomes sqlite:///ABSOLUTE; `postgresql://` uses psycopg 3."""
    text = os.fspath(url_or_path)
    if "://" not in text:
        return "sqlite:///" + str(Path(text).expanduser().resolve())
    if text.startswith("postgresql://") or text.startswith("postgres://"):
        return "postgresql+psycopg://" + text.split("://", 1)[1]  # psycopg 3 is what `[cluster]` installs
    return text


def _when(text) -> datetime | None:
    """A UTC datetime from JobResult's ISO 8601 text (or a datetime)."""
    if text is None or text == "":
        return None
    if isinstance(text, datetime):
        d = text
    else:
        d = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def _iso(d: datetime | None) -> str | None:
    """ISO 8601 UTC text back from the database (SQLite returns naive datetimes)."""
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.astimezone(timezone.utc).isoformat()


def _stderr_of(result: dict) -> str | None:
    """The stderr of every command of a result that wrote some, each under its name."""
    parts = []
    for name, out in (result.get("outputs") or {}).items():
        err = (out or {}).get("stderr") if isinstance(out, dict) else None
        if err:
            parts.append(f"--- {name} ---\n{err.rstrip()}")
    text = "\n".join(parts)
    if len(text) > STDERR_LIMIT:
        text = "...\n" + text[-STDERR_LIMIT:]
    return text or None


def _jsonable(value):
    """Metrics and parameters as JSON can hold them: NaN and infinities (not JSON) become null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class Store:
    """An open results database (see the module doc); `record` results, read them with `runs`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self._create_schema()

    # -------------------------------------------------------------------------------------- schema
    def _create_schema(self) -> None:
        # SQLite returns "database is locked" at once, without waiting out its busy timeout, where
        # waiting could deadlock (two new connections switching the file to WAL, say): try again
        deadline = time.monotonic() + 30
        while True:
            try:
                return self._create_schema_once()
            except StoreError as e:
                if self.engine.dialect.name != "sqlite" or "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 + random.random() * 0.2)

    def _create_schema_once(self) -> None:
        try:
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
                elif self.engine.dialect.name == "sqlite":
                    # the write lock first: pysqlite runs DDL outside a transaction, so two processes
                    # opening a new database at once (a batch and `batch show`) both create tables
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                metadata.create_all(conn)
                version = conn.execute(select(func.max(schema_version.c.version))).scalar()
                if version is None:
                    conn.execute(insert(schema_version).values(version=SCHEMA_VERSION,
                                                               applied=datetime.now(timezone.utc)))
                    return
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{self.url}: the results database has schema version {version}, newer "
                                     f"than this rattan's ({SCHEMA_VERSION}): upgrade rattan")
                while version < SCHEMA_VERSION:
                    MIGRATIONS[version](conn)
                    version += 1
                    conn.execute(insert(schema_version).values(version=version,
                                                               applied=datetime.now(timezone.utc)))
        except SQLAlchemyError as e:
            raise StoreError(f"cannot open the results database {self.url}: {_reason(e)}") from None

    @property
    def schema_version(self) -> int:
        """The schema version the database is at."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(schema_version.c.version))).scalar()

    # ------------------------------------------------------------------------------------- writing
    def record(self, result: dict) -> int:
        """Store a JobResult dict: upsert its run row by (experiment, key), replace its parameters and
        metrics, and keep the attempt. Returns the run's id. Safe with concurrent writers."""
        for field in ("experiment", "key", "status"):
            if not result.get(field):
                raise StoreError(f"a result without `{field}` cannot be stored: {sorted(result)}")
        now = datetime.now(timezone.utc)
        params = _jsonable(result.get("params") or {})
        metrics = _jsonable(result.get("metrics") or {})
        started, ended = _when(result.get("started")), _when(result.get("ended"))
        stderr = _stderr_of(result)
        row = {
            "experiment": result["experiment"], "key": result["key"], "params": params,
            "plan_hash": result.get("plan_hash"), "rattan_version": result.get("rattan_version"),
            "seed": result.get("seed"), "repetition": result.get("repetition"),
            "machine": result.get("machine"), "started": started, "ended": ended,
            "duration_s": (ended - started).total_seconds() if started and ended else None,
            "status": result["status"], "error": result.get("error"), "stderr": stderr,
            "metrics": metrics, "outputs": _jsonable(result.get("outputs") or {}),
            "overhead": _jsonable(result.get("overhead") or {}), "packet_log": result.get("packet_log"),
            "recorded": now,
        }
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            ins = postgresql.insert(runs_table)
        elif dialect == "sqlite":
            ins = sqlite.insert(runs_table)
        else:
            raise StoreError(f"{self.url}: results databases are SQLite or PostgreSQL, not {dialect}")
        update = {k: ins.excluded[k] for k in row if k not in ("experiment", "key")}
        update["attempts"] = runs_table.c.attempts + 1
        stmt = ins.values(**row, attempts=1).on_conflict_do_update(
            index_elements=["experiment", "key"], set_=update).returning(runs_table.c.id)
        try:
            with self.engine.begin() as conn:
                run_id = conn.execute(stmt).scalar_one()
                conn.execute(delete(run_params).where(run_params.c.run_id == run_id))
                conn.execute(delete(run_metrics).where(run_metrics.c.run_id == run_id))
                if params:
                    conn.execute(insert(run_params), [
                        {"run_id": run_id, "axis": str(a), "value": value_text(v), "number": magnitude(v)}
                        for a, v in params.items()])
                metric_rows = []
                for name, v in metrics.items():
                    number = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                    metric_rows.append({"run_id": run_id, "name": str(name),
                                        "value": float(number) if number is not None else None,
                                        "text": None if number is not None else value_text(v)})
                if metric_rows:
                    conn.execute(insert(run_metrics), metric_rows)
                conn.execute(insert(attempts_table).values(
                    run_id=run_id, attempt=int(result.get("attempt") or 1), status=result["status"],
                    machine=result.get("machine"), started=started, ended=ended, error=result.get("error"),
                    stderr=stderr, metrics=metrics, recorded=now))
        except SQLAlchemyError as e:
            raise StoreError(f"cannot record run {result['key']} in {self.url}: {_reason(e)}") from None
        return run_id

    # ------------------------------------------------------------------------------------- reading
    def done_keys(self, experiment: str) -> set[str]:
        """Keys of the experiment's runs that succeeded: what a resumed batch skips."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(runs_table.c.key).where(
                runs_table.c.experiment == experiment, runs_table.c.status == "ok")).scalars())

    def experiments(self) -> list[str]:
        """Names of the experiments that have runs, sorted."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(runs_table.c.experiment).distinct()).scalars())

    def runs(self, experiment: str | None = None, where: dict | None = None, status: str | None = None,
             outputs: bool = False) -> list[dict]:
        """The runs (oldest first) of an experiment (or all), whose parameters match `where`
        (axis -> value, or a list of values: any of them; `1MB` also matches `1000KB`), with `status`.
        Each is a dict as JobResult plus `id`, `attempts`, `stderr`, `duration_s`; `outputs` on demand."""
        q = select(runs_table).order_by(runs_table.c.id)
        if experiment is not None:
            q = q.where(runs_table.c.experiment == experiment)
        if status is not None:
            q = q.where(runs_table.c.status == status)
        for axis, wanted in (where or {}).items():
            values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
            alternatives = []
            for v in values:
                alternatives.append(run_params.c.value == value_text(v))
                n = magnitude(v)
                if n is not None:
                    alternatives.append(run_params.c.number == n)
            q = q.where(exists().where(and_(run_params.c.run_id == runs_table.c.id,
                                            run_params.c.axis == str(axis), or_(*alternatives))))
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        out = []
        for r in rows:
            d = {
                "id": r["id"], "experiment": r["experiment"], "key": r["key"], "params": r["params"],
                "seed": r["seed"], "repetition": r["repetition"], "status": r["status"],
                "attempts": r["attempts"], "error": r["error"], "stderr": r["stderr"],
                "metrics": r["metrics"], "plan_hash": r["plan_hash"], "rattan_version": r["rattan_version"],
                "machine": r["machine"], "started": _iso(r["started"]), "ended": _iso(r["ended"]),
                "duration_s": r["duration_s"], "overhead": r["overhead"], "packet_log": r["packet_log"],
            }
            if outputs:
                d["outputs"] = r["outputs"]
            out.append(d)
        return out

    def attempts(self, experiment: str, key: str) -> list[dict]:
        """Every attempt of one run, in order: attempt, status, machine, started, ended, error, stderr."""
        q = (select(attempts_table).join(runs_table, runs_table.c.id == attempts_table.c.run_id)
             .where(runs_table.c.experiment == experiment, runs_table.c.key == key)
             .order_by(attempts_table.c.id))
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [{"attempt": r["attempt"], "status": r["status"], "machine": r["machine"],
                 "started": _iso(r["started"]), "ended": _iso(r["ended"]), "error": r["error"],
                 "stderr": r["stderr"], "metrics": r["metrics"]} for r in rows]

    def close(self) -> None:
        """Release the database's connections."""
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


def _reason(e: SQLAlchemyError) -> str:
    """The driver's one-line reason, without SQLAlchemy's statement dump and background link."""
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets `rattan batch show` read while the runner writes; foreign keys make cascades work.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def open_store(url_or_path: str | os.PathLike) -> Store:
    """Open (and create if needed) a results database: a path is SQLite, a URL as SQLAlchemy takes it."""
    url = database_url(url_or_path)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"`{url_or_path}` is neither a file path nor a database URL "
                         f"(sqlite:///PATH, postgresql+psycopg://USER@HOST/DB)") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    elif backend == "postgresql":
        try:
            engine = create_engine(parsed, pool_pre_ping=True)
        except ImportError as e:
            raise StoreError(f"{parsed.render_as_string(hide_password=True)}: the PostgreSQL driver is "
                             f"missing ({e}); install rattan[cluster] (psycopg 3)") from None
    else:
        raise StoreError(f"{parsed.render_as_string(hide_password=True)}: results databases are SQLite "
                         f"(a path) or PostgreSQL (postgresql+psycopg://...), not {backend}")
    return Store(engine)

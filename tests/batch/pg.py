"""A real PostgreSQL server for tests, from the distribution's package, on loopback only.

`postgres_server` (session) runs initdb in a temporary directory and starts the server on 127.0.0.1
at a free port, with its Unix socket in that directory too; as root it runs as the `postgres` user
(the server refuses root). At the end it is stopped by its PID and the directory removed.
`postgres_url` (per test) is the SQLAlchemy URL of a fresh, empty database on it. Import both into a
test module: `from tests.batch.pg import postgres_server, postgres_url  # noqa: F401`. Without
PostgreSQL's binaries (/usr/lib/postgresql/*/bin, Debian's `postgresql`), tests using them skip.
"""
from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 60  # initdb and start-up on a loaded 2-core machine
STOP_TIMEOUT_S = 30
USER = "rattan"  # the database superuser initdb creates (trust authentication, loopback only)


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if not found:
        return None

    def version(p: Path):
        try:
            return tuple(int(x) for x in p.parent.name.split("."))
        except ValueError:
            return (0,)
    return max(found, key=version)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server: where it listens, and how to make databases on it."""

    host: str
    port: int
    pid: int
    datadir: Path
    _names = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL (psycopg 3) of a database on this server."""
        return f"postgresql+psycopg://{USER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = name or f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(host=self.host, port=self.port, user=USER, dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_user() -> dict:
    """Popen arguments that run the server as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    pytest.skip("PostgreSQL refuses to run as root and there is no `postgres` or `nobody` user")


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def _wait_ready(host: str, port: int, proc: subprocess.Popen, log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited with {proc.returncode} at start:\n{_log_tail(log)}")
        try:
            with psycopg.connect(host=host, port=port, user=USER, dbname="postgres", connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not accept connections within {START_TIMEOUT_S} s:\n"
                                   f"{_log_tail(log)}") from None
            time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the postmaster by its PID: fast shutdown (SIGINT), then immediate (SIGQUIT), then KILL."""
    for sig, wait in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def running_postgres():
    """A PostgreSQL server on 127.0.0.1 while the block runs; skips the test without PostgreSQL."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin; Debian package "
                    "`postgresql`, installed by .ci/run)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("needs psycopg 3 (pip install rattan[cluster])")
    if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
        raise RuntimeError("/dev/null is not a character device (something renamed a file over it), so initdb, "
                           "which writes to it as an unprivileged user, cannot run; restore it with "
                           "`rm /dev/null && mknod -m 666 /dev/null c 1 3`")
    user = _as_user()
    top = Path(tempfile.mkdtemp(prefix="rattan-pg-"))
    proc = None
    try:
        if user:
            os.chown(top, user["user"], user["group"])
        datadir, log = top / "data", top / "server.log"
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(datadir), "-U", USER, "--auth=trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            capture_output=True, text=True, timeout=START_TIMEOUT_S, cwd=top, **user)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        port = _free_port()
        with open(log, "wb") as out:
            if user:
                os.chown(log, user["user"], user["group"])
            # listen on loopback only; the socket in our directory, not the system's /var/run/postgresql
            proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(datadir), "-p", str(port), "-k", str(top),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=top,
                start_new_session=True, **user)
        _wait_ready("127.0.0.1", port, proc, log)
        yield PostgresServer("127.0.0.1", port, proc.pid, datadir)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on 127.0.0.1 for the test session (see the module doc)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database()

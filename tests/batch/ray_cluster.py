"""A real two-node Ray cluster with token authentication, for tests, in a network namespace of its own.

Ray's gRPC servers (GCS, raylet, object manager) listen on every interface whatever
`--node-ip-address` says, so the cluster runs in a fresh network namespace that has nothing but
loopback: every socket it opens is on 127.0.0.1 and unreachable from anywhere else. Both nodes
and every driver run there (`ip netns exec`). The processes of the cluster are the processes of
that namespace; they are stopped by PID (never `ray stop`, which stops every Ray on the machine),
then the namespace and the temporary folder are removed.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 6379  # the namespace is private: the default port cannot clash with another cluster
START_TIMEOUT_S = 180  # generous: the machine is shared


def ray_command() -> str:
    """The `ray` script of the Python running the tests (its Ray, its rattan)."""
    here = Path(sys.executable).parent / "ray"
    return str(here) if here.exists() else (shutil.which("ray") or "ray")


class RayCluster:
    """A head and a worker node on loopback, each declaring `rattan_cores`/`rattan_instances`."""

    def __init__(self, cores_per_node: int = 1, instances_per_node: int = 1):
        self.netns = f"rattan-raytest-{os.getpid()}-{secrets.token_hex(3)}"
        # short: Ray puts unix sockets under its temp dir (108-byte limit on their paths)
        self.root = Path(tempfile.mkdtemp(prefix="rtnray-"))
        self.token = secrets.token_hex(32)
        self.token_file = self.root / "token"
        self.token_file.write_text(self.token)
        self.token_file.chmod(0o600)
        self.home = self.root / "home"  # no ~/.ray/auth_token of the user's is read or written
        self.home.mkdir()
        self.address = f"127.0.0.1:{PORT}"
        self.resources = json.dumps({"rattan_cores": cores_per_node, "rattan_instances": instances_per_node})
        self.nodes = ("rattan-head", "rattan-worker")
        self.log: list[str] = []

    # --- environment for the processes of the cluster and its drivers --------------------------

    def env(self, token: bool = True, **extra) -> dict:
        """The environment of a node or driver: token auth on; the token by file (or none)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=str(self.home), RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
        if token:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_file))
        env.update(extra)
        return env

    def run(self, argv: list[str], timeout: float, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        """Run `argv` inside the cluster's namespace."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], env=env or self.env(),
                              capture_output=True, text=True, timeout=timeout, **kw)

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> "RayCluster":
        """Make the namespace, start the head, then the worker node; wait until both are alive."""
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--resources", self.resources,
                  "--object-store-memory", str(100 * 1024 * 1024), "--disable-usage-stats"]
        self._ray_start("head", ["--head", "--port", str(PORT), "--include-dashboard", "false",
                                 "--node-name", self.nodes[0], *common])
        # a second node on the same machine: its own temp dir, agent port and worker ports
        self._ray_start("worker", ["--address", self.address, "--node-name", self.nodes[1],
                                   "--dashboard-agent-listen-port", "52366",
                                   "--min-worker-port", "20000", "--max-worker-port", "20999", *common],
                        env=self.env(token=False, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token))
        self.wait_nodes(len(self.nodes))
        return self

    def _ray_start(self, name: str, args: list[str], env: dict | None = None) -> None:
        temp = self.root / name
        temp.mkdir()
        r = self.run([ray_command(), "start", "--temp-dir", str(temp), *args], START_TIMEOUT_S, env=env)
        self.log.append(f"$ ray start {name}: exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
        if r.returncode != 0:
            raise RuntimeError(f"ray start ({name}) failed:\n{r.stdout}\n{r.stderr}")

    def wait_nodes(self, count: int) -> None:
        code = ("import ray, json; ray.init(address=%r, logging_level='ERROR'); "
                "print(json.dumps([n['NodeName'] for n in ray.nodes() if n['Alive']]))" % self.address)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            r = self.run([sys.executable, "-c", code], START_TIMEOUT_S)
            names = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else []
            if len(names) >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} Ray nodes not alive after {START_TIMEOUT_S} s: {names}\n{r.stderr[-3000:]}")
            time.sleep(1)

    def pids(self) -> set[int]:
        """The cluster's processes: those in its namespace, and any naming or holding its temp dir."""
        r = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        found = {int(p) for p in r.stdout.split()} if r.returncode == 0 else set()
        return found | referencing(self.root)

    def listeners(self) -> list[str]:
        """Local addresses of the listening TCP sockets in the cluster's namespace."""
        r = self.run(["ss", "-ltnH"], 30)
        return [line.split()[3] for line in r.stdout.splitlines() if line.strip()]

    def stop(self) -> None:
        """SIGTERM the cluster's processes, SIGKILL what is left after a while; remove everything."""
        pids = self.pids()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while (pids := {p for p in self.pids() if alive(p)}) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while {p for p in self.pids() if alive(p)} and time.monotonic() < deadline:
            time.sleep(0.2)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a zombie holds nothing: no sockets, no files)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def referencing(folder: Path) -> set[int]:
    """PIDs whose command line, working directory or open files are under `folder`."""
    mark = str(folder)
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        base = f"/proc/{entry}"
        try:
            with open(f"{base}/cmdline", "rb") as f:
                if mark.encode() in f.read():
                    found.add(int(entry))
                    continue
            fds = [f"{base}/fd/{fd}" for fd in os.listdir(f"{base}/fd")]
        except OSError:
            continue
        for link in [f"{base}/cwd", *fds]:
            try:
                if os.readlink(link).startswith(mark):
                    found.add(int(entry))
                    break
            except OSError:
                pass
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass

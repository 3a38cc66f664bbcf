"""Run a batch's jobs as Ray tasks: on an existing cluster (`--cluster ADDRESS`) or an embedded local Ray.

Each job is one Ray task running `rattan.batch.job.run_job`. A task asks for the experiment's
`resources` as the custom resources `rattan_cores` and `rattan_instances`, which every node
declares (`ray start --resources '{"rattan_cores": 8, "rattan_instances": 8}'`), so Ray never
places more runs on a machine than it can emulate. Ray's own `CPU` resource is not used: a run's
cost is what the node says it can emulate, not a Python worker.

Token authentication (Ray >= 2.52) is always on: RAY_AUTH_MODE=token, the token from the
`token` argument, else Ray's own sources (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token).
The embedded Ray gets a fresh random token held in this process's environment only (nothing is
written to ~/.ray). Ray's connection state is per process: one RayExecutor at a time.
"""
from __future__ import annotations

import concurrent.futures
import datetime
import os
import secrets
import threading
from typing import Any, Callable

import rattan

AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")
CORES = "rattan_cores"
INSTANCES = "rattan_instances"
# cancel_all raises KeyboardInterrupt inside each task (see _interruptible), so the run's
# `with rattan.run(...)` tears down (processes, engine, namespaces). Ray's force-cancel kills the
# worker process outright and would leave the run's namespaces and processes behind: used only for
# tasks still running this long after the interrupt.
CANCEL_GRACE_S = 60.0


class RayExecutorError(Exception):
    """Ray cannot be started or reached, refused the token, or a node runs another rattan version."""


def task_resources(resources: dict | None) -> dict[str, float]:
    """The Ray custom resources one run asks for: the experiment's `resources` (cores, instances)."""
    resources = resources or {}
    return {CORES: float(resources.get("cores", 1)), INSTANCES: float(resources.get("instances", 1))}


def node_slots(node_resources: dict, resources: dict | None = None) -> int:
    """How many runs of `resources` one node can take at once, from what it declares."""
    need = task_resources(resources)
    have = [node_resources.get(name, 0.0) / amount for name, amount in need.items() if amount > 0]
    return int(min(have)) if have else 0


def node_label(node: dict) -> str:
    """A node's name for JobResult.machine: its `--node-name` when set, else its hostname."""
    name = node.get("NodeName") or ""
    if name and name != node.get("NodeManagerAddress"):  # Ray's default name is the node's IP
        return name
    return node.get("NodeManagerHostname") or name or node.get("NodeID", "?")


def _cancel_key() -> str:
    return f"rattan-cancel-{secrets.token_hex(8)}"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def failed_result(job: dict, error: str, machine: str | None = None) -> dict:
    """A JobResult dict for a job whose task never returned one (worker or node lost)."""
    now = _now()
    return {
        "key": job.get("key"), "experiment": job.get("experiment"), "params": job.get("params", {}),
        "seed": job.get("seed"), "repetition": job.get("repetition"), "status": "failed",
        "attempt": job.get("attempt", 1), "error": error, "metrics": {}, "outputs": {},
        "plan_hash": None, "rattan_version": None, "machine": machine, "started": now, "ended": now,
        "overhead": {}, "packet_log": None,
    }


def _run_task(run_job: Callable | None, job: dict, cancel_key: str,
              reuse: bool = False) -> tuple[dict | None, str, int]:
    """The body of a Ray task: one job, on whichever node Ray placed it; (result, node, worker PID),
    the result None if cancelled. `reuse`: the default run_job gets the worker process's warm pool
    (rattan.runtime.warm); Ray ends its workers without atexit, so the embedded executor's close
    removes what they held (_remove_pools_of), and on a cluster the node's next rattan start does
    (netns.clean_stale)."""
    import ray
    from ray.experimental import internal_kv
    node_id = ray.get_runtime_context().get_node_id()
    if internal_kv._internal_kv_get(cancel_key):  # cancel_all came before this task started
        return None, node_id, os.getpid()
    with _interruptible(lambda: internal_kv._internal_kv_get(cancel_key)):
        if run_job is None:
            from rattan.batch.job import Job, run_job as run
            pool = None
            if reuse:
                from rattan.runtime import warm
                pool = warm.pool()
            result = run(Job.from_dict(job), network_pool=pool)
        else:
            result = run_job(job)
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    return result, node_id, os.getpid()


class _interruptible:
    """While inside, a real SIGINT reaches the task's thread when `cancelled()` turns true.

    Ray's own non-force cancel calls `_thread.interrupt_main()`, which raises KeyboardInterrupt
    only once the task's thread runs Python again: a run blocked in a wait (a command, a sleep)
    would see it at its end, minutes later. A real signal interrupts the blocking call (PEP 475
    then runs the handler), so the run's `with` blocks tear down at once. Ray blocks SIGINT in its
    workers; it is unblocked here, for this thread, for the job's duration.
    """

    def __init__(self, cancelled: Callable[[], Any], poll_s: float = 0.5):
        self.cancelled = cancelled
        self.poll_s = poll_s

    def __enter__(self):
        import signal
        self.done = threading.Event()
        self.thread_id = threading.get_ident()
        self.mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        self.handler = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
            # a worker started with SIGINT ignored (a raylet under `nohup`, a script's `&`) would
            # never see the signal the watcher sends: KeyboardInterrupt for the job's duration
            self.handler = signal.signal(signal.SIGINT, signal.default_int_handler)
        self.watcher = threading.Thread(target=self._watch, name="rattan-cancel-watch", daemon=True)
        self.watcher.start()
        return self

    def _watch(self):
        import signal
        while not self.done.wait(self.poll_s):
            try:
                cancelled = self.cancelled()
            except Exception:  # the GCS is briefly unreachable: ask again
                continue
            if cancelled:
                signal.pthread_kill(self.thread_id, signal.SIGINT)
                return

    def __exit__(self, *exc):
        import signal
        self.done.set()
        self.watcher.join()
        if self.handler is not None:
            signal.signal(signal.SIGINT, self.handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
        return False


def _remove_pools_of(pids: set[int], wait_s: float = 10.0) -> None:
    """What the warm pools of these (this machine's) worker processes hold, once they are gone: Ray
    ends its workers at shutdown without their atexit (measured with Ray 2.52), so their pools
    cannot close themselves; their instance records name the dead PIDs (netns.clean_stale)."""
    import time
    from rattan.runtime import netns
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(netns._alive(pid) for pid in pids):
        time.sleep(0.05)
    netns.clean_stale()


def _node_version(_: int) -> tuple[str, str]:
    import ray
    import rattan as installed
    return ray.get_runtime_context().get_node_id(), installed.__version__


class RayExecutor:
    """The Executor surface (slots, submit, cancel_all, close, describe) on Ray tasks."""

    def __init__(self, address: str | None = None, token: str | None = None, *,
                 cores: int | None = None, instances: int | None = None,
                 run_job: Callable[[dict], Any] | None = None, check_versions: bool = True,
                 temp_dir: str | None = None, reuse: bool = False):
        """Connect to the cluster at `address`, or start an embedded local Ray when it is None.

        `cores`/`instances`: what the embedded node declares (default: the machine's CPU count).
        `run_job`: what a task runs on a job dict (default `rattan.batch.job.run_job`).
        `check_versions`: on a cluster, refuse nodes whose rattan version differs from this one.
        `reuse`: each worker process keeps the networks of its runs for the next (rattan.runtime.warm).
        Ray ends its workers without atexit: `close` removes what they held here (embedded); on a
        cluster it stays until the node's next rattan start removes it.
        """
        try:
            import ray
        except ImportError as e:  # the `cluster` extra
            raise RayExecutorError("Ray is not installed: pip install 'rattan[cluster]'") from e
        self._ray = ray
        if ray.is_initialized():
            raise RayExecutorError("Ray is already initialized in this process: one RayExecutor at a time")
        self.address = address
        self._run_job = run_job
        self.reuse = reuse
        self._workers: set[int] = set()  # PIDs of the worker processes that ran a task (embedded)
        self._saved_env = {name: os.environ.get(name) for name in AUTH_ENV}
        self._lock = threading.Lock()
        self._running: dict[Any, tuple[dict, concurrent.futures.Future]] = {}
        self._nodes: dict[str, str] = {}
        self._closed = False
        self._cancel_key = _cancel_key()
        os.environ["RAY_AUTH_MODE"] = "token"
        if address is None:
            # the embedded cluster: a token of its own, known to this process and its children only
            os.environ["RAY_AUTH_TOKEN"] = token or secrets.token_hex(32)
        elif token is not None:
            os.environ["RAY_AUTH_TOKEN"] = token
        self._reload_auth()
        try:
            if address is None:
                n = os.cpu_count() or 1
                ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR", _temp_dir=temp_dir,
                         resources={CORES: float(cores or n), INSTANCES: float(instances or n)})
            else:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except Exception as e:
            self._restore_env()
            raise RayExecutorError(f"cannot connect to Ray at {address or 'a new local cluster'}: {e}") from e
        try:
            self._task = ray.remote(num_cpus=0, max_retries=0)(_run_task)
            self._refresh_nodes()
            if address is not None and check_versions:
                self._check_versions()
        except BaseException:
            self.close()
            raise

    # --- the Executor surface ---------------------------------------------------------------

    @property
    def slots(self) -> int:
        """Runs of one core and one instance the alive nodes can take at once."""
        return self.slots_for(None)

    def slots_for(self, resources: dict | None) -> int:
        """Runs of `resources` (an experiment's declaration) the alive nodes can take at once."""
        return sum(node_slots(n["Resources"], resources) for n in self._ray.nodes() if n["Alive"])

    def submit(self, job) -> concurrent.futures.Future:
        """Start `job` (a Job or its dict) as a Ray task; the future's result is a JobResult dict."""
        job = job.to_dict() if hasattr(job, "to_dict") else dict(job)
        need = task_resources(job.get("resources"))
        if not any(node_slots(n["Resources"], job.get("resources")) for n in self._ray.nodes() if n["Alive"]):
            raise RayExecutorError(
                f"no node of the cluster declares {need[CORES]:g} {CORES} and {need[INSTANCES]:g} "
                f"{INSTANCES} for one run (ray start --resources ...): the job would wait forever")
        ref = self._task.options(resources=need).remote(self._run_job, job, self._cancel_key, self.reuse)
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._running[ref] = (job, future)
        ref.future().add_done_callback(lambda done, ref=ref: self._finish(ref, done))
        return future

    def cancel_all(self) -> None:
        """Interrupt every job (KeyboardInterrupt inside it, so its run tears down) and wait for them."""
        from ray.experimental import internal_kv
        ray = self._ray
        with self._lock:
            running = dict(self._running)
            key, self._cancel_key = self._cancel_key, _cancel_key()  # later submits run again
        internal_kv._internal_kv_put(key, b"1")
        _, late = concurrent.futures.wait([f for _, f in running.values()], timeout=CANCEL_GRACE_S)
        for ref, (_, future) in running.items():
            if future in late:  # deaf to the interrupt: kill its worker (the run may leave namespaces)
                ray.cancel(ref, force=True)
        concurrent.futures.wait(late, timeout=10)
        internal_kv._internal_kv_del(key)

    def close(self) -> None:
        """Disconnect (and stop the embedded Ray); restore the auth environment."""
        if self._closed:
            return
        self._closed = True
        try:
            self._ray.shutdown()
            if self.reuse and self.address is None:
                _remove_pools_of(self._workers)
        finally:
            self._restore_env()

    def describe(self) -> str:
        """"ray local, 2 slots" / "ray at ADDR, 2 nodes, 4 slots"."""
        alive = [n for n in self._ray.nodes() if n["Alive"]]
        slots = sum(node_slots(n["Resources"]) for n in alive)
        if self.address is None:
            return f"ray local, {slots} slots"
        return f"ray at {self.address}, {len(alive)} nodes, {slots} slots"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- internals ----------------------------------------------------------------------------

    def _finish(self, ref, done: concurrent.futures.Future) -> None:
        with self._lock:
            job, future = self._running.pop(ref, (None, None))
        if future is None:
            return
        ray = self._ray
        try:
            result, node_id, pid = done.result()
            self._workers.add(pid)
        except ray.exceptions.TaskCancelledError:  # the KeyboardInterrupt of cancel_all
            result, node_id = None, None
        except Exception as e:  # the worker or its node died: the job failed, the batch goes on
            future.set_result(failed_result(job, f"ray: {type(e).__name__}: {e}"))
            return
        if result is None:
            future.set_exception(concurrent.futures.CancelledError(f"job {job.get('key')} cancelled"))
            return
        result = dict(result)
        result["machine"] = self._node_name(node_id) or result.get("machine")
        future.set_result(result)

    def _node_name(self, node_id: str) -> str | None:
        if node_id not in self._nodes:
            self._refresh_nodes()
        return self._nodes.get(node_id)

    def _refresh_nodes(self) -> None:
        self._nodes = {n["NodeID"]: node_label(n) for n in self._ray.nodes()}

    def _check_versions(self) -> None:
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        probe = ray.remote(num_cpus=0, max_retries=0)(_node_version)
        alive = [n for n in ray.nodes() if n["Alive"]]
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(i) for i, n in enumerate(alive)]
        wrong = [f"{self._nodes.get(node_id, node_id)}: {version}"
                 for node_id, version in ray.get(refs, timeout=120) if version != rattan.__version__]
        if wrong:
            raise RayExecutorError(f"nodes run another rattan version than this one ({rattan.__version__}): "
                                   + ", ".join(wrong))

    def _reload_auth(self) -> None:
        # Ray caches the auth mode and token per process (RayConfig, AuthenticationTokenLoader):
        # re-read them, so a second executor in the same process sees its own token.
        try:
            from ray._raylet import AuthenticationTokenLoader, Config
            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
        except ImportError:  # Ray < 2.52 has no token authentication; pyproject asks for >= 2.52
            pass

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._reload_auth()

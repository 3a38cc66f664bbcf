"""Rattan as a Python library: compile a topology, run it in virtual time, or drive a real run.

The objects here are the ones the command line uses: `rattan sim` prints a `sim(...)` result's
document, and `rattan run` sets up and tears down its namespaces and engine through `Run`. Nothing
is re-implemented: compiling is rattan.compiler, the virtual-time run rattan.runtime.sim, the real
run rattan.runtime.run.LiveRun, and live changes go through the control API (rattan.control.api)
in-process, with the same unit parsing and checks as over HTTP. docs/library.md shows them all.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from .runtime.run import RunError
from .runtime.sim import SimError

__all__ = ["compile", "load_plan", "plan_hash", "sim", "run", "CompileResult", "Diagnostic", "SimResult",
           "FlowResult", "CellResult", "Run", "Endpoint", "ExecResult", "Process", "PacketLog",
           "CompileError", "RunError", "SimError"]

PathLike = "str | os.PathLike[str]"


# -- compiling

class CompileError(Exception):
    """A topology that does not compile (its diagnostics, rendered, are the message), or a file
    that cannot be read."""

    def __init__(self, message: str, diagnostics: Sequence["Diagnostic"] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the compiler, located: code, severity, message, where (1-based line and
    column, in characters), and how to fix it (`help`, `fix`)."""
    code: str
    severity: str            # "error", "warning" or "note"
    message: str
    file: str | None = None  # as the compiler names it: the path given, or the `name` of a text
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    help: tuple[str, ...] = ()
    fix: str | None = None   # replacement text for the span, when there is one obvious fix

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict:
        """The item of `rattan check --format json` for this diagnostic."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("help", "fix")}
        if self.help:
            d["help"] = list(self.help)
        if self.fix is not None:
            d["fix"] = self.fix
        return d

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}: " if self.line is not None else \
            (f"{self.file}: " if self.file else "")
        return f"{where}{self.severity}[{self.code}]: {self.message}"


def _diagnostics(sources, diags) -> list[Diagnostic]:
    from .diagnostics.render import diagnostics_as_data
    out = []
    for item in diagnostics_as_data(sources, diags):  # the one place locations are computed
        item["help"] = tuple(item.get("help", ()))
        out.append(Diagnostic(**item))
    return out


def plan_hash(plan: Mapping) -> str:
    """The SHA-256 (hex) of a plan's canonical JSON: sorted keys, no spaces, UTF-8."""
    text = json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CompileResult:
    """What compiling a topology gave: its diagnostics and, when it has no error, its plan."""

    def __init__(self, compilation, name: str) -> None:
        self.compilation = compilation  # rattan.compiler.Compilation: sources, IR, raw diagnostics
        self.name = name
        self.diagnostics: list[Diagnostic] = _diagnostics(compilation.sources, compilation.diagnostics)
        self._plan: dict | None = None

    @property
    def ok(self) -> bool:
        """No error (warnings allowed)."""
        return self.compilation.ok

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def render(self, color: bool = False) -> str:
        """Every diagnostic as `rattan check` prints it (source lines, carets, help)."""
        from .diagnostics import render_text
        return render_text(self.compilation.sources, self.compilation.diagnostics, color=color)

    def raise_for_errors(self) -> "CompileResult":
        """CompileError (its message: the rendered diagnostics) if there is an error; else self."""
        if not self.ok:
            n = len(self.errors)
            raise CompileError(f"{self.name}: {n} error{'s' * (n != 1)}\n{self.render()}", self.diagnostics)
        return self

    @property
    def plan(self) -> dict:
        """The execution plan, as `rattan compile` writes it (CompileError if there are errors)."""
        if self._plan is None:
            from .plan import build_plan
            from .registry import default_registry
            self.raise_for_errors()
            self._plan = build_plan(self.compilation.program, self.compilation.sources, default_registry())
        return self._plan

    @property
    def plan_hash(self) -> str:
        return plan_hash(self.plan)

    def plan_json(self) -> str:
        """The plan's text, exactly what `rattan compile` prints."""
        from .plan import plan_json
        return plan_json(self.plan)

    def __repr__(self) -> str:
        return f"<CompileResult {self.name}: {len(self.errors)} errors, {len(self.warnings)} warnings>"


def _options(lets: Mapping[str, str] | None, optimize: bool, freeze: bool):
    from .passes.context import Options
    if not lets:
        return Options(optimize=optimize, freeze=freeze)
    if "lets" not in {f.name for f in dataclasses.fields(Options)}:
        raise CompileError("let overrides are not supported by this rattan's compiler (no Options.lets)")
    return Options(optimize=optimize, freeze=freeze, lets=dict(lets))


def compile(path: "str | os.PathLike[str] | None" = None, *, text: str | None = None, name: str | None = None,
            lets: Mapping[str, str] | None = None, optimize: bool = True, freeze: bool = False) -> CompileResult:
    """Compile a topology file (`.rtn`, upstream TOML/YAML), or a text (`text=`, read as `name`,
    whose extension picks the front end; relative paths in it are read from the working directory).
    `lets`: `let` values to use instead of the file's, as .rtn expressions ({"rate": "2Mbps"}).
    Diagnostics are data in the result; CompileError only when the file cannot be read."""
    from .compiler import compile_path, compile_text
    from .passes.reading import InputError
    if (path is None) == (text is None):
        raise TypeError("rattan.compile: give a path or text=, not both")
    options = _options(lets, optimize, freeze)
    if text is not None:
        name = name or "<input>.rtn"
        return CompileResult(compile_text(text, name, path=os.path.abspath(name), options=options), name)
    path = os.fspath(path)
    try:
        return CompileResult(compile_path(path, options=options), path)
    except InputError as e:
        raise CompileError(str(e)) from None


def load_plan(path: "str | os.PathLike[str]") -> dict:
    """A compiled plan file (`rattan compile -o PLAN.json`), checked as `rattan sim` checks it;
    CompileError naming every problem by JSON path otherwise."""
    from .plan.load import PlanError, read_plan
    from .registry import default_registry
    try:
        return read_plan(os.fspath(path), default_registry())
    except PlanError as e:
        raise CompileError(str(e)) from None


def _plan_of(source) -> dict:
    """A plan from what `sim` and `run` accept: a CompileResult, a plan dict, or a file (a `.json`
    plan, else a topology to compile)."""
    if isinstance(source, CompileResult):
        return source.plan
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, (str, os.PathLike)):
        from .plan.load import is_plan_file
        path = os.fspath(source)
        return load_plan(path) if is_plan_file(path) else compile(path).plan
    raise TypeError(f"expected a CompileResult, a plan dict or a path, not {type(source).__name__}")


# -- virtual time

@dataclass(frozen=True)
class FlowResult:
    """One synthetic flow of a `sim` run (an item of the document's `flows`)."""
    src: str
    dst: str
    kind: str                 # "cbr" or "poisson"
    rate_bps: int
    size: int                 # bytes per packet
    sent_packets: int
    sent_bytes: int
    received_packets: int
    received_bytes: int
    misdelivered_packets: int
    misdelivered_bytes: int
    reordered_packets: int
    throughput_bps: float     # received bits over the run's duration
    delay_ms: dict            # min, p50, p99, max, mean one-way delay
    samples: dict | None = None  # with samples=True: {"seq": [...], "delay_ns": [...]}

    @property
    def loss(self) -> float:
        """The fraction of sent packets not received at the destination."""
        return 1 - self.received_packets / self.sent_packets if self.sent_packets else 0.0


@dataclass(frozen=True)
class CellResult:
    """What one cell did over a `sim` run (an entry of the document's `cells`)."""
    name: str
    in_packets: int
    out_packets: int
    dropped_packets: int
    queued_packets: int
    in_bytes: int
    out_bytes: int
    dropped_by_reason: dict
    created_packets: int = 0
    modified_packets: int = 0


def _record(cls, doc: dict, **extra):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in doc.items() if k in names}, **extra)


class SimResult:
    """The result of a run in virtual time: `document` is exactly `rattan sim --json`'s."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.flows = [_record(FlowResult, f) for f in document["flows"]]
        self.cells = {n: _record(CellResult, c, name=n) for n, c in document["cells"].items()}
        self.endpoints: dict = document["endpoints"]
        self.series: dict | None = document.get("series")  # None for a run paced with http=
        self.warnings: list[str] = document.get("warnings", [])

    channel = property(lambda self: self.document["channel"])
    seed = property(lambda self: self.document["seed"])
    duration_s = property(lambda self: self.document["duration_s"])

    def json(self) -> str:
        """The document as `rattan sim --json` prints it."""
        return json.dumps(self.document, indent=2) + "\n"

    def __repr__(self) -> str:
        return f"<SimResult {self.channel}: {len(self.flows)} flows, {self.duration_s:g} s>"


def sim(source, flows: str | Sequence[str], duration: str, seed: int = 1, channel: str | None = None,
        interval: str | None = None, packet_log: str | None = None, log_cells: list[str] | None = None,
        packet_log_snaplen: int = 0, samples: bool = False, http: str | None = None,
        progress=None, announce=None, cores: int | None = None) -> SimResult:
    """Run one channel of a plan in virtual time with synthetic flows (`SRC->DST:KIND:RATE[:size=S]`)
    for `duration` ("10s"); SimError with the reason when it cannot. The other arguments are
    `rattan sim`'s flags; `progress(t_ns, duration_ns)` is called as virtual time advances, and
    `announce(url)` when the control API (`http=`) listens; `cores`: engine threads (default: every
    usable core; results are the same for any count)."""
    from .control import AddressError
    from .engine import EngineError
    from .runtime.channel import ChannelError
    from .runtime.packet_log import LogError
    from .runtime.sim import run as run_sim
    plan = _plan_of(source)
    try:
        doc = run_sim(plan, channel, [flows] if isinstance(flows, str) else list(flows), duration, seed,
                      progress=progress, http=http, announce=announce, interval=interval, packet_log=packet_log,
                      log_cells=log_cells, samples=samples, packet_log_snaplen=packet_log_snaplen, cores=cores)
    except SimError:
        raise
    except (ChannelError, AddressError, LogError) as e:
        raise SimError(str(e)) from None
    except EngineError as e:
        raise SimError(f"cannot simulate: {e}") from None
    return SimResult(doc)


# -- real runs

@dataclass(frozen=True)
class Endpoint:
    """An endpoint of a real run: its address and the network namespace its commands run in."""
    name: str
    address: str
    netns: str       # the namespace's name (`ip netns exec NAME ...`); "" for rattan's own namespace
    netns_path: str
    ifname: str      # its interface in that namespace
    mac: str


@dataclass(frozen=True)
class ExecResult:
    """A command that ran to its end (or was stopped at its timeout)."""
    argv: list[str]
    endpoint: str
    returncode: int  # as a shell says it: a death by signal N is 128 + N
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def check(self) -> "ExecResult":
        """RunError (with the status and the end of stderr) unless the command succeeded."""
        if not self.ok:
            why = f"timed out after {self.duration_s:.1f} s" if self.timed_out else f"exited with {self.returncode}"
            tail = self.stderr.strip()[-2000:]
            raise RunError(f"`{' '.join(self.argv)}` in `{self.endpoint}` {why}" + (f":\n{tail}" if tail else ""))
        return self


STOP_GRACE_S = 2.0  # a command gets this long after SIGTERM before SIGKILL


class Process:
    """A command started in an endpoint's namespace (and a PID namespace of its own); its output
    is collected in temporary files and read when it ends."""

    def __init__(self, argv: list[str], endpoint: str, netns_path: str, env: dict, cwd=None,
                 input: str | bytes | None = None, linger: bool = False, cpus=None) -> None:
        from .runtime.run import in_namespace
        self.argv, self.endpoint, self.netns_path = argv, endpoint, netns_path
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        stdin = subprocess.DEVNULL
        if input is not None:
            stdin = tempfile.TemporaryFile()
            stdin.write(input.encode() if isinstance(input, str) else input)
            stdin.seek(0)
        self.started = time.monotonic()
        self.ended: float | None = None
        try:
            # its own session: a terminal's Ctrl-C goes to the script, whose teardown stops it
            self._popen = in_namespace(netns_path, argv, env, linger=linger, stdin=stdin, stdout=self._out,
                                       stderr=self._err, cwd=cwd, start_new_session=True, cpus=cpus)
        finally:
            if stdin is not subprocess.DEVNULL:
                stdin.close()
        self.pid = self._popen.pid  # rattan's child (nsexec), which takes the command's PID namespace with it
        self.stdout: str | None = None
        self.stderr: str | None = None
        self.timed_out = False

    @property
    def returncode(self) -> int | None:
        """The exit status (128 + N for a signal N) once it has ended; None while it runs."""
        from .runtime.run import exit_status
        rc = self._popen.poll()
        if rc is None:
            return None
        self._collect()
        return exit_status(rc)

    @property
    def running(self) -> bool:
        return self.returncode is None

    def _collect(self) -> None:
        if self.stdout is not None:
            return
        self.ended = time.monotonic()
        texts = []
        for f in (self._out, self._err):
            f.seek(0)
            texts.append(f.read().decode("utf-8", errors="replace"))
            f.close()
        self.stdout, self.stderr = texts

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status, once it has ended; TimeoutError if it still runs after `timeout` seconds."""
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"`{' '.join(self.argv)}` in `{self.endpoint}` still runs after {timeout} s") from None
        return self.returncode

    def stop(self, grace: float = STOP_GRACE_S) -> int:
        """Stop it (SIGTERM to it and all it started, then SIGKILL after `grace`); its exit status."""
        if self._popen.returncode is None:
            try:
                self._popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            if not self._reaped(grace):
                try:
                    self._popen.kill()
                except ProcessLookupError:
                    pass
                if not self._reaped(5.0):
                    self._force_reap()
        return self.returncode

    def _reaped(self, timeout: float) -> bool:
        try:
            self._popen.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _force_reap(self) -> None:
        """Reap it without Popen's lock: a KeyboardInterrupt that lands inside Popen.wait can leave
        that lock held, and a blocking wait() then never returns (a batch worker hung so)."""
        try:
            _, status = os.waitpid(self._popen.pid, 0)
            self._popen.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped elsewhere: its status is lost
            self._popen.returncode = -signal.SIGKILL

    def result(self) -> ExecResult:
        """The ExecResult of a command that has ended."""
        rc = self.returncode
        if rc is None:
            raise RunError(f"`{' '.join(self.argv)}` in `{self.endpoint}` is still running")
        return ExecResult(self.argv, self.endpoint, rc, self.stdout, self.stderr, self.ended - self.started,
                          self.timed_out)

    def __repr__(self) -> str:
        state = "running" if self._popen.poll() is None else f"exited {self.returncode}"
        return f"<Process {self.pid} in {self.endpoint}: {' '.join(self.argv)!r}, {state}>"


class PacketLog:
    """A packet log read back: its header, its records (rattan.runtime.packet_log.Record), and
    which cell each record's node is."""

    def __init__(self, path: str) -> None:
        from .runtime import packet_log as plog
        self.path = path
        try:
            self.header, records = plog.read(path)
            self.records = list(records)
        except plog.LogError as e:
            raise RunError(str(e)) from None
        self.cells: dict[int, str] = {int(n): meta["name"] for n, meta in self.header["nodes"].items()}

    def of(self, cell: str) -> list:
        """The records of one cell."""
        nodes = {n for n, name in self.cells.items() if name == cell}
        if not nodes:
            raise RunError(f"no cell `{cell}` in the packet log; cells: {', '.join(sorted(set(self.cells.values())))}")
        return [r for r in self.records if r.node in nodes]

    def summary(self) -> list[dict]:
        """`rattan log --json`: per cell, arrivals, departures, drops by reason, time in the cell."""
        from .runtime.packet_log import summary
        return summary(self.path)

    def __len__(self) -> int:
        return len(self.records)


def _endpoint_side(net, name: str) -> str:
    """Which side's environment a command of endpoint `name` gets (see ChannelNetwork.environment):
    upstream's layout by side; a .rtn channel's first endpoint is `left`, the others `right`."""
    if hasattr(net, "side_of"):
        return net.side_of(name)[0]
    return "left" if name == net.endpoint_names[0] else "right"


def _run_failure(e: BaseException) -> RunError:
    """A failure to start a run as RunError, worded as `rattan run` says it."""
    from .control import AddressError
    from .engine import EngineError
    from .runtime.channel import ChannelError
    from .runtime.netns import NetnsError
    from .runtime.packet_log import LogError
    if isinstance(e, RunError):
        return e
    if isinstance(e, (ChannelError, AddressError, LogError)):
        return RunError(str(e))
    if isinstance(e, (EngineError, NetnsError)):
        return RunError(f"cannot run: {e}")
    raise e


class Run:
    """A real run: channel instances between network namespaces, forwarded by the engine in real
    time, with a control API in-process (and on `http`, when given). A context manager: on exit,
    whatever happened, every command it started is stopped by PID, the engine stopped and every
    namespace and veth it made removed. `rattan run` is a user of it."""

    def __init__(self, plan: dict, channels: list[dict], seed: int = 1, late_threshold: str | None = "1ms",
                 packet_log: str | None = None, log_cells: list[str] | None = None, packet_log_snaplen: int = 0,
                 http: str | None = None, quiet: bool = True, networks: list | None = None,
                 engine_nice: int | None = None, app_cpus: str | None = None, rps_cpus: str | None = None,
                 precise: bool = False, cores: int | None = None, merge: bool = True, split: bool = False,
                 split_ring: int = 0) -> None:
        """`app_cpus`, `rps_cpus`: `rattan run --app-cpus` and `--rps-cpus` (None: their defaults);
        `cores`: engine threads (None: one per instance, up to the usable cores but one); `merge`: GSO
        mode's merging at egress; `split`, `split_ring`: `rattan run --split` (a channel's regions on
        several threads, hand-off rings of `split_ring` entries; 0: the default)."""
        from .runtime import cpus
        from .runtime.run import ENGINE_NICE, LiveRun, _threshold
        try:
            threshold_ns = _threshold(late_threshold) if late_threshold is not None else None
        except SimError as e:  # the time did not parse
            raise RunError(str(e)) from None
        self.plan, self.http, self.quiet, self.threshold_ns = plan, http, quiet, threshold_ns
        self.packet_log = packet_log
        self.live = LiveRun(plan, channels, seed, threshold_ns, packet_log, log_cells,
                            ENGINE_NICE if engine_nice is None else engine_nice, packet_log_snaplen,
                            networks=networks, app_cpus=app_cpus or cpus.APP_CPUS_DEFAULT,
                            rps_cpus=rps_cpus or cpus.RPS_CPUS_DEFAULT, precise=precise, cores=cores, merge=merge,
                            split=split, split_ring=split_ring)
        self.api = None
        self.server = None
        self._processes: list[Process] = []
        self._open = False

    # -- lifetime
    def start(self) -> "Run":
        """Build the namespaces, start the engine (and the control API's server); RunError if it
        cannot, with nothing left behind."""
        from .control import ControlAPI, ControlServer
        from .registry import default_registry
        try:
            self.live.start()
            self._open = True
            self.api = ControlAPI(self.live.engine, self.live.instances, default_registry(), "real",
                                  lateness=self.live.lateness)
            if self.http:
                try:
                    self.server = ControlServer(self.api, self.http)
                except OSError as e:  # a Unix socket's folder missing, not writable
                    raise RunError(f"--http {self.http}: cannot listen there: {e.strerror or e}") from None
                for inst in self.live.instances:  # for `rattan ctl` in the commands
                    inst.extra_env["RATTAN_CONTROL"] = self.server.url
                if not self.quiet:
                    sys.stderr.write(f"rattan: control API on {self.server.url} (described at /openapi.json)\n")
            if self.live.precise and not self.quiet:
                t = self.live.timing()
                if t is not None:
                    sys.stderr.write(f"rattan: precise timing: the engine spins the last {t['stretch_ns'] / 1000:.0f} us "
                                     f"before each departure (the p99 of this machine's timer wake-ups; median "
                                     f"{t['calib_p50_ns'] / 1000:.0f} us)\n")
        except BaseException as e:
            self.close()
            if isinstance(e, Exception):
                raise _run_failure(e) from (None if isinstance(e, RunError) else e)
            raise
        return self

    def stop(self) -> None:
        """Stop forwarding: counters and the packet log are final (telemetry still answers). Idempotent."""
        self.live.stop()

    def close(self) -> None:
        """Stop every command started, the engine and the API; remove the namespaces. Idempotent."""
        try:
            for p in self._processes:
                p.stop()
        finally:
            try:
                if self._open:
                    self.live.stop()
                    if not self.quiet and self.threshold_ns is not None and self.live.engine is not None:
                        from .runtime.view import warn_if_late
                        warn_if_late(self.live.lateness(), self.threshold_ns)
            finally:
                if self.server is not None:
                    self.server.close()
                    self.server = None
                self.live.close()
                self._open = False

    def __enter__(self) -> "Run":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what it is
    def _instance(self, instance: int):
        try:
            return self.live.instances[instance]
        except IndexError:
            raise RunError(f"no instance {instance}: this run has {len(self.live.instances)}") from None

    @property
    def instances(self) -> int:
        return len(self.live.instances)

    @property
    def channel(self) -> str:
        return self.live.instances[0].channel["name"]

    def endpoints_of(self, instance: int = 0) -> dict[str, Endpoint]:
        """The endpoints of one instance, in the channel's order."""
        inst = self._instance(instance)
        if not inst.net.endpoints:
            raise RunError("the run has not started: use `with rattan.run(...) as run:`")
        return {n: Endpoint(n, ep.address, ep.netns, ep.netns_path, ep.ifname, ep.mac)
                for n, ep in inst.net.endpoints.items()}

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return self.endpoints_of(0)

    def endpoint(self, name: str, instance: int = 0) -> Endpoint:
        eps = self.endpoints_of(instance)
        if name not in eps:
            from .diagnostics import did_you_mean
            sugg = did_you_mean(name, eps)
            raise RunError(f"no endpoint `{name}` in channel `{self._instance(instance).channel['name']}`"
                           + (f" (did you mean `{sugg}`?)" if sugg else "") + f"; endpoints: {', '.join(eps)}")
        return eps[name]

    def address(self, name: str, instance: int = 0) -> str:
        return self.endpoint(name, instance).address

    def environment(self, name: str, instance: int = 0) -> dict[str, str]:
        """What a command of endpoint `name` gets: this process's environment, every endpoint's
        RATTAN_<ENDPOINT>_IP and _NETNS, RATTAN_CHANNEL, RATTAN_INSTANCE (and RATTAN_CONTROL with http)."""
        self.endpoint(name, instance)
        inst = self._instance(instance)
        return inst.environment(_endpoint_side(inst.net, name))

    @property
    def cells(self) -> list[str]:
        """The names of the channel's cells (those the control API reaches)."""
        return [c["name"] for c in self._api().cells() if c["channel"] == self.channel]

    # -- commands
    def spawn(self, endpoint: str, command: str | Sequence[str], env: Mapping[str, str] | None = None,
              cwd=None, input: str | bytes | None = None, instance: int = 0, linger: bool = False) -> Process:
        """Start a command in an endpoint's namespace, in the background: a string through /bin/sh -c,
        a list as argv. `env` is added to the endpoint's environment; `linger`: what the command
        leaves running is kept until the run ends (a daemon)."""
        ep = self.endpoint(endpoint, instance)
        if not self._open:
            raise RunError("the run is not running")
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else [str(a) for a in command]
        if not argv:
            raise RunError("an empty command")
        full = {**self.environment(endpoint, instance), **(env or {})}
        p = Process(argv, endpoint, ep.netns_path, full, cwd=cwd, input=input, linger=linger,
                    cpus=self._instance(instance).app_cpus)
        self._processes.append(p)
        return p

    def exec(self, endpoint: str, command: str | Sequence[str], timeout: float | None = None,
             env: Mapping[str, str] | None = None, cwd=None, input: str | bytes | None = None,
             instance: int = 0) -> ExecResult:
        """Run a command in an endpoint's namespace to its end (stopped after `timeout` seconds,
        then `timed_out`); its status and output."""
        p = self.spawn(endpoint, command, env=env, cwd=cwd, input=input, instance=instance)
        try:
            p.wait(timeout)
        except TimeoutError:
            p.timed_out = True
            p.stop()
        except BaseException:
            p.stop()
            raise
        return p.result()

    def wait_listening(self, process: Process, timeout: float = 10.0, port: int | None = None) -> bool:
        """Wait until a spawned command listens on a TCP socket (or has a UDP socket bound) in its
        namespace, `port` if given: True; False if it still does not after `timeout` seconds.
        RunError if it ends first."""
        from .runtime.run import _listening
        deadline = time.monotonic() + timeout
        while True:
            if process.returncode is not None:
                tail = (process.stderr or "").strip()[-2000:]
                raise RunError(f"`{' '.join(process.argv)}` in `{process.endpoint}` ended (status "
                               f"{process.returncode}) before it listened" + (f":\n{tail}" if tail else ""))
            if _listening(process.pid, process.netns_path, port):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    @property
    def processes(self) -> list[Process]:
        """Every command started, in order."""
        return list(self._processes)

    # -- the cells, live
    def _api(self):
        if self.api is None:
            raise RunError("the run has not started: use `with rattan.run(...) as run:`")
        return self.api

    def _ask(self, method: str, cell: str, suffix: str = "", body: dict | None = None, instance: int = 0) -> dict:
        inst = self._instance(instance)
        url = (f"/channels/{quote(inst.channel['name'], safe='')}/cells/{quote(cell, safe='')}{suffix}"
               f"?instance={inst.number if len(self.live.instances) == 1 else self._number_in_channel(inst)}")
        r = self._api().handle(method, url, None if body is None else json.dumps(body).encode())
        if r.status != 200:
            details = "; ".join(f"{e['field']}: {e['message']}" for e in r.body.get("errors", []))
            raise RunError(f"{cell}: {r.body.get('error')}" + (f" ({details})" if details else ""))
        return r.body

    def _number_in_channel(self, inst) -> int:
        """The API's `instance` of a run instance: its position among its channel's instances."""
        same = [i for i in self.live.instances if i.channel["name"] == inst.channel["name"]]
        return same.index(inst)

    def get(self, cell: str, instance: int = 0) -> dict:
        """The cell's parameters now (the control API's GET document: config, runtime values)."""
        return self._ask("GET", cell, instance=instance)

    def set(self, cell: str, values: Mapping[str, Any] | None = None, /, at: str | int | None = None,
            instance: int = 0, **params) -> dict:
        """Change runtime parameters of a cell, all at once: `run.set("up", rate="5Mbps")` or
        `run.set("up", {"rate": 5_000_000})`; `at`: a logical time ("12s", ns). RunError naming
        each bad value, and nothing changed, if any is wrong."""
        body = {**(values or {}), **params}
        if at is not None:
            body["at"] = at
        return self._ask("PATCH", cell, body=body, instance=instance)

    def telemetry(self, cell: str, instance: int = 0) -> dict:
        """The cell's counters now (the control API's telemetry document)."""
        return self._ask("GET", cell, "/telemetry", instance=instance)

    def state(self) -> dict:
        """The control API's state document: time, changes applied, frames sent and how late."""
        return self._api().state()

    # -- the packet log
    def read_packet_log(self) -> PacketLog:
        """The packet log, once forwarding has stopped (after `stop()` or the `with` block)."""
        if not self.packet_log:
            raise RunError("this run has no packet log: give packet_log=PATH")
        if self.live.engine is not None and self.live.engine.running:
            raise RunError("the packet log is complete once forwarding stops: call run.stop() first")
        return PacketLog(self.packet_log)

    def __repr__(self) -> str:
        return f"<Run {self.channel}, {'open' if self._open else 'closed'}>"


def run(source, channel: str | None = None, seed: int = 1, packet_log: str | None = None,
        log_cells: list[str] | None = None, http: str | None = None, quiet: bool = True,
        network=None, instances: int = 1, late_threshold: str = "1ms", packet_log_snaplen: int = 0,
        engine_nice: int | None = None, app_cpus: str | None = None, rps_cpus: str | None = None,
        precise: bool = False, cores: int | None = None, merge: bool = True, split: bool = False,
        split_ring: int = 0) -> Run:
    """A real run of one channel of a plan (a CompileResult, a plan dict or a file), to use as
    `with rattan.run(...) as run:` (root). `network`: an already open network for the channel
    (rattan.runtime.warm's pool), used and not closed at the end. `quiet=False` says where the
    control API listens and warns when frames left late, as `rattan run` does. `app_cpus`, `rps_cpus`:
    as `rattan run --app-cpus`, `--rps-cpus` (auto, inherit / off, or a CPU list like "1" or "0-2").
    `precise`: the engine spins the last stretch before each departure, trading CPU for lateness
    (docs/running.md, "Timing"). `cores`: engine threads (default: one per instance, up to the usable
    cores but one). `merge=False`: in GSO mode, segments leave as separate frames instead of merged into
    super-frames at egress (docs/running.md, "GSO and plain mode"). `split=True`: with more than one
    engine thread, the channel's regions (its cuts, at its `delay` cells) run on different threads,
    handing packets off through rings of `split_ring` entries (docs/running.md, "Splitting a channel
    over threads (`--split`)")."""
    from .runtime.channel import ChannelError, choose_channel
    plan = _plan_of(source)
    try:
        chosen = choose_channel(plan, channel)
    except ChannelError as e:
        raise RunError(str(e)) from None
    if instances < 1:
        raise RunError(f"instances must be at least 1, not {instances}")
    if network is not None and instances != 1:
        raise RunError("a given network serves one instance: give instances=1 with network=")
    if network is not None and list(network.endpoint_names) != list(chosen["endpoints"]):
        raise RunError(f"the network given has endpoints {', '.join(network.endpoint_names)}; channel "
                       f"`{chosen['name']}` has {', '.join(chosen['endpoints'])}")
    if http:
        from .control import AddressError, parse_address
        try:
            parse_address(http)
        except AddressError as e:
            raise RunError(str(e)) from None
    return Run(plan, [chosen] * instances, seed, late_threshold, packet_log, log_cells, packet_log_snaplen,
               http, quiet, None if network is None else [network], engine_nice, app_cpus, rps_cpus, precise, cores,
               merge, split, split_ring)

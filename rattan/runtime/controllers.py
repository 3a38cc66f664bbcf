"""Python cells at run time: each plan controller's model, its ticks and the changes of its own
parameters, in virtual time (`rattan sim` calls `advance` at each exact time) or in real time
(`RealTimeDriver`, a thread that wakes at each tick by the monotonic clock).

A model never sees a packet: at a tick it reads its inner cells' counters and sets their runtime
parameters, which the engine applies at the tick's logical time (in real time through the engine
thread's inbox). At one logical time, changes of the cell's own parameters (timeline, control API)
reach its `set` first, then its `tick` runs.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..pycell import Cells, InnerCell, PythonCell, PythonCellError, import_class
from .channel import timeline_steps


class ControllerError(RuntimeError):
    """A Python cell failed (import, `start`, `tick` or `set`); the message names it and says where."""


def failure(label: str, what: str, e: BaseException) -> str:
    """`Python cell `X` (pkg.mod:Cls): tick at 1.000 s raised ValueError: ... (model.py:12 in tick)`."""
    frames = traceback.extract_tb(e.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"Python cell {label}: {what} raised {type(e).__name__}: {e}{where}"


@dataclass
class Controller:
    """One Python cell instance at run time: its model, tick period and inner cells."""
    name: str
    label: str   # `cell (package.module:Class)`, with the instance for runs of several
    cls: str
    model: PythonCell
    period: int
    cells: Cells
    values: dict[str, Any]  # its own parameters in force (plan form), as the control API shows them
    next_tick: int = 0
    ticks: int = 0
    skipped: int = 0  # real time: ticks missed because the previous ones ran late
    failed: str | None = None
    requests: list = field(default_factory=list)  # (at_ns, param, value) from the control API
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.next_tick = self.period

    def request(self, changes: dict[str, Any], at_ns: int | None) -> None:
        """A change of its own parameters from another thread; it reaches `set` before the first tick
        at or after `at_ns` (the next tick without it)."""
        with self.lock:
            self.requests.extend((at_ns or 0, k, v) for k, v in changes.items())

    def apply(self, param: str, value: Any, now_ns: int) -> None:
        self.values[param] = value
        self.cells._at(now_ns)
        self.model.set(param, value)

    def tick(self, now_ns: int) -> None:
        self.cells._at(now_ns)
        self.ticks += 1
        self.model.tick(now_ns, self.cells)


def load(engine, channel: dict, nodes: dict[str, int], seed: int, registry=None,
         instance: str | None = None) -> list[Controller]:
    """The models of a channel's Python cells, imported and started (ControllerError otherwise)."""
    if registry is None:
        from ..registry import default_registry
        registry = default_registry()
    out = []
    for spec in channel.get("controllers", ()):
        label = f"`{spec['cell']}`" + (f" of {instance}" if instance else "") + f" ({spec['class']})"
        try:
            cls = import_class(spec["class"], f"Python cell `{spec['cell']}`")
        except PythonCellError as e:
            raise ControllerError(str(e)) from None
        types = {c["name"]: c["type"] for c in channel["cells"]}
        cells = Cells({inner: InnerCell(engine, nodes[plan_name], plan_name, types[plan_name],
                                        getattr(registry.get(types[plan_name]), "schema", None))
                       for inner, plan_name in spec["cells"].items()})
        try:
            model = cls()
            model.config = dict(spec["config"])
            model.start(dict(spec["config"]), seed)
        except Exception as e:
            raise ControllerError(failure(label, "start", e)) from None
        out.append(Controller(spec["cell"], label, spec["class"], model, spec["tick_ns"], cells,
                              dict(spec["config"])))
    return out


def own_timeline(channel: dict, controllers: list[Controller], horizon_ns: int) -> list[tuple]:
    """(time, controller, param, value) of every timeline change of a Python cell's own parameters up
    to `horizon_ns`, in order; an `every` window ends by restoring the value in force before it."""
    by_name = {c.name: c for c in controllers}
    live = {(c.name, k): v for c in controllers for k, v in c.values.items()}
    saved: dict[tuple, list] = {}
    out = []
    for t, _, action, cell, param, value in timeline_steps(channel, horizon_ns):
        if cell not in by_name:
            continue
        key = (cell, param)
        if action == "open":
            saved.setdefault(key, []).append(live.get(key))
        elif action == "close":
            value = saved[key].pop()
        live[key] = value
        out.append((t, by_name[cell], param, value))
    return out


class Schedule:
    """Every Python cell of a run, and the times at which something happens to one: a tick, or a
    timeline change of its own parameters."""

    def __init__(self, controllers: list[Controller], events: list[tuple] = ()) -> None:
        self.controllers = controllers
        self.events = sorted(events, key=lambda e: e[0])  # stable: timeline order within a time
        self._next_event = 0

    def __bool__(self) -> bool:
        return bool(self.controllers)

    def live(self) -> list[Controller]:
        return [c for c in self.controllers if c.failed is None]

    def next_time(self) -> int | None:
        """The earliest logical time at which a tick or an own-parameter change is due."""
        times = [c.next_tick for c in self.live()]
        if self._next_event < len(self.events):
            times.append(self.events[self._next_event][0])
        return min(times) if times else None

    def advance(self, t: int, late_ns: int | None = None, on_failure=None) -> None:
        """Everything due at logical time `t`: own-parameter changes (timeline, then control API
        requests), then ticks. `late_ns` (real time): the clock already reads this logical time, so
        ticks more than a period behind it are skipped. A failure raises ControllerError, or, with
        `on_failure`, is handed to it and that controller stops."""
        while self._next_event < len(self.events) and self.events[self._next_event][0] <= t:
            at, c, param, value = self.events[self._next_event]
            self._next_event += 1
            if c.failed is None:
                self._guard(c, lambda: c.apply(param, value, at), f"set `{param}` at {at / 1e9:.3f} s", on_failure)
        for c in self.live():
            if c.requests:
                with c.lock:
                    due = [r for r in c.requests if r[0] <= t]
                    c.requests = [r for r in c.requests if r[0] > t]
                for _, param, value in due:
                    self._guard(c, lambda: c.apply(param, value, t), f"set `{param}`", on_failure)
        for c in self.live():
            if c.next_tick > t:
                continue
            tick_at = c.next_tick
            if late_ns is not None and late_ns - tick_at >= c.period:
                missed = (late_ns - tick_at) // c.period
                c.skipped += missed
                tick_at += missed * c.period
            c.next_tick = tick_at + c.period
            self._guard(c, lambda: c.tick(tick_at), f"tick at {tick_at / 1e9:.3f} s", on_failure)

    @staticmethod
    def _guard(c: Controller, call, what: str, on_failure) -> None:
        try:
            call()
        except Exception as e:
            c.failed = failure(c.label, what, e)
            if on_failure is None:
                raise ControllerError(c.failed) from None
            on_failure(c)


class RealTimeDriver:
    """A thread that runs a Schedule against the engine's real clock: it wakes at each due logical
    time (the monotonic clock, from the engine's start), and the changes a tick makes reach the
    engine thread's inbox with that logical time. A failing Python cell is reported once on `err`
    and the run goes on without it."""

    def __init__(self, engine, schedule: Schedule, err: TextIO | None = None) -> None:
        self.engine, self.schedule, self.err = engine, schedule, err or sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "RealTimeDriver":
        """Start ticking; the engine runs in real time already (its logical time is its clock's)."""
        self.origin = time.monotonic() - self.engine.now / 1e9
        self._thread = threading.Thread(target=self._loop, name="rattan-python-cells", daemon=True)
        self._thread.start()
        return self

    # The longest sleep between two looks at the stop flag. A plain sleep, not Event.wait: each wake
    # of the latter costs twice the CPU (80 against 40 us here), and at a 10 ms tick that is the cost.
    STOP_LATENCY_S = 0.1

    def _loop(self) -> None:
        while not self._stop.is_set():
            t = self.schedule.next_time()
            if t is None:  # every model has failed: only control API requests could still come
                time.sleep(self.STOP_LATENCY_S)
                continue
            delay = self.origin + t / 1e9 - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, self.STOP_LATENCY_S))
                if delay > self.STOP_LATENCY_S:
                    continue  # not due yet: look at the stop flag, and sleep again
            if self._stop.is_set():
                return
            late = int((time.monotonic() - self.origin) * 1e9)
            self.schedule.advance(t, late_ns=late, on_failure=self._report)

    def _report(self, c: Controller) -> None:
        self.err.write(f"rattan: {c.failed}; the run goes on without it\n")
        self.err.flush()

    def stop(self) -> None:
        """Stop ticking and wait for a tick under way to end. Idempotent."""
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        skipped = sum(c.skipped for c in self.schedule.controllers)
        if skipped:
            self.err.write(f"rattan: warning: {skipped} ticks of Python cells were skipped: the previous "
                           "ones ran later than a tick period\n")

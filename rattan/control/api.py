"""The control API, without HTTP: read any cell, change what its schema marks runtime-changeable,
read its telemetry and the run's state. Every route and every request body comes from the cells'
schemas (`x-runtime`, `x-unit`, `minimum`, `maximum`, `enum`); nothing here is written per cell.

A request is answered as (status, JSON document). A bad request gets a 4xx whose `errors` name the
field, and changes nothing: all values of a change are checked before any is handed to the engine,
and then all apply at the same logical instant (`Engine.set_many`).
"""
from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..units import NUMBER, RATE, SIZE, TIME, UNITS, QuantityError, parse_quantity, split_quantity

# x-unit -> (dimension a string may carry, factor from base units to the plan's integers)
_UNIT_SCALE = {"rate": (RATE, Fraction(1)), "time": (TIME, Fraction(10**9)), "size": (SIZE, Fraction(1, 8)),
               "probability": (NUMBER, Fraction(1))}
_BASE_UNIT = {"rate": "bit/s", "time": "ns", "size": "bytes"}
_UNIT_EXAMPLE = {"rate": "10Mbps", "time": "20ms", "size": "64KiB", "probability": "1%"}


def quantity_pattern(unit: str) -> str:
    """The strings a parameter with this x-unit takes: a number and one of its dimension's units."""
    dim = _UNIT_SCALE[unit][0]
    suffixes = "|".join(sorted((u for u, (d, _) in UNITS.items() if d == dim), key=len, reverse=True))
    return rf"^\s*[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?\s*({suffixes})\s*$"


@dataclass
class Target:
    """A channel instance the API reaches: its channel, label, number and nodes in the engine.
    `rattan sim` makes one; a `rattan run` Instance has the same fields. `controllers`: its Python
    cells at run time by name (rattan.runtime.controllers), whose own parameters the API reaches."""
    channel: dict
    label: str
    number: int
    nodes: dict[str, int]
    controllers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: dict | None = None

    def json(self) -> bytes:
        return json.dumps(self.body, indent=1).encode() + b"\n"


def _error(status: int, message: str, errors: list[dict] | None = None) -> Response:
    return Response(status, {"error": message, "errors": errors or []})


def _not_allowed(method: str, allowed: tuple[str, ...]) -> Response:
    r = _error(405, f"{method} is not allowed here; allowed: {', '.join(allowed)}")
    return Response(r.status, r.body, {"Allow": ", ".join(allowed)})


class ControlAPI:
    """The API of one run: its instances in one engine, the registry that describes their cells."""

    def __init__(self, engine, targets: list[Target], registry, clock: str, title: str = "rattan run",
                 lateness=None) -> None:
        """`lateness`: for real runs, a callable giving the engine's Lateness of sent frames."""
        self.engine, self.targets, self.registry, self.clock, self.title = engine, targets, registry, clock, title
        self.lateness = lateness
        self.lock = threading.Lock()  # one change at a time: checked, then handed over as one
        self.changes = 0
        self._cells: dict[tuple[str, str], dict] = {}
        self._instances: dict[str, list[Target]] = {}
        for t in targets:
            self._instances.setdefault(t.channel["name"], []).append(t)
            for cell in t.channel["cells"]:
                self._cells.setdefault((t.channel["name"], cell["name"]), cell)
            for k in t.channel.get("controllers", ()):  # a Python cell: no node, its model takes changes
                self._cells.setdefault((t.channel["name"], k["cell"]),
                                       {"name": k["cell"], "type": k["type"], "config": k["config"], "python": k})

    # -- routing
    def handle(self, method: str, url: str, body: bytes | None = None) -> Response:
        parts = urlsplit(url)
        path = unquote(parts.path).rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            static = {"/openapi.json": self.openapi, "/state": self.state, "/cells": self.cells}
            if path in static:
                if method != "GET":
                    return _not_allowed(method, ("GET",))
                return Response(200, static[path]())
            if path == "/notify" or path.startswith("/config/"):  # upstream Rattan's routes
                from . import upstream
                if path == "/notify":
                    return upstream.notify(self, method, body)
                return upstream.config_cell(self, path[len("/config/"):], query, method, body)
            m = re.fullmatch(r"/channels/([^/]+)/cells/([^/]+)(/telemetry)?", path)
            if not m:
                return _error(404, f"no such resource `{path}`; the routes are in /openapi.json")
            channel, cell, telemetry = m.groups()
            allowed = ("GET",) if telemetry or not self._runtime_props(
                self._cells.get((channel, cell), {}).get("type", "")) else ("GET", "PATCH")
            if method not in allowed and (channel, cell) in self._cells:
                return _not_allowed(method, allowed)
            target, problem = self._target(channel, cell, query)
            if problem:
                return problem
            if telemetry:
                return Response(200, self.telemetry(target, cell))
            if method == "GET":
                return Response(200, self.cell(target, cell))
            return self.change(target, cell, body)
        except Exception as e:  # a bug must not take the run down; say what happened
            return _error(500, f"internal error: {type(e).__name__}: {e}")

    def _target(self, channel: str, cell: str, query: dict) -> tuple[Target | None, Response | None]:
        instances = self._instances.get(channel)
        if instances is None:
            return None, _error(404, f"no channel `{channel}`; channels: {', '.join(self._instances)}")
        if (channel, cell) not in self._cells:
            names = [c for ch, c in self._cells if ch == channel]
            return None, _error(404, f"no cell `{cell}` in channel `{channel}`; cells: {', '.join(names)}")
        raw = query.get("instance", ["0"])
        if len(raw) != 1 or not re.fullmatch(r"[0-9]{1,9}", raw[0]) or int(raw[0]) >= len(instances):
            return None, _error(422, f"`instance` must be an integer from 0 to {len(instances) - 1}",
                                [{"field": "instance", "message": f"got {raw!r}"}])
        return instances[int(raw[0])], None

    # -- reading
    def state(self) -> dict:
        running = self.engine.running
        doc = {"title": self.title, "clock": self.clock, "time_ns": self.engine.now,
               # upstream's GET /state answers {"state": RattanState}: Running while the engine runs
               "state": "Running" if running else "Exited",
               "running": running, "changes_applied": self.changes,
               "instances": [{"channel": t.channel["name"], "label": t.label, "number": t.number,
                              "cells": [c["name"] for c in t.channel["cells"]]} for t in self.targets]}
        if self.lateness is not None:
            late = self.lateness()
            doc["frames"] = {"sent": late.sent, "late": late.late, "late_max_ns": late.max_ns,
                             "late_p99_us": late.quantile_us(0.99), "tx_calls": late.tx_calls}
            timing = self.engine.timing()
            if timing is not None:  # how the loop sleeps and wakes (docs/running.md, "Timing")
                doc["timing"] = timing
            # GSO mode per endpoint: super-frames received and cut, and merged at egress
            doc["gso"] = [{"label": t.label, "endpoint": ep, **self.engine.gso_stats(t.nodes[ep])}
                          for t in self.targets for ep in t.channel["endpoints"]]
        doc["threads"] = [{"cpu": t.cpu, "shards": t.shards, "nodes": t.nodes, "busy_ns": t.busy_ns,
                           "wall_ns": t.wall_ns, "load": round(t.load, 4), "events": t.events,
                           "packets": t.packets, "regions": t.regions, "rebalances": t.rebalances}
                          for t in self.engine.thread_stats()]
        split = self.engine.split_stats()
        if split.real:  # a real run split over threads (--split): hand-offs, and those lost to a full ring
            doc["split"] = {"cuts": split.cuts, "handoffs": split.handoffs, "ring_full": split.ring_full}
        return doc

    def cells(self) -> list[dict]:
        out = []
        for (channel, name), cell in self._cells.items():
            out.append({"channel": channel, "name": name, "type": cell["type"],
                        "instances": len(self._instances[channel]),
                        "runtime": list(self._runtime_props(cell["type"]))})
        return out

    def cell(self, target: Target, name: str) -> dict:
        cell = self._cells[(target.channel["name"], name)]
        values = {}
        if "python" in cell:
            model = target.controllers[name]
            values = {p: model.values.get(p) for p in self._runtime_props(cell["type"])}
        for p in () if "python" in cell else self._runtime_props(cell["type"]):
            v = self.engine.get(target.nodes[name], p)
            values[p] = self._from_engine(cell["type"], p, v)
        return {"channel": target.channel["name"], "instance": target.number, "name": name, "type": cell["type"],
                "config": {**cell["config"], **values}, "runtime": values}

    def telemetry(self, target: Target, name: str) -> dict:
        cell = self._cells[(target.channel["name"], name)]
        if "python" in cell:  # a model has no packets: its ticks, and the cells that have counters
            model = target.controllers[name]
            return {"time_ns": self.engine.now, "class": model.cls, "tick_ns": model.period, "ticks": model.ticks,
                    "skipped_ticks": model.skipped, "failed": model.failed,
                    "cells": {n: h.name for n, h in model.cells.items()}}
        c = self.engine.counters(target.nodes[name])
        return {"time_ns": self.engine.now, "in_packets": c.in_packets, "in_bytes": c.in_bytes,
                "out_packets": c.out_packets, "out_bytes": c.out_bytes,
                "queued_packets": c.queued_packets, "queued_bytes": c.queued_bytes,
                "dropped_packets": c.dropped_packets, "dropped_bytes": c.dropped_bytes,
                "dropped_by_reason": c.dropped_by_reason,
                "created_packets": c.created_packets, "modified_packets": c.modified_packets,
                # logical times of the cell's first and last frame out; null until it sends one
                "first_out_ns": c.first_out_ns, "last_out_ns": c.last_out_ns}

    # -- changing
    def change(self, target: Target, name: str, body: bytes | None) -> Response:
        cell = self._cells[(target.channel["name"], name)]
        try:
            doc = json.loads(body or b"")
        except (ValueError, UnicodeDecodeError) as e:
            return _error(400, f"the body is not JSON: {e}")
        if not isinstance(doc, dict) or not doc:
            return _error(422, "the body must be a JSON object of parameters to change, e.g. "
                               f'{{"{next(iter(self._runtime_props(cell["type"])), "rate")}": ...}}')
        at_ns, errors = None, []
        if "at" in doc:
            at_ns, err = self._at(doc["at"])
            if err:
                errors.append({"field": "at", "message": err})
        return self.apply(target, name, {k: v for k, v in doc.items() if k != "at"}, at_ns, errors)

    def apply(self, target: Target, name: str, values: dict, at_ns: int | None = None,
              errors: list[dict] | None = None) -> Response:
        """Check every value of `values` (runtime parameters of the cell, as a change body gives them)
        and hand them to the engine together at `at_ns` (or now); 422 naming each bad field, and no
        change, if any is wrong. `errors`: problems found before, which also refuse the change."""
        cell = self._cells[(target.channel["name"], name)]
        props = self._runtime_props(cell["type"])
        errors, changes = list(errors or []), []
        for key, value in values.items():
            if key not in props:
                every = self.registry.get(cell["type"]).properties
                why = ("cannot change while running" if key in every else f"is not a parameter of `{cell['type']}`")
                errors.append({"field": key, "message": f"`{key}` {why}; runtime parameters: "
                                                        f"{', '.join(props) or 'none'}"})
                continue
            plan_value, err = self._to_plan(props[key], value)
            if err:
                errors.append({"field": key, "message": err})
                continue
            changes.append((target.nodes.get(name), key, plan_value))
        if errors:
            return _error(422, "nothing was changed", errors)
        if not changes:
            return _error(422, "nothing to change: give at least one runtime parameter besides `at`")
        with self.lock:
            now = self.engine.now
            if at_ns is not None and at_ns < now:
                return _error(422, "nothing was changed", [{"field": "at", "message":
                              f"{at_ns} ns is in the past: the run is at {now} ns"}])
            from ..engine import EngineError
            try:
                if "python" in cell:  # its model's `set`, before its first tick at or after `at`
                    target.controllers[name].request({k: v for _, k, v in changes}, at_ns)
                else:
                    self.engine.set_many([(n, k, self._to_engine(props[k], v)) for n, k, v in changes], at_ns=at_ns)
            except EngineError as e:
                return _error(422, "nothing was changed", [{"field": changes[0][1], "message": str(e)}])
            self.changes += 1
        return Response(200, {"applied_at_ns": at_ns if at_ns is not None else now, "changed": dict(values)})

    def _runtime_props(self, cell_type: str) -> dict[str, dict]:
        ct = self.registry.get(cell_type)
        return {k: v for k, v in ct.properties.items() if v.get("x-runtime")} if ct else {}

    @staticmethod
    def _at(value) -> tuple[int | None, str | None]:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return None, "`at` is a logical time: nanoseconds (an integer) or a time like \"12s\""
        if isinstance(value, int):
            return (value, None) if 0 <= value < 2**63 else (None, "`at` must be between 0 and 2^63 ns")
        ns, err = _quantity(value, TIME, Fraction(10**9))
        if err:
            return None, err
        return (ns, None) if ns < 2**63 else (None, "`at` is too far in the future")

    @staticmethod
    def _to_plan(prop: dict, value) -> tuple[Any, str | None]:
        """A request value as the plan writes it (integers in ns, bit/s, bytes; fractions; symbols)."""
        if "enum" in prop:
            if value in prop["enum"]:
                return value, None
            return None, f"must be one of {', '.join(map(json.dumps, prop['enum']))}, not {json.dumps(value)}"
        unit = prop.get("x-unit")
        if isinstance(value, bool):
            return None, f"must be a number or a quantity like \"{_UNIT_EXAMPLE.get(unit, '1')}\", not a boolean"
        converted = False
        if isinstance(value, str) and unit in _UNIT_SCALE:
            dim, scale = _UNIT_SCALE[unit]
            x, err = _quantity(value, dim, scale, exact=False)
            if err:
                return None, err
            value, converted = x, True
        if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            return None, f"must be a number or a quantity like \"{_UNIT_EXAMPLE.get(unit, '1')}\""
        if prop.get("type") == "integer":
            if isinstance(value, float) and not value.is_integer():
                if not converted:  # a quantity may round (1.5KB); a bare number in base units may not
                    return None, f"must be a whole number of {_BASE_UNIT.get(unit, 'units')}, not {value}"
                value = round(value)
            value = int(value)
            if value >= 2**63:
                return None, "is too large"
        lo, hi = prop.get("minimum"), prop.get("maximum")
        if lo is not None and value < lo:
            return None, f"must be at least {lo}, not {value}"
        if hi is not None and value > hi:
            return None, f"must be at most {hi}, not {value}"
        return value, None

    @staticmethod
    def _to_engine(prop: dict, value) -> float:
        """Numbers as they are; a symbol as its position in the schema's `enum` (the engine's code)."""
        return float(prop["enum"].index(value)) if "enum" in prop else float(value)

    def _from_engine(self, cell_type: str, param: str, value: float):
        prop = self._runtime_props(cell_type)[param]
        if "enum" in prop:
            return prop["enum"][int(value)]
        return int(value) if prop.get("type") == "integer" else value

    # -- description
    def openapi(self) -> dict:
        from .openapi import document
        return document(self)


def _quantity(text: str, dim, scale: Fraction, exact: bool = True):
    """(value in the plan's units, None) from a quantity (`5Mbps`) or a plain number, or (None, why)."""
    if split_quantity(text) is None:
        if len(text) > 40:
            return None, f"`{text[:20]}...` is too long for a number"
        try:  # a plain number in the plan's units
            return (float(text) if not exact else int(text)), None
        except ValueError:
            pass
    try:
        x = parse_quantity(text, dim) * scale
    except QuantityError as e:
        return None, str(e)
    return (round(x) if exact else float(x)), None

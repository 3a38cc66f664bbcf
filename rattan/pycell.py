"""Python cells: a model written in Python that drives C cells through their runtime parameters.

A Python cell never sees a packet. It names the C cells it is made of (`inner`), and at every tick
of logical time it reads their counters and changes their runtime parameters (`tick`); the engine
forwards every packet in C. Its schema (`cell.schema.json`, registered through the `rattan.cells`
entry point like any cell) says where the class is and what its tick period is:

    "x-rattan": {"python": "package.module:ClassName", "tick": "interval"}

(`tick` names a time parameter of the cell; `"tick_ns": N` fixes the period instead). See
docs/cells-python.md.
"""
from __future__ import annotations

import importlib
from typing import Any, Iterator, Mapping


class PythonCellError(RuntimeError):
    """A Python cell's class cannot be imported, or is not a PythonCell; the message names the plugin."""


class PythonCell:
    """Base class of a Python cell: subclass it, and override `inner` and `tick` (and `start`)."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def inner(self, config: dict) -> list[tuple[str, str, dict]]:
        """The C cells this cell drives, in path order: (name, type, config in plan form, base
        units: ns, bit/s, bytes). Packets go in at the first and out of the last."""
        raise NotImplementedError(f"{type(self).__name__} does not say which cells it drives (`inner`)")

    def start(self, config: dict, seed: int) -> None:
        """Once, before time runs (the seed is the run's seed: use random.Random(seed) for determinism)."""

    def tick(self, now_ns: int, cells: "Cells") -> None:
        """At every tick (logical time now_ns = k * period, k >= 1): read cells[name].counters(),
        cells[name].get(param), and change cells[name].set(param, value) (applied at now_ns)."""

    def set(self, name: str, value: Any) -> None:
        """A runtime parameter of this cell (an `x-runtime` property of its schema) was changed by a
        timeline or the control API."""
        self.config[name] = value


class InnerCell:
    """One C cell a Python cell drives, as its `tick` sees it: counters, and runtime parameters to
    read and change. Changes apply at the tick's logical time."""

    def __init__(self, engine, node: int, name: str, type_: str, schema: Mapping[str, Any] | None) -> None:
        self._engine, self._node, self.name, self.type = engine, node, name, type_
        props = (schema or {}).get("properties", {})
        self._runtime = {k: v for k, v in props.items() if v.get("x-runtime")}
        self._now = 0

    def counters(self):
        """The engine's Counters of this cell (in/out/queued/dropped packets and bytes, drops by reason)."""
        return self._engine.counters(self._node)

    def get(self, param: str):
        """The value in force of a runtime parameter (a symbol for an enum, such as an outage's `state`)."""
        prop = self._prop(param)
        v = self._engine.get(self._node, param)
        if "enum" in prop:
            return prop["enum"][int(v)]
        return int(v) if prop.get("type") == "integer" else v

    def set(self, param: str, value: Any) -> None:
        """Change a runtime parameter (base units, or a symbol of its enum) at the tick's logical time."""
        prop = self._prop(param)
        if "enum" in prop:
            if value not in prop["enum"]:
                raise ValueError(f"`{self.name}.{param}` must be one of {', '.join(map(str, prop['enum']))}, "
                                 f"not {value!r}")
            value = prop["enum"].index(value)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`{self.name}.{param}` takes a number in base units, not {value!r}")
        self._engine.set(self._node, param, float(value), at_ns=self._now)

    def _prop(self, param: str) -> Mapping[str, Any]:
        prop = self._runtime.get(param)
        if prop is None:
            raise KeyError(f"`{self.type}` cell `{self.name}` has no runtime parameter `{param}`; it has "
                           + (", ".join(f"`{p}`" for p in self._runtime) or "none"))
        return prop

    def __repr__(self) -> str:
        return f"InnerCell({self.name!r}, {self.type!r})"


class Cells(Mapping[str, InnerCell]):
    """The inner cells of a Python cell by the names its `inner` gave them."""

    def __init__(self, cells: dict[str, InnerCell]) -> None:
        self._cells = cells

    def __getitem__(self, name: str) -> InnerCell:
        try:
            return self._cells[name]
        except KeyError:
            raise KeyError(f"no inner cell `{name}`; the cell has {', '.join(self._cells)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._cells)

    def __len__(self) -> int:
        return len(self._cells)

    def _at(self, now_ns: int) -> None:
        for c in self._cells.values():
            c._now = now_ns


def import_class(spec: str, origin: str) -> type[PythonCell]:
    """The PythonCell subclass `package.module:ClassName`; PythonCellError naming `origin` otherwise."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise PythonCellError(f"`x-rattan.python` of {origin} must be `package.module:ClassName`, not `{spec}`")
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except Exception as e:
        raise PythonCellError(f"cannot import `{spec}` ({origin}): {type(e).__name__}: {e}") from None
    if not (isinstance(obj, type) and issubclass(obj, PythonCell)):
        raise PythonCellError(f"`{spec}` ({origin}) is not a subclass of rattan.PythonCell")
    return obj


def tick_period(meta: Mapping[str, Any], config: Mapping[str, Any]) -> int | None:
    """The tick period in ns from a schema's `x-rattan` (`tick`: a time parameter, or `tick_ns`)."""
    if "tick_ns" in meta:
        return meta["tick_ns"]
    param = meta.get("tick")
    return config.get(param) if isinstance(param, str) else None

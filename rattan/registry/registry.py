"""Load every cell type's JSON Schema (built-in folders and `rattan.cells` plugins).

A cell type's schema is the single source of its parameters; this module only
reads schemas and answers questions about them (ports, no-op conditions,
runtime-changeable parameters, whether it holds a queue, how it routes). The
rest of the compiler and the tools ask these questions instead of naming cell
types, so a plugin is treated exactly like a built-in.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Mapping

ENTRY_POINT_GROUP = "rattan.cells"
QUEUE_REF = "rattan:queue"

# Every key a cell schema's `x-rattan` block may hold, and what it tells the tools (the table in
# stdlib_cells/README.md is generated from this one). A plugin's unknown key is reported by
# `rattan cells`: a misspelt annotation would otherwise be ignored without a word.
ANNOTATIONS: dict[str, str] = {
    "outputs": "number of output ports (an integer), or `{\"max_of\": [\"/routes/*/port\", \"/default\"]}`: one more "
               "than the largest integer at those JSON pointers into the config (`*` matches every list item)",
    "noop_when": "the cell provably does nothing when every listed parameter has the given value (`{}`: always, "
                 "as for `pass`; absent or `null`: never); the optimizer removes such cells unless a timeline or "
                 "the control API can reach them",
    "fuse": "name of a fusion rule of the optimizer (`\"sum_delay\"`, `\"bernoulli_loss\"`) that merges two "
            "adjacent cells of this type",
    "queue": "`true`: the cell holds packets in a queue until it can send them; plots show its queue length "
             "and DOT draws it with a double outline",
    "rate_limit": "name of the parameter (bit/s, runtime) that limits the rate the cell sends at; `rattan sim` "
                  "samples it and plots draw it beside the cell's output rate",
    "departures": "`\"paced\"`: the cell sends at a rate, one packet after another, while it holds some (a "
                  "link's serialization); in a real run such departures may share a wake-up: each may leave up "
                  "to 8 of the cell's own departure intervals late, at most 50 us (the run's `slack_ns`), never early, "
                  "the rate exact in logical time (docs/running.md, \"Timing\")",
    "label": "parameters DOT prints in the cell's node, each formatted by its `x-unit` (`[\"rate\"]`)",
    "routing": "`{\"routes\": P, \"default\": D}`: the cell sends each packet by its destination address, "
               "by the longest match in parameter P (a list of `{prefix, port}` records, a prefix being a CIDR "
               "prefix or an endpoint's name; a record without `port` drops what it matches) or else to "
               "parameter D (a port or `drop`); the compiler checks the endpoint names (RTN040), refuses two "
               "routes with the same prefix (RTN025) and follows the routes to find return paths (RTN049)",
    "default_unless": "`{\"F\": {\"value\": V, \"unless\": [\"A\", ...]}}` (in a record's schema, such as a queue "
                      "kind): field F defaults to V only when none of the listed fields is set (a bounded queue with "
                      "neither `packets` nor `bytes` holds 1000 packets)",
    "segments": "how the cell treats a GSO super-frame (a TSO/GSO frame of many segments, `--offload gso`): "
                "`\"agnostic\"`, it acts on one exactly as on the segments it stands for (its `size` is theirs); "
                "`\"needs\"`, it must see every segment (absent: `needs`, as for every plugin cell); or "
                "`{\"needs_if_number\": [P, ...], \"needs_if_nonzero\": [Q, ...]}`, agnostic unless a listed "
                "parameter is a number (not a symbol such as `unlimited`) or non-zero. A queue kind's schema "
                "says the same of its record; a cell with a queue needs segments if its queue does. The "
                "compiler's `mark_segmenting` pass cuts super-frames at the endpoints whose packets may meet "
                "such a cell",
    "cut": "`{\"hold\": P}`: every packet stays in the cell at least its minimum hold (the engine's `min_hold` "
           "op, read again after every change), which is positive when parameter P is; the compiler's `mark_cuts` "
           "pass may then split the channel at the links into the cell, so that engine threads run its regions apart",
    "first_arrival": "`false`, or `{\"if_nonzero\": [P, ...], \"if_equal\": {Q: V}}`: when the cell reads the "
                     "time of its channel's first packet (`rt_first_arrival`); such a channel is never split "
                     "into regions (absent: `false` for built-in cells, `true` for plugin cells)",
    "doc": "longer Markdown documentation (the Notes of `rattan cells TYPE` and of docs/language.md)",
    "python": "`\"package.module:ClassName\"`: a Python cell, a subclass of rattan.PythonCell that drives inner C "
              "cells at a tick and never touches packets (docs/cells-python.md)",
    "tick": "a Python cell's tick period: the name of one of its time parameters",
    "tick_ns": "a Python cell's fixed tick period in ns (instead of `tick`)",
}


@dataclass(frozen=True)
class Routing:
    """Where a routing cell keeps its table (`x-rattan.routing`): the names of two parameters."""

    routes: str   # a list of {prefix, port}
    default: str  # a port number, or "drop"

    def table(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The configured routes, each with `prefix` and `port` (absent: a route that drops)."""
        return list(config.get(self.routes, ()) or ())

    def default_port(self, config: Mapping[str, Any]) -> int | None:
        """The port for packets that match no route (None: they are dropped)."""
        d = config.get(self.default)
        return d if isinstance(d, int) and not isinstance(d, bool) else None


def _needs_segments(rule: Any, config: Mapping[str, Any]) -> bool:
    """One `segments` annotation applied to a configuration (see ANNOTATIONS)."""
    if rule == "agnostic":
        return False
    if not isinstance(rule, Mapping):
        return True
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return (any(number(config.get(p)) for p in rule.get("needs_if_number", ())) or
            any(number(config.get(p)) and config.get(p) != 0 for p in rule.get("needs_if_nonzero", ())))


def _record_defaults(schema: Mapping[str, Any], record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A record (a queue's) with its kind's `default_unless` fields filled in, as the engine reads it."""
    out = dict(record)
    for f, d in ((schema.get("x-rattan") or {}).get("default_unless") or {}).items():
        if f not in out and not any(u in out for u in d.get("unless", ())):
            out[f] = d.get("value")
    return out


@dataclass(frozen=True)
class CellType:
    """One registered cell type: its name, schema and where it came from."""

    name: str
    schema: Mapping[str, Any]
    origin: str  # "builtin" or "plugin <distribution>"
    folder: str | None = None

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.schema.get("x-rattan", {}) or {}

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.schema.get("properties", {})

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.schema.get("required", ()))

    @property
    def description(self) -> str:
        return self.schema.get("description", "")

    @property
    def library(self) -> str | None:
        """A plugin cell's compiled C implementation: the shared library (`*.so`) in its folder."""
        if self.origin == "builtin" or not self.folder:
            return None
        libs = sorted(Path(self.folder).glob("*.so"))
        return str(libs[0]) if libs else None

    @property
    def is_python(self) -> bool:
        """A Python cell (`x-rattan.python`): a model that drives inner C cells at a tick."""
        return "python" in self.meta

    def python_class(self):
        """The PythonCell subclass of a Python cell (imported now); PythonCellError naming the plugin."""
        from ..pycell import import_class
        return import_class(str(self.meta["python"]), f"cell type `{self.name}` from {self.origin}")

    def runtime_params(self) -> tuple[str, ...]:
        """Parameters the control API and timelines may change while running."""
        return tuple(k for k, v in self.properties.items() if v.get("x-runtime"))

    def holds_queue(self) -> bool:
        """Whether the cell keeps packets in a queue whose length plots and DOT show (`x-rattan.queue`)."""
        return self.meta.get("queue") is True

    def rate_limit(self) -> str | None:
        """The parameter that limits the cell's sending rate in bit/s, if any (`x-rattan.rate_limit`)."""
        p = self.meta.get("rate_limit")
        return p if isinstance(p, str) and p in self.properties else None

    def paced(self) -> bool:
        """Whether the cell's departures are paced by a rate, so may share a real run's wake-ups
        (`x-rattan.departures`: "paced")."""
        return self.meta.get("departures") == "paced"

    def label_params(self) -> tuple[str, ...]:
        """The parameters DOT prints in the cell's node, in order (`x-rattan.label`)."""
        return tuple(p for p in self.meta.get("label", ()) if p in self.properties)

    def routing(self) -> Routing | None:
        """How the cell routes by destination address, if it does (`x-rattan.routing`)."""
        r = self.meta.get("routing")
        if not isinstance(r, Mapping) or not isinstance(r.get("routes"), str):
            return None
        return Routing(r["routes"], r.get("default", ""))

    def needs_segments(self, config: Mapping[str, Any] | None, queues: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether the cell, so configured, must see each segment of a GSO super-frame rather than
        the super-frame (`x-rattan.segments`; a queue parameter's kind is asked too)."""
        config = config or {}
        if _needs_segments(self.meta.get("segments", "needs"), config):
            return True
        for pname, prop in self.properties.items():
            if prop.get("$ref") != QUEUE_REF:
                continue
            q = config.get(pname, prop.get("default"))
            if not isinstance(q, Mapping) or q.get("kind") not in queues:
                return True  # a queue the compiler cannot read: the safe side
            kind = queues[q["kind"]]
            if _needs_segments((kind.get("x-rattan") or {}).get("segments", "needs"), _record_defaults(kind, q)):
                return True
        return False

    def cut_hold(self, config: Mapping[str, Any] | None) -> bool:
        """Whether a link into the cell, so configured, may be a cut between regions (`x-rattan.cut`:
        its hold parameter is a positive number)."""
        rule = self.meta.get("cut")
        if not isinstance(rule, Mapping) or not isinstance(rule.get("hold"), str):
            return False
        v = (config or {}).get(rule["hold"], (self.properties.get(rule["hold"]) or {}).get("default"))
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0

    def reads_first_arrival(self, config: Mapping[str, Any] | None) -> bool:
        """Whether the cell, so configured, reads its channel's first arrival (`x-rattan.first_arrival`)."""
        rule = self.meta.get("first_arrival", self.origin != "builtin")
        if not isinstance(rule, Mapping):
            return bool(rule)
        config = config or {}
        return (any(config.get(p) not in (None, 0) for p in rule.get("if_nonzero", ())) or
                any(config.get(p) == v for p, v in (rule.get("if_equal") or {}).items()))

    def unknown_annotations(self) -> list[str]:
        """`x-rattan` keys no tool reads: a misspelling, or an annotation of a newer rattan."""
        return sorted(k for k in self.meta if k not in ANNOTATIONS)

    def output_count(self, config: Mapping[str, Any]) -> int:
        """Number of output ports for a given configuration."""
        spec = self.meta.get("outputs", 1)
        if isinstance(spec, int):
            return spec
        best = -1
        for pointer in spec.get("max_of", ()):
            for v in _pointer_values(config, pointer):
                if isinstance(v, int) and not isinstance(v, bool):
                    best = max(best, v)
        return best + 1

    def is_noop(self, config: Mapping[str, Any]) -> bool:
        """True when this configuration provably leaves every packet unchanged."""
        cond = self.meta.get("noop_when")
        if cond is None:
            return False
        return all(config.get(k) == v for k, v in cond.items())


@dataclass(frozen=True)
class RecordKind:
    """A tagged record a parameter takes (`codel { ... }`, `gilbert_elliott { ... }`), from the schemas."""

    name: str
    schema: Mapping[str, Any]
    is_queue: bool
    used_in: tuple[str, ...]  # CELL.PARAM

    @property
    def what(self) -> str:
        return "queue kind" if self.is_queue else "record"


def _tagged(schema: Any):
    """Every tagged record (`properties.kind.const`) in a schema, depth first, outermost first."""
    if isinstance(schema, Mapping):
        props = schema.get("properties")
        kind = props.get("kind") if isinstance(props, Mapping) else None
        if isinstance(kind, Mapping) and isinstance(kind.get("const"), str) and kind["const"]:
            yield schema
        values = schema.values()
    elif isinstance(schema, list):
        values = schema
    else:
        return
    for v in values:
        yield from _tagged(v)


def _pointer_values(doc: Any, pointer: str):
    parts = [p for p in pointer.split("/") if p]
    nodes = [doc]
    for p in parts:
        nxt = []
        for n in nodes:
            if p == "*" and isinstance(n, list):
                nxt.extend(n)
            elif isinstance(n, Mapping) and p in n:
                nxt.append(n[p])
        nodes = nxt
    return nodes


class Registry:
    """Every cell type and queue kind known to this process."""

    def __init__(self) -> None:
        self.cells: dict[str, CellType] = {}
        self.queues: dict[str, Mapping[str, Any]] = {}
        self.problems: list[str] = []  # plugins that failed to load, shown by `rattan cells`

    # -- loading
    def add_cell(self, schema: Mapping[str, Any], origin: str, folder: str | None = None) -> CellType:
        """Register a cell type from its schema (its `title` is the type name)."""
        name = schema.get("title")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"cell schema from {origin} has no valid `title`")
        if name in self.cells:
            raise ValueError(f"cell type `{name}` from {origin} is already registered "
                             f"by {self.cells[name].origin}")
        ct = CellType(name, schema, origin, folder)
        self.cells[name] = ct
        if ct.unknown_annotations():
            self.problems.append(f"cell type `{name}` from {origin}: unknown x-rattan "
                                 f"key{'s' * (len(ct.unknown_annotations()) > 1)} "
                                 + ", ".join(f"`{k}`" for k in ct.unknown_annotations())
                                 + "; known: " + ", ".join(ANNOTATIONS))
        return ct

    def load_folder(self, folder: Path, origin: str) -> CellType:
        """Register the cell whose `cell.schema.json` is in this folder."""
        schema = json.loads((folder / "cell.schema.json").read_text(encoding="utf-8"))
        return self.add_cell(schema, origin, str(folder))

    def load_builtins(self) -> None:
        """All of stdlib_cells/: one folder per cell, queue kinds in queues/."""
        root = resources.files("rattan.stdlib_cells")
        for entry in sorted(root.iterdir(), key=lambda p: p.name):
            if entry.is_dir() and entry.joinpath("cell.schema.json").is_file():
                schema = json.loads(entry.joinpath("cell.schema.json").read_text(encoding="utf-8"))
                self.add_cell(schema, "builtin", str(entry))
        qdir = root.joinpath("queues")
        if qdir.is_dir():
            for entry in sorted(qdir.iterdir(), key=lambda p: p.name):
                if entry.name.endswith(".schema.json"):
                    schema = json.loads(entry.read_text(encoding="utf-8"))
                    self.queues[entry.name[: -len(".schema.json")]] = schema

    def load_plugins(self) -> None:
        """Cells from the `rattan.cells` entry point group.

        An entry point names either a folder (str or Path) holding `cell.schema.json`,
        a schema dict, or a callable returning one of those (or a list of them).
        """
        try:
            eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as e:  # a broken installed distribution must not break the compiler
            self.problems.append(f"cannot list plugins: {e}")
            return
        for ep in sorted(eps, key=lambda e: e.name):
            dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value
            origin = f"plugin {dist}"
            try:
                obj = ep.load()
                if callable(obj):
                    obj = obj()
                for item in obj if isinstance(obj, list) else [obj]:
                    if isinstance(item, (str, Path)):
                        self.load_folder(Path(item), origin)
                    elif isinstance(item, Mapping):
                        self.add_cell(item, origin)
                    else:
                        raise TypeError(f"entry point returned {type(item).__name__}")
            except Exception as e:
                self.problems.append(f"plugin `{ep.name}` ({ep.value}): {e}")

    # -- queries
    def get(self, name: str) -> CellType | None:
        return self.cells.get(name)

    def names(self) -> list[str]:
        return sorted(self.cells)

    def records(self) -> dict[str, RecordKind]:
        """Every queue kind and every other tagged record (models such as `gilbert_elliott`, a router's
        `route`) by its tag, with the cell parameters (CELL.PARAM) that take it."""
        found: dict[str, tuple[Mapping[str, Any], bool]] = {k: (v, True) for k, v in self.queues.items()}
        used: dict[str, list[str]] = {k: [] for k in found}
        for n in self.names():
            for pname, prop in self.cells[n].properties.items():
                where = f"{n}.{pname}"
                if prop.get("$ref") == QUEUE_REF:
                    for k in self.queues:
                        used[k].append(where)
                    continue
                for shape in _tagged(prop):
                    tag = shape["properties"]["kind"]["const"]
                    found.setdefault(tag, (shape, False))
                    if where not in used.setdefault(tag, []):
                        used[tag].append(where)
        return {k: RecordKind(k, schema, queue, tuple(used[k])) for k, (schema, queue) in sorted(found.items())}

    def resolver(self):
        """A `referencing` registry that resolves `rattan:queue` and every queue kind."""
        from referencing import Registry as RefRegistry, Resource
        from referencing.jsonschema import DRAFT202012

        resources_ = [(f"rattan:queue/{k}", Resource.from_contents(s, default_specification=DRAFT202012))
                      for k, s in self.queues.items()]
        union = {"oneOf": [{"$ref": f"rattan:queue/{k}"} for k in sorted(self.queues)]}
        resources_.append((QUEUE_REF, Resource.from_contents(union, default_specification=DRAFT202012)))
        return RefRegistry().with_resources(resources_)

    def inline_refs(self, schema: Any) -> Any:
        """A copy of a schema with every `rattan:queue` reference replaced by its definition.

        Validators then never go through reference resolution, which dominates
        validation time for large files.
        """
        if isinstance(schema, Mapping):
            if schema.get("$ref") == QUEUE_REF:
                return self.inline_refs(self.deref(schema))
            return {k: self.inline_refs(v) for k, v in schema.items()}
        if isinstance(schema, list):
            return [self.inline_refs(v) for v in schema]
        return schema

    def deref(self, prop: Mapping[str, Any]) -> Mapping[str, Any]:
        """A property schema with `rattan:queue` replaced by the union of queue kinds."""
        if prop.get("$ref") == QUEUE_REF:
            merged = {k: v for k, v in prop.items() if k != "$ref"}
            merged["oneOf"] = [self.queues[k] for k in sorted(self.queues)]
            return merged
        return prop


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """Built-ins plus installed plugins, loaded once per process."""
    reg = Registry()
    reg.load_builtins()
    reg.load_plugins()
    return reg

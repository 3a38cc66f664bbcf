"""`rattan cells`: the registry as text a person reads, generated from the schemas."""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Mapping

from ..registry import CellType, RecordKind, Registry
from ..units import NAMED_DIMS, format_quantity


def record_kinds(reg: Registry) -> dict[str, RecordKind]:
    """The queue kinds and other tagged records `rattan cells NAME` describes (the registry's `records`)."""
    return reg.records()


def _type_name(reg: Registry, prop) -> str:
    prop = reg.deref(prop)
    unit = prop.get("x-unit")
    if unit:
        return unit
    if "oneOf" in prop:
        kinds = []
        for b in prop["oneOf"]:
            b = reg.deref(b)
            k = b.get("properties", {}).get("kind", {}).get("const")
            kinds.append(f"{k} {{...}}" if k else (b.get("const") or _type_name(reg, b)))
        return " | ".join(kinds)
    if prop.get("enum"):
        return " | ".join(prop["enum"])
    kind = prop.get("properties", {}).get("kind", {}).get("const")
    if kind:  # a tagged record, e.g. a router's `route { prefix, port }`
        return f"{kind} {{...}}"
    t = prop.get("type", "any")
    if t == "array":
        return f"list of {_type_name(reg, prop.get('items', {}))}"
    return {"integer": "int", "number": "float", "boolean": "bool"}.get(t, t)


def default_text(prop) -> str:
    """A schema default written as `.rtn` (`0ms`, `infinite`, `true`)."""
    if "default" not in prop:
        return ""
    d = prop["default"]
    unit = prop.get("x-unit")
    if unit is None and isinstance(d, (int, float)) and not isinstance(d, bool):  # `SIZE or unlimited`: the number's
        unit = next((b.get("x-unit") for b in prop.get("oneOf", ()) if b.get("type") in ("integer", "number")), None)
    if unit in NAMED_DIMS and isinstance(d, (int, float)):
        scale = {"time": Fraction(1, 10**9), "rate": Fraction(1), "size": Fraction(8)}[unit]
        return format_quantity(Fraction(d) * scale, NAMED_DIMS[unit])
    if unit == "probability":
        # str() first: the schema's 0.1 is the decimal the user wrote, not the nearest double
        return f"{(Decimal(str(d)) * 100).normalize():f}%"
    if isinstance(d, dict) and "kind" in d:
        rest = {k: v for k, v in d.items() if k != "kind"}
        return d["kind"] + (" { " + ", ".join(f"{k} = {v}" for k, v in rest.items()) + " }" if rest else "")
    if isinstance(d, bool):
        return "true" if d else "false"
    return json.dumps(d) if not isinstance(d, str) else d


def kinds_text(reg: Registry) -> list[str]:
    """The kinds of names `rattan cells NAME` knows, one line each."""
    others = [r for r in record_kinds(reg).values() if not r.is_queue]
    return ["cell types: " + ", ".join(reg.names()),
            "queue kinds: " + ", ".join(sorted(reg.queues)),
            "models and other records: " + ", ".join(f"{r.name} ({', '.join(r.used_in)})" for r in others)]


@dataclass(frozen=True)
class Implementation:
    """What runs a cell type: `state` is one word for the table, `detail` the whole story."""

    state: str   # engine, loaded, python, missing, refused, unavailable
    detail: str

    @property
    def ok(self) -> bool:
        return self.state in ("engine", "loaded", "python")


def implementation(ct: CellType) -> Implementation:
    """Whether a cell type can run: built into the engine, a plugin's library (loaded here to find
    out: an ABI mismatch or a missing symbol shows now, not at the first run), or a Python cell."""
    python = ct.meta.get("python")
    if python:
        try:
            from ..pycell import PythonCellError, import_class
        except ImportError:
            return Implementation("missing", "a Python cell, and this rattan runs none: upgrade rattan")
        try:
            import_class(python, f"cell type `{ct.name}`")
        except PythonCellError as e:
            return Implementation("refused", str(e))
        return Implementation("python", f"the Python class {python}, driving C cells at every tick")
    try:
        from ..engine import EngineError
        from ..engine.binding import cell_types
        from ..engine.load import ensure_cell_type
    except ImportError as e:  # no compiled engine: the registry still answers from the schemas
        return Implementation("unavailable", f"the engine does not load: {e}")
    if ct.origin == "builtin":
        if ct.name in cell_types():
            return Implementation("engine", "built into the engine")
        return Implementation("missing", "not in this build of the engine: reinstall rattan")
    if ct.library is None:
        return Implementation("missing", f"no compiled library in {ct.folder or 'its plugin'}: reinstall "
                                         f"{ct.origin.split(' ', 1)[-1]} with pip")
    try:
        ensure_cell_type(ct.name)
    except EngineError as e:
        return Implementation("refused", str(e))
    return Implementation("loaded", f"the library {ct.library}, loaded")


def list_cells(reg: Registry) -> str:
    """One line per cell type (where it comes from, what runs it), then the queue kinds and other
    records, then why a plugin's implementation cannot run."""
    width = max((len(n) for n in reg.names()), default=4)
    impls = {n: implementation(reg.get(n)) for n in reg.names()}
    origin_w = max([len(reg.get(n).origin) for n in reg.names()] + [6])
    lines = [f"{'TYPE':<{width}}  {'ORIGIN':<{origin_w}}  {'RUNS':<7}  DESCRIPTION"]
    for n in reg.names():
        ct = reg.get(n)
        lines.append(f"{n:<{width}}  {ct.origin:<{origin_w}}  {impls[n].state:<7}  {ct.description}")
    lines.append("")
    broken = [(n, i) for n, i in impls.items() if not i.ok]
    if broken:
        lines += [f"`{n}` cannot run ({i.state}): {i.detail}" for n, i in broken] + [""]
    lines += kinds_text(reg)[1:]
    lines.append("`rattan cells NAME` shows a cell type, a queue kind or a record in full.")
    return "\n".join(lines) + "\n"


def _parameter_lines(reg: Registry, properties: Mapping, required) -> list[str]:
    lines = []
    for name, prop in properties.items():
        req = "required" if name in required else f"default {default_text(prop)}" if "default" in prop else "optional"
        rt = ", runtime" if prop.get("x-runtime") else ""
        lines.append(f"  {name}: {_type_name(reg, prop)} ({req}{rt})")
        if prop.get("description"):
            lines.append(f"      {prop['description']}")
    return lines or ["  (none)"]


def describe_record(reg: Registry, rec: RecordKind) -> str:
    """A queue kind or record in full: where it is written, and every field."""
    s = rec.schema
    fields = {k: v for k, v in s.get("properties", {}).items() if k != "kind"}
    forms = {}  # how it is written, by parameter: a list parameter takes several
    for w in rec.used_in:
        cell, param = w.split(".", 1)
        listed = reg.get(cell).properties[param].get("type") == "array"
        form = f"{param} = [{rec.name} {{ ... }}, ...]" if listed else f"{param} = {rec.name} {{ ... }}"
        forms.setdefault(form, []).append(cell)
    lines = [f"{rec.name} — {s.get('description', '')}"]
    lines += [f"a {rec.what}: write `{form}` in {', '.join(cells)}" for form, cells in forms.items()]
    lines += ["", "fields:"]
    lines += _parameter_lines(reg, fields, [r for r in s.get("required", ()) if r != "kind"])
    doc = (s.get("x-rattan") or {}).get("doc")
    if doc:
        lines += ["", doc]
    return "\n".join(lines) + "\n"


def describe_cell(reg: Registry, ct: CellType) -> str:
    """A cell type in full: summary, ports, every parameter with type, default and docs."""
    lines = [f"{ct.name} — {ct.description}", f"origin: {ct.origin}",
             f"runs: {implementation(ct).detail}"]
    outs = ct.meta.get("outputs", 1)
    lines.append("ports: 1 input (fan-in allowed), "
                 + (f"{outs} output" + ("s" if outs != 1 else "") if isinstance(outs, int)
                    else "one output per routed port"))
    lines.append("")
    lines.append("parameters:")
    lines += _parameter_lines(reg, ct.properties, ct.required)
    doc = ct.meta.get("doc")
    if doc:
        lines += ["", doc]
    return "\n".join(lines) + "\n"

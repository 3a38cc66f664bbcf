"""`rattan cells`: the registry as text a person reads, generated from the schemas."""
from __future__ import annotations

import json
from fractions import Fraction

from ..registry import CellType, Registry
from ..units import NAMED_DIMS, format_quantity


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
            kinds.append(f"{k} {{...}}" if k else (b.get("const") or b.get("type", "?")))
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
    if unit in NAMED_DIMS and isinstance(d, (int, float)):
        scale = {"time": Fraction(1, 10**9), "rate": Fraction(1), "size": Fraction(8)}[unit]
        return format_quantity(Fraction(d) * scale, NAMED_DIMS[unit])
    if unit == "probability":
        return f"{Fraction(d) * 100}%"
    if isinstance(d, dict) and "kind" in d:
        rest = {k: v for k, v in d.items() if k != "kind"}
        return d["kind"] + (" { " + ", ".join(f"{k} = {v}" for k, v in rest.items()) + " }" if rest else "")
    if isinstance(d, bool):
        return "true" if d else "false"
    return json.dumps(d) if not isinstance(d, str) else d


def list_cells(reg: Registry) -> str:
    """One line per cell type."""
    width = max((len(n) for n in reg.names()), default=4)
    lines = [f"{'TYPE':<{width}}  {'ORIGIN':<8}  DESCRIPTION"]
    for n in reg.names():
        ct = reg.get(n)
        lines.append(f"{n:<{width}}  {ct.origin.split()[0]:<8}  {ct.description}")
    lines.append("")
    lines.append("queues: " + ", ".join(sorted(reg.queues)))
    lines.append("`rattan cells TYPE` shows a type's parameters.")
    return "\n".join(lines) + "\n"


def describe_cell(reg: Registry, ct: CellType) -> str:
    """A cell type in full: summary, ports, every parameter with type, default and docs."""
    lines = [f"{ct.name} — {ct.description}", f"origin: {ct.origin}"]
    outs = ct.meta.get("outputs", 1)
    lines.append(f"ports: 1 input (fan-in allowed), "
                 + (f"{outs} output" + ("s" if outs != 1 else "") if isinstance(outs, int)
                    else "one output per routed port"))
    lines.append("")
    lines.append("parameters:")
    for name, prop in ct.properties.items():
        req = "required" if name in ct.required else f"default {default_text(prop)}" if "default" in prop else "optional"
        rt = ", runtime" if prop.get("x-runtime") else ""
        lines.append(f"  {name}: {_type_name(reg, prop)} ({req}{rt})")
        if prop.get("description"):
            lines.append(f"      {prop['description']}")
    if not ct.properties:
        lines.append("  (none)")
    doc = ct.meta.get("doc")
    if doc:
        lines += ["", doc]
    return "\n".join(lines) + "\n"

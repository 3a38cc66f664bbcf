"""Graphviz DOT rendering of a plan: one cluster per channel, endpoints as boxes."""
from __future__ import annotations

from typing import Any


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _summary(cell: dict[str, Any]) -> str:
    from ..units import format_quantity, TIME, RATE, SIZE
    from fractions import Fraction
    cfg = cell.get("config") or {}
    parts = []
    if "rate" in cfg and cell["type"] in ("bw", "token_bucket"):
        parts.append(format_quantity(Fraction(cfg["rate"]), RATE))
    if "delay" in cfg:
        parts.append(format_quantity(Fraction(cfg["delay"], 10**9), TIME))
    if cell["type"] in ("loss", "duplicate", "corrupt") and "rate" in cfg:
        parts.append(f"{cfg['rate'] * 100:g}%")
    q = cfg.get("queue")
    if isinstance(q, dict) and q.get("kind") not in (None, "infinite"):
        parts.append(q["kind"])
    return ", ".join(parts)


def plan_dot(plan: dict[str, Any]) -> str:
    """The plan's topology as a DOT digraph."""
    out = ["digraph rattan {", "  rankdir=LR;", "  node [fontname=\"Helvetica\"];"]
    for i, ch in enumerate(plan["channels"]):
        pre = ch["name"] + "/"
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f"    label={_q('channel ' + ch['name'])};")
        for e in ch["endpoints"]:
            out.append(f"    {_q(pre + e)} [label={_q(e)}, shape=box, style=filled, fillcolor=\"#dde8f5\"];")
        for c in ch["cells"]:
            s = _summary(c)
            label = f"{c['name']}\\n{c['type']}" + (f"\\n{s}" if s else "")
            out.append(f"    {_q(pre + c['name'])} [label=\"{label}\", shape=ellipse];")
        for l in ch["links"]:
            attrs = f" [taillabel={_q(str(l['port']))}]" if any(
                c["name"] == l["from"] and c["outputs"] > 1 for c in ch["cells"]) else ""
            out.append(f"    {_q(pre + l['from'])} -> {_q(pre + l['to'])}{attrs};")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"

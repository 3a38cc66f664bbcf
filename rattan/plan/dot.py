"""Graphviz DOT rendering of a plan: one cluster per channel, endpoints as boxes."""
from __future__ import annotations

from typing import Any


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _summary(cell: dict[str, Any], ct) -> str:
    """The parameters the cell's schema asks DOT to show (`x-rattan.label`), and a bounded queue's kind."""
    from ..tools.cells import default_text
    cfg = cell.get("config") or {}
    parts = []
    for p in ct.label_params() if ct is not None else ():
        if p in cfg:  # written as `.rtn` writes it: 20Mbps, 10ms, 1%
            parts.append(default_text({**ct.properties[p], "default": cfg[p]}))
    q = cfg.get("queue")
    if isinstance(q, dict) and q.get("kind") not in (None, "infinite"):
        parts.append(q["kind"])
    return ", ".join(parts)


def plan_dot(plan: dict[str, Any], registry=None) -> str:
    """The plan's topology as a DOT digraph; a cell that holds a queue has a double outline."""
    if registry is None:
        from ..registry import default_registry
        registry = default_registry()
    out = ["digraph rattan {", "  rankdir=LR;", "  node [fontname=\"Helvetica\"];"]
    for i, ch in enumerate(plan["channels"]):
        pre = ch["name"] + "/"
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f"    label={_q('channel ' + ch['name'])};")
        for e in ch["endpoints"]:
            out.append(f"    {_q(pre + e)} [label={_q(e)}, shape=box, style=filled, fillcolor=\"#dde8f5\"];")
        for c in ch["cells"]:
            ct = registry.get(c["type"])
            s = _summary(c, ct)
            label = f"{c['name']}\\n{c['type']}" + (f"\\n{s}" if s else "")
            queue = ", peripheries=2" if ct is not None and ct.holds_queue() else ""
            out.append(f"    {_q(pre + c['name'])} [label=\"{label}\", shape=ellipse{queue}];")
        for l in ch["links"]:
            attrs = f" [taillabel={_q(str(l['port']))}]" if any(
                c["name"] == l["from"] and c["outputs"] > 1 for c in ch["cells"]) else ""
            out.append(f"    {_q(pre + l['from'])} -> {_q(pre + l['to'])}{attrs};")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"

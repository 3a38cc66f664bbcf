"""Turn the checked, optimized IR into the plan: JSON in base units, deterministic.

The plan is what the engine loads: per channel, its endpoints, its cells in
topological order with their configuration, the links between output ports
and inputs, and the timeline. Keys are sorted and nothing depends on dict
order, hashing or time, so the same input gives byte-identical output.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from .. import __version__
from ..ir.nodes import Channel, Program
from ..registry import Registry
from ..source import SourceMap

PLAN_VERSION = 1


def topological_order(ch: Channel) -> list[str]:
    """Cells in an order where every cell comes after those that feed it (Kahn, stable)."""
    names = [c.name for c in ch.cells]
    index = {n: i for i, n in enumerate(names)}
    indeg = {n: 0 for n in names}
    succ = defaultdict(list)
    for l in ch.links:
        if l.dst in indeg and l.src in indeg:
            indeg[l.dst] += 1
            succ[l.src].append(l.dst)
    import heapq
    ready = [index[n] for n in names if indeg[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = names[heapq.heappop(ready)]
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(ready, index[m])
    return order


def _where(sources: SourceMap, span) -> str | None:
    if span is None or span.end == 0:
        return None
    src = sources[span.source]
    line, col = src.line_col(span.start)
    return f"{src.name}:{line}:{col}"


def build_plan(prog: Program, sources: SourceMap, registry: Registry) -> dict[str, Any]:
    """The plan document (a dict) for a program that compiled without errors."""
    channels = []
    for ch in prog.channels:
        by_name = {c.name: c for c in ch.cells}
        cells = []
        for name in topological_order(ch):
            c = by_name[name]
            ct = registry.get(c.type)
            entry: dict[str, Any] = {
                "name": c.name,
                "type": c.type,
                "config": _plain(c.config),
                "outputs": ct.output_count(c.config),
                "anonymous": c.anonymous,
                "source": _where(sources, c.span),
            }
            if c.origin:
                entry["origin"] = c.origin
            if c.trace is not None:
                entry["trace"] = _plain(c.trace)
            cells.append(entry)
        links = [{"from": l.src, "port": l.src_port or 0, "to": l.dst} for l in ch.links]
        links.sort(key=lambda l: (l["from"], l["port"], l["to"]))
        timeline = []
        for chg in ch.timeline:
            ev: dict[str, Any] = {"cell": chg.cell, "param": chg.param, "value": _plain(chg.value)}
            if chg.at is not None:
                ev.update(kind="at", at_ns=chg.at)
            else:
                ev.update(kind="every", period_ns=chg.period, duration_ns=chg.duration)
            timeline.append(ev)
        channels.append({
            "name": ch.name,
            "endpoints": [e.name for e in ch.endpoints],
            "cells": cells,
            "links": links,
            "timeline": timeline,
        })
        if ch.segmenting:  # GSO mode's cutting points (mark_segmenting); absent otherwise
            channels[-1]["segmenting"] = list(ch.segmenting)
        if ch.cuts:  # links between regions that threads may run apart (mark_cuts); absent otherwise
            channels[-1]["cuts"] = [{"from": s, "port": p, "to": d} for s, p, d in ch.cuts]
        if ch.controllers:  # Python cells; absent otherwise, so that plans without them are unchanged
            channels[-1]["controllers"] = [{
                "cell": k.cell.name, "type": k.cell.type, "class": k.python, "config": _plain(k.cell.config),
                "tick_ns": k.tick_ns, "cells": dict(k.cells), "source": _where(sources, k.cell.span),
            } for k in ch.controllers]
    return {
        "version": PLAN_VERSION,
        "generator": f"rattan {__version__}",
        "channels": channels,
        "run": _plain(dict(prog.settings)),
    }


def _plain(x: Any) -> Any:
    """Mappings and tuples as JSON-ready dicts and lists."""
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    if hasattr(x, "items"):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return str(x)


_SCALAR = r'(?:-?[0-9][0-9.eE+-]*|"(?:[^"\\\n]|\\.)*"|true|false|null)'
_SCALAR_LIST = re.compile(r"\[\n\s+(" + _SCALAR + r"(?:,\n\s+" + _SCALAR + r")*)\n\s*\]")


def _join_scalars(m: "re.Match[str]") -> str:
    return "[" + ", ".join(x.strip() for x in m.group(1).split(",\n")) + "]"


def plan_json(plan: dict[str, Any]) -> str:
    """Canonical text of a plan: sorted keys, two-space indent, lists of scalars on one line."""
    text = json.dumps(plan, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return _SCALAR_LIST.sub(_join_scalars, text) + "\n"

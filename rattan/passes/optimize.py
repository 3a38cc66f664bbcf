"""The optimizing passes: `remove_noops`, `fuse_cells`, `eliminate_dead`.

Each requires a program without errors (the pipeline stops before them otherwise)
and guarantees that the result forwards every packet exactly as the input would,
in distribution: cells are only removed or merged where that is provable from
their configurations. A cell that a timeline changes, or that the control API
can address (any named cell, unless `Options.freeze`), is never touched.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from types import MappingProxyType

from ..ir.nodes import Channel, Link, Program
from .context import Context


def _pinned(ch: Channel, ctx: Context) -> set[str]:
    """Cells that must stay as written: reachable by a timeline or the control API."""
    pinned = {chg.cell for chg in ch.timeline} | {n for k in ch.controllers for n in k.cells.values()}
    if not ctx.options.freeze:
        pinned |= {c.name for c in ch.cells if not c.anonymous}
    return pinned


def _splice_out(ch: Channel, name: str) -> Channel:
    """Remove a single-input-port, single-output cell, joining its inputs to its output."""
    outs = [l for l in ch.links if l.src == name]
    ins = [l for l in ch.links if l.dst == name]
    keep = [l for l in ch.links if l.src != name and l.dst != name]
    for li in ins:
        for lo in outs:
            keep.append(Link(li.src, li.src_port, lo.dst, li.span))
    return replace(ch, cells=tuple(c for c in ch.cells if c.name != name), links=tuple(keep))


def remove_noops(prog: Program, ctx: Context) -> Program:
    """Drop cells whose configuration provably does nothing (`pass`, 0 ms delay, 0 % loss)."""
    channels = []
    for ch in prog.channels:
        pinned = _pinned(ch, ctx)
        for c in list(ch.cells):
            ct = ctx.registry.get(c.type)
            if c.name in pinned or ct is None or c.config is None:
                continue
            if ct.output_count(c.config) == 1 and ct.is_noop(c.config):
                outs = [l for l in ch.links if l.src == c.name]
                if len(outs) == 1:
                    ch = _splice_out(ch, c.name)
        channels.append(ch)
    return replace(prog, channels=tuple(channels))


def _fuse_delay(a, b):
    if a.get("jitter", 0) or b.get("jitter", 0):
        return None
    if a.get("round_up", 0) or b.get("round_up", 0):
        return None  # rounding the arrival time does not commute with the other cell's delay
    return {**a, "delay": a["delay"] + b["delay"]}


def _fuse_loss(a, b):
    if set(a) - {"rate"} or set(b) - {"rate"}:
        return None  # only independent Bernoulli losses compose exactly
    return {"rate": 1 - (1 - a["rate"]) * (1 - b["rate"])}


FUSION_RULES = {"sum_delay": _fuse_delay, "bernoulli_loss": _fuse_loss}


def fuse_cells(prog: Program, ctx: Context) -> Program:
    """Merge adjacent constant delays, and adjacent Bernoulli losses, into one cell."""
    channels = []
    for ch in prog.channels:
        pinned = _pinned(ch, ctx)
        changed = True
        while changed:
            changed = False
            cells = {c.name: c for c in ch.cells}
            outs = defaultdict(list)
            ins = defaultdict(list)
            for l in ch.links:
                outs[l.src].append(l)
                ins[l.dst].append(l)
            for l in ch.links:
                a, b = cells.get(l.src), cells.get(l.dst)
                if a is None or b is None or a.type != b.type or a.name in pinned or b.name in pinned:
                    continue
                if len(outs[a.name]) != 1 or len(ins[b.name]) != 1 or a.config is None or b.config is None:
                    continue
                rule = (ctx.registry.get(a.type).meta or {}).get("fuse")
                fuse = FUSION_RULES.get(rule)
                merged = fuse(dict(a.config), dict(b.config)) if fuse else None
                if merged is None:
                    continue
                fused = replace(a, config=MappingProxyType(merged), span=a.span.to(b.span))
                ch = _splice_out(ch, b.name)
                ch = replace(ch, cells=tuple(fused if c.name == a.name else c for c in ch.cells))
                changed = True
                break
        channels.append(ch)
    return replace(prog, channels=tuple(channels))


def eliminate_dead(prog: Program, ctx: Context) -> Program:
    """Drop cells that no packet from an endpoint can reach, or that reach no endpoint."""
    channels = []
    for ch in prog.channels:
        eps = {e.name for e in ch.endpoints}
        fwd = _reach(eps, ch.links, forward=True)
        bwd = _reach(eps, ch.links, forward=False)
        live = {c.name for c in ch.cells if c.name in fwd and c.name in bwd} | eps
        if len(live) - len(eps) == len(ch.cells):
            channels.append(ch)
            continue
        channels.append(replace(ch, cells=tuple(c for c in ch.cells if c.name in live),
                                links=tuple(l for l in ch.links if l.src in live and l.dst in live)))
    return replace(prog, channels=tuple(channels))


def _reach(eps, links, forward: bool) -> set[str]:
    adj = defaultdict(list)
    for l in links:
        if forward:
            adj[l.src].append(l.dst)
        else:
            adj[l.dst].append(l.src)
    seen = set(eps)
    todo = list(eps)
    while todo:
        n = todo.pop()
        for m in adj[n]:
            if m not in seen:
                seen.add(m)
                if m not in eps:
                    todo.append(m)
    return seen

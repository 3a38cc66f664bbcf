"""`mark_cuts`: where a channel's graph may be split into regions that engine threads run apart.

A packet crossing a link into a cell that holds every packet at least a while (`x-rattan.cut`:
`{"hold": P}`, as `delay` says of its `delay`) arrives at the cell's region before it can leave
it: the engine hands it off across threads there and runs the regions in windows no longer than
the least such hold (docs/engine.md, "One channel over several threads").

Requires: a checked (and, if asked, optimized) program; every cell's type registered.
Guarantees: each channel's `cuts` lists, in link order, the links (src, port, dst) into a cell whose
hold parameter is a positive number, kept only where cutting them all leaves the link's two ends in
different regions (components of the remaining links); none in a channel with a cell that reads the
channel's first arrival (`x-rattan.first_arrival`, every plugin cell unless it says otherwise), whose
value a region could not know before the other regions' packets arrive, nor in a channel with a
Python cell. The cuts depend on the plan alone, never on the thread count, so results do not either.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir.nodes import Channel, Program
from .context import Context


def _find(parent: dict[str, str], x: str) -> str:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def channel_cuts(ch: Channel, ctx: Context) -> tuple[tuple[str, int, str], ...]:
    """The links of one channel that become cuts (see the module's docstring)."""
    if ch.controllers:
        return ()
    cells = {c.name: c for c in ch.cells}
    for c in ch.cells:
        ct = ctx.registry.get(c.type)
        if ct is None or ct.reads_first_arrival(c.config):
            return ()
    candidates = []
    for l in ch.links:
        c = cells.get(l.dst)
        ct = ctx.registry.get(c.type) if c else None
        if ct is not None and ct.cut_hold(c.config):
            candidates.append(l)
    if not candidates:
        return ()
    names = [e.name for e in ch.endpoints] + list(cells)
    parent = {n: n for n in names}
    cut = {id(l) for l in candidates}
    for l in ch.links:
        if id(l) not in cut and l.src in parent and l.dst in parent:
            parent[_find(parent, l.src)] = _find(parent, l.dst)
    return tuple((l.src, l.src_port or 0, l.dst) for l in candidates
                 if _find(parent, l.src) != _find(parent, l.dst))


def mark_cuts(prog: Program, ctx: Context) -> Program:
    """Set every channel's `cuts` (see the module's docstring)."""
    return replace(prog, channels=tuple(replace(ch, cuts=channel_cuts(ch, ctx)) for ch in prog.channels))

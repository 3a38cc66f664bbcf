"""`mark_segmenting`: where GSO super-frames must be cut into segments (`--offload gso`).

In GSO mode a TCP sender's TSO frame of up to 64 KiB crosses the engine whole. A cell whose
schema says it is segment-agnostic (`x-rattan.segments`: `pass`, `delay`, `bw` with an unbounded
queue, ...) acts on such a super-frame exactly as on the segments it stands for; any other
(`loss`, `duplicate`, `corrupt`, `spy`, bounded or AQM queues, every plugin cell unless its schema
says otherwise) must see each segment.

Requires: a checked (and, if asked, optimized) program; every cell's type registered.
Guarantees: each channel's `segmenting` lists, in endpoint order, the endpoints from which a packet
entering the path may reach a cell that needs segments; the engine cuts super-frames there at
ingress (rt_endpoint_set_segmenting) and keeps them whole everywhere else. Packets entering at an
endpoint only ever follow links, so reachability over links is exact for the topology (a router's
routes only narrow it, and are ignored: the safe side).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ..ir.nodes import Channel, Program
from .context import Context


def needing_cells(ch: Channel, ctx: Context) -> set[str]:
    """The channel's cells that must see segments, as configured."""
    out = set()
    for c in ch.cells:
        ct = ctx.registry.get(c.type)
        if ct is None or ct.needs_segments(c.config, ctx.registry.queues):
            out.add(c.name)
    return out


def endpoints_reaching(endpoints: Sequence[str], links: Iterable[tuple[str, str]], targets: set[str]) -> tuple[str, ...]:
    """The endpoints, in their order, from which a packet following the links (source, destination
    names) may reach one of `targets`: a packet delivered at an endpoint goes no further. The
    runtime asks it too, for the cells a packet log records (rattan.runtime.run)."""
    succ = defaultdict(list)
    for src, dst in links:
        succ[src].append(dst)
    out = []
    for ep in endpoints:
        seen, todo = {ep}, [ep]
        while todo:
            for nxt in succ[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    if nxt not in endpoints:  # delivered there: a packet goes no further
                        todo.append(nxt)
        if seen & targets:
            out.append(ep)
    return tuple(out)


def segmenting_endpoints(ch: Channel, ctx: Context) -> tuple[str, ...]:
    """Endpoints whose packets may meet a cell that needs segments."""
    return endpoints_reaching([ep.name for ep in ch.endpoints], [(l.src, l.dst) for l in ch.links],
                              needing_cells(ch, ctx))


def mark_segmenting(prog: Program, ctx: Context) -> Program:
    """Set every channel's `segmenting` endpoints (see the module's docstring)."""
    return replace(prog, channels=tuple(replace(ch, segmenting=segmenting_endpoints(ch, ctx))
                                        for ch in prog.channels))

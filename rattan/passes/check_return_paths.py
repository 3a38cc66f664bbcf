"""Pass `check_return_paths`: an endpoint that receives packets from another can answer it.

Requires: `check_graph` (ports in range, routers' routes validated).
Guarantees: for every two endpoints A and B of a channel where a packet from A addressed to B
reaches B, a packet from B addressed to A reaches A, or a warning (RTN049) says that B's replies
(TCP acknowledgements, ping replies) would be dropped at run time (`no_route`). A cell that routes
(its schema's `x-rattan.routing`, as `router`'s) passes a packet addressed to an endpoint only on
that endpoint's route (a host route, the longest match), else on any address-prefix route (it may
hold the endpoint's address) or its default port.
A warning, not an error: a one-way path can be what a UDP test wants. Runs on a program without
errors only: in a broken graph the warning would be noise.
"""
from __future__ import annotations

import re

from ..diagnostics import Label
from ..ir.nodes import Cell, Channel, Program
from ..registry.registry import Routing
from .check_graph import Syntax, channel_format, reaches, successors
from .context import Context


def check_return_paths(prog: Program, ctx: Context) -> Program:
    if ctx.sink.has_errors:
        return prog
    for ch in prog.channels:
        _check_channel(ch, ctx, Syntax(channel_format(prog, ch)))
    return prog


def _check_channel(ch: Channel, ctx: Context, syntax: Syntax = Syntax()) -> None:
    eps = [e.name for e in ch.endpoints]
    cells = {c.name: c for c in ch.cells}
    routing = {c.name: r for c in ch.cells if c.config is not None and (ct := ctx.registry.get(c.type)) is not None
               and (r := ct.routing()) is not None}
    succ = successors(ch.links)
    decl = {e.name: e.span if e.span.end > 0 else ch.name_span for e in ch.endpoints}
    for a in eps:
        for b in eps:
            if a == b or not _route(a, b, succ, cells, routing, set(eps))[0]:
                continue
            back, blocking = _route(b, a, succ, cells, routing, set(eps))
            if back:
                continue
            first = succ[a][0]
            sent_here = Label(first.span, f"`{a}` sends to `{b}` here")
            if not succ[b]:
                ctx.sink.emit("RTN049", f"`{b}` receives packets from `{a}` but sends nothing back: its replies "
                              f"(TCP acknowledgements, ping replies) would be dropped", decl[b],
                              labels=[sent_here],
                              help=[_path_back(b, a, cells, syntax),
                                    "a one-way path on purpose (a UDP test) may ignore this warning"])
                continue
            help = [_route_help(r.name, a, syntax) for r in blocking]
            labels = [sent_here] + [Label(r.span, f"no route to `{a}`") for r in blocking]
            ctx.sink.emit("RTN049", f"packets from `{b}` to `{a}` have no path, so replies to what `{a}` sends "
                          "(TCP acknowledgements, ping replies) would be dropped", succ[b][0].span,
                          labels=labels,
                          help=help or [f"link a chain from `{b}` to `{a}`" if not syntax.upstream else
                                        f"link a path from `{b}` to `{a}` in {syntax.links_section}",
                                        "a one-way path on purpose (a UDP test) may ignore this warning"])


def _path_back(b: str, a: str, cells, syntax: Syntax) -> str:
    """How to add a path from `b` back to `a`, in the channel's own format."""
    if not syntax.upstream:
        return f"add a path back, e.g. `{b} -> delay {{ delay = 10ms }} -> {a}`"
    cell = next(n for n in ("down", "back", f"{b}_to_{a}") if n not in cells)
    if syntax.fmt == "yaml":
        decl = f"`{cell}: {{type: Delay, delay: 10ms}}` under `cells:`"
    else:
        decl = f'`[cells.{cell}]` with `type = "Delay"`, `delay = "10ms"`'
    return f"add a path back in {syntax.links_section}, e.g. {syntax.chain(b, cell, a)}, and a cell {decl}"


def _route_help(router: str, a: str, syntax: Syntax) -> str:
    """How to give routing cell `router` a route to endpoint `a`: a `route` record in `.rtn`;
    upstream, a `routing_table` entry for `a`'s addresses (left veth i is 10.1.i.x, right veth i
    10.2.i.x: rattan-env/src/env.rs) whose `interface_id` indexes `egress_connections`."""
    if not syntax.upstream:
        return f"add `route {{ prefix = {a}, port = N }}` to `{router}`, and link `{router}[N]` towards `{a}`"
    m = re.fullmatch(r"(left|right)(\d*)", a)
    if m is None:  # not an upstream veth name: no address to give
        return (f"add a `routing_table` entry for `{a}`'s addresses to `{router}`, whose `interface_id` "
                f"is the index of an `egress_connections` entry leading towards `{a}`")
    prefix = f"10.{1 if m.group(1) == 'left' else 2}.{m.group(2) or 1}.0/24"
    entry = (f"{{prefix: {prefix}, interface_id: N}}" if syntax.fmt == "yaml"
             else f'{{ prefix = "{prefix}", interface_id = N }}')
    return (f"add `{entry}` to the `routing_table` of `{router}`, with `egress_connections[N]` "
            f"leading towards `{a}`")


def _route(src: str, dst: str, succ, cells: dict[str, Cell], routing: dict[str, Routing],
           eps: set[str]) -> tuple[bool, list[Cell]]:
    """Whether a packet from `src` addressed to `dst` can reach `dst`; if not, the routing cells
    that had no way on for it."""
    def ports(node: str) -> set[int] | None:
        if node in routing:
            return _routed_ports(routing[node], cells[node].config, dst, eps)
        return None
    found, blocked = reaches(src, succ, eps, dst, ports)
    return found, [cells[n] for n in blocked]


def _routed_ports(routing: Routing, config, dst: str, eps: set[str]) -> set[int]:
    """The output ports a routing cell may send a packet addressed to endpoint `dst` to."""
    routes = routing.table(config)
    host = [r.get("port") for r in routes if r.get("prefix") == dst]
    if host:  # an endpoint's route holds only its addresses: the longest prefix, it wins (a drop route: none)
        return {p for p in host if p is not None}
    ports = {r["port"] for r in routes if r.get("prefix") not in eps and r.get("port") is not None}  # maybe
    default = routing.default_port(config)
    if default is not None:
        ports.add(default)
    return ports

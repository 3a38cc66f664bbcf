"""Pass `check_graph`: the cell graph of every channel is well formed.

Requires: `validate_params` (port counts depend on a cell's config, e.g. a router's routes).
Guarantees, each violation a diagnostic at the offending span: ports in range
(RTN044), no fan-out from a single output (RTN043), no cycle (RTN041), every
cell on a path from an endpoint to an endpoint (RTN042), every endpoint used
(RTN045, a warning) and every sending endpoint reaching another (RTN046),
route prefixes that name endpoints name real ones (RTN040). Which cells have several ports and
which route is read from their schemas (`x-rattan.outputs`, `x-rattan.routing`), never from type names.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable

from ..diagnostics import Label, did_you_mean
from ..ir.nodes import Channel, Link, Program
from .context import Context


def check_graph(prog: Program, ctx: Context) -> Program:
    for ch in prog.channels:
        _check_channel(ch, ctx)
    return prog


def output_counts(ch: Channel, ctx: Context) -> dict[str, int | None]:
    """Output ports per node (None when a cell's config is unknown after an error)."""
    counts: dict[str, int | None] = {e.name: 1 for e in ch.endpoints}
    for c in ch.cells:
        ct = ctx.registry.get(c.type)
        counts[c.name] = ct.output_count(c.config) if ct is not None and c.config is not None else None
    return counts


def _check_channel(ch: Channel, ctx: Context) -> None:
    sink = ctx.sink
    eps = {e.name for e in ch.endpoints}
    cells = {c.name: c for c in ch.cells}
    counts = output_counts(ch, ctx)
    if not ch.links:
        sink.emit("RTN048", f"channel `{ch.name}` links nothing", ch.name_span,
                  help="add a chain such as `left -> bw { rate = 10Mbps } -> right`")
        return
    # ports and fan-out
    used: dict[tuple[str, int], object] = {}
    for l in ch.links:
        n = counts.get(l.src)
        port = l.src_port
        if n is not None:
            if port is None and n > 1:
                sink.emit("RTN044", f"`{l.src}` has {n} outputs: say which one", l.span,
                          help=f"write `{l.src}[0]` ... `{l.src}[{n - 1}]`")
                continue
            if port is not None and port >= n:
                sink.emit("RTN044", f"`{l.src}` has no output {port}: "
                          + (f"its outputs are 0 to {n - 1}" if n > 1 else "its only output is 0"), l.span,
                          help=_ports_help(ctx.registry.get(cells[l.src].type)) if l.src in cells else "")
                continue
        key = (l.src, port or 0)
        if key in used:
            first = used[key]
            single = n == 1
            sink.emit("RTN043", f"`{l.src}{'' if single else f'[{port}]'}` already feeds another cell: "
                      "a plain output may feed only one place", l.span,
                      labels=[Label(first.span, "first use here")],
                      help="to send packets to several places, route them with a `router` cell")
        else:
            used[key] = l
    # route prefixes that name endpoints
    for c in ch.cells:
        ct = ctx.registry.get(c.type)
        routing = ct.routing() if ct is not None else None
        if routing is not None and c.config:
            for r in routing.table(c.config):
                p = r.get("prefix", "")
                if p.isidentifier() and p not in eps:
                    sugg = did_you_mean(p, eps)
                    sink.emit("RTN040", f"route prefix `{p}` is neither an address prefix nor an endpoint",
                              c.span, help=f"did you mean `{sugg}`?" if sugg else
                              "endpoints: " + ", ".join(sorted(eps)))
    succ = successors(ch.links)
    pred: dict[str, list] = defaultdict(list)
    for l in ch.links:
        pred[l.dst].append(l)
    # cycles among cells (endpoints end every path)
    color: dict[str, int] = {}
    for start in cells:
        if color.get(start):
            continue
        stack = [(start, iter(succ[start]))]
        color[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                continue
            d = nxt.dst
            if d in eps:
                continue
            if color.get(d) == 1:
                sink.emit("RTN041", f"packets from `{d}` come back to `{d}`: the cell graph has a cycle",
                          nxt.span, help="a channel's graph must be acyclic")
            elif not color.get(d):
                color[d] = 1
                stack.append((d, iter(succ[d])))
    # reachability
    fwd = _reach(eps, succ, lambda l: l.dst)
    bwd = _reach(eps, pred, lambda l: l.src)
    reported = set()  # each instance of a compound type repeats its body's spans: report them once
    for c in ch.cells:
        if (c.name not in fwd or c.name not in bwd) and c.span not in reported:
            reported.add(c.span)
            if not pred[c.name] and not succ[c.name]:
                msg = f"cell `{c.name}` is declared but never linked"
            elif c.name not in fwd:
                msg = f"cell `{c.name}` receives packets from no endpoint"
            else:
                msg = f"packets through `{c.name}` reach no endpoint"
            sink.emit("RTN042", msg, c.span, help="put it in a chain between two endpoints, or remove it")
    for e in ch.endpoints:
        if not succ[e.name] and not pred[e.name]:
            span = e.span if e.span.end > 0 else ch.name_span
            sink.emit("RTN045", f"endpoint `{e.name}` is never used", span,
                      help="link it in a chain, or remove it from `endpoints`")
        elif succ[e.name] and not reaches(e.name, succ, eps)[0]:
            sink.emit("RTN046", f"packets sent by `{e.name}` reach no endpoint", succ[e.name][0].span)


def _ports_help(ct) -> str:
    """How a cell with a config-dependent number of outputs gets them (from `x-rattan.outputs`)."""
    spec = ct.meta.get("outputs") if ct is not None else None
    if not isinstance(spec, dict) or not spec.get("max_of"):
        return ""
    params = list(dict.fromkeys(f"`{p.strip('/').split('/')[0]}`" for p in spec["max_of"]))
    return f"a {ct.name} has one output per port named in its {' and '.join(params)}"


def _reach(eps, edges, step) -> set[str]:
    seen = set(eps)
    todo = list(eps)
    while todo:
        n = todo.pop()
        for l in edges[n]:
            m = step(l)
            if m not in seen:
                seen.add(m)
                if m not in eps:
                    todo.append(m)
    return seen


def successors(links: Iterable[Link]) -> dict[str, list[Link]]:
    """The links out of each node, in source order."""
    succ: dict[str, list[Link]] = defaultdict(list)
    for link in links:
        succ[link.src].append(link)
    return succ


def reaches(src: str, succ: dict[str, list[Link]], eps, dst: str | None = None,
            ports: Callable[[str], set[int] | None] = lambda node: None) -> tuple[bool, list[str]]:
    """Whether a packet sent by endpoint `src` reaches endpoint `dst` (any endpoint when None).

    Another endpoint ends a path: its host does not forward. `ports(node)` is a node's routing
    decision for this packet, the output ports it may leave by (None: any). When the packet is not
    delivered, the second value names the nodes whose decision left it no way on.
    """
    seen, todo, blocked = {src}, [src], []
    while todo:
        node = todo.pop()
        links = succ[node]
        allowed = ports(node)
        if allowed is not None:
            links = [link for link in links if (link.src_port or 0) in allowed]
            if not links:
                blocked.append(node)
        for link in links:
            if link.dst == dst if dst is not None else link.dst in eps:
                return True, []
            if link.dst not in eps and link.dst not in seen:
                seen.add(link.dst)
                todo.append(link.dst)
    return False, blocked

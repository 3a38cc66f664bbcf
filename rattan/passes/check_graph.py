"""Pass `check_graph`: the cell graph of every channel is well formed.

Requires: `validate_params` (port counts depend on a cell's config, e.g. a router's routes).
Guarantees, each violation a diagnostic at the offending span: ports in range
(RTN044), no fan-out from a single output (RTN043), no cycle (RTN041), every
cell on a path from an endpoint to an endpoint (RTN042), every endpoint used
(RTN045, a warning) and every sending endpoint reaching another (RTN046),
route prefixes that name endpoints name real ones (RTN040). Which cells have several ports and
which route is read from their schemas (`x-rattan.outputs`, `x-rattan.routing`), never from type names.

In a channel read from upstream Rattan's TOML/YAML (`ast.File.format`), what upstream accepts is a
warning that says what upstream does, with the same codes: upstream builds every cell and forwards
only along `[links]` (rattan-core/src/radix/mod.rs `load_cells_config`/`link_cells`, core.rs
`spawn_rattan`: one forwarding task per link, none for a cell without a link out, whose packets are
then never taken out). So a cell that no endpoint's packets reach carries nothing, and a packet that
enters a cell with no way on to an endpoint is never delivered: unlinked cells, dead ends, and cycles
among such cells (RTN041, RTN042, RTN046) are warnings there, and `drop_idle_cells` leaves these
cells out of the program, which keeps upstream's meaning (the output that fed them drops instead).
A cycle on a path between endpoints stays an error in every format: upstream passes the packets it
routes into the cycle round it forever.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from typing import Callable, Iterable

from ..diagnostics import Label, did_you_mean
from ..ir.nodes import Channel, Link, Program
from ..source import Span
from ..syntax import ast
from .context import Context


UPSTREAM_FORMATS = ("toml", "yaml")


def check_graph(prog: Program, ctx: Context) -> Program:
    for ch in prog.channels:
        _check_channel(ch, ctx, Syntax(channel_format(prog, ch)), written_links(prog, ch))
    return prog


class Syntax:
    """How help text writes links in the format a channel came from: `.rtn` chains, or upstream's
    `[links]` table (TOML: `a = "b"`; YAML: `links: {a: b}`), so that a fix can be copied as is."""

    def __init__(self, fmt: str = "rtn"):
        self.fmt = fmt if fmt in UPSTREAM_FORMATS else "rtn"

    @property
    def upstream(self) -> bool:
        return self.fmt in UPSTREAM_FORMATS

    @property
    def links_section(self) -> str:
        return "`links:`" if self.fmt == "yaml" else "[links]"

    @property
    def cells_section(self) -> str:
        return "`cells:`" if self.fmt == "yaml" else "[cells]"

    def link(self, src: str, dst: str) -> str:
        return f"{src}: {dst}" if self.fmt == "yaml" else f'{src} = "{dst}"'

    def chain(self, *names: str) -> str:
        """The links `names[0]` to `names[1]` to ..., quoted as one example."""
        pairs = list(zip(names, names[1:]))
        if self.fmt == "rtn":
            return "`" + " -> ".join(names) + "`"
        if self.fmt == "yaml":
            return "`links: {" + ", ".join(self.link(a, b) for a, b in pairs) + "}`"
        return ", ".join(f"`{self.link(a, b)}`" for a, b in pairs)


def written_links(prog: Program, ch: Channel) -> int:
    """How many links the channel's source writes, counting those whose names did not resolve
    (name resolution reported them and left them out of `ch.links`)."""
    for u in prog.units:
        if u.file.source != ch.span.source:
            continue
        for st in u.file.body:
            if isinstance(st, ast.Channel) and st.name == ch.name and st.name_span == ch.name_span:
                return sum(len(c.elements) - 1 for c in st.body if isinstance(c, ast.Chain))
    return len(ch.links)


def channel_format(prog: Program, ch: Channel) -> str:
    """The format of the file a channel was written in: "rtn", "toml" or "yaml" (`ast.File.format`)."""
    for u in prog.units:
        if u.file.source == ch.span.source:
            return u.file.format
    return "rtn"


def idle_nodes(endpoints: Iterable[str], links: Iterable[tuple[str, str]]) -> set[str]:
    """The nodes (cells) on no path from an endpoint to an endpoint, given the links as
    (source, destination) pairs: no packet reaches them, or none that does reaches an endpoint.
    Endpoints are never idle. In upstream TOML/YAML such cells are left out of the program
    (`drop_idle_cells`); `rattan convert` leaves them out of the `.rtn` for the same plan."""
    eps = set(endpoints)
    succ: dict[str, list[str]] = defaultdict(list)
    pred: dict[str, list[str]] = defaultdict(list)
    nodes = set()
    for src, dst in links:
        succ[src].append(dst)
        pred[dst].append(src)
        nodes.update((src, dst))
    fwd = _reach(eps, succ, lambda n: n)
    bwd = _reach(eps, pred, lambda n: n)
    return {n for n in nodes - eps if n not in fwd or n not in bwd}


def drop_idle_cells(prog: Program, ctx: Context) -> Program:
    """Pass `drop_idle_cells`: in channels read from upstream TOML/YAML, remove the cells on no
    path between endpoints (check_graph warned about each) and every link into or out of them.

    Requires: `check_graph`, `load_traces` (an unlinked cell is still built upstream, so its trace
    file must exist). Guarantees: every remaining cell is on a path between endpoints; a packet that
    upstream would send into a removed cell (which it never leaves) is dropped by the node that
    sent it, at an output that now leads nowhere (`no_route`). `.rtn` channels are unchanged: there
    these cells are errors.
    """
    channels = []
    for ch in prog.channels:
        if channel_format(prog, ch) not in UPSTREAM_FORMATS:
            channels.append(ch)
            continue
        pinned = {chg.cell for chg in ch.timeline} | {n for k in ch.controllers for n in k.cells.values()}
        idle = idle_nodes((e.name for e in ch.endpoints), ((l.src, l.dst) for l in ch.links))
        idle |= {c.name for c in ch.cells} - {n for l in ch.links for n in (l.src, l.dst)}
        idle -= pinned
        if idle:
            ch = replace(ch, cells=tuple(c for c in ch.cells if c.name not in idle),
                         links=tuple(l for l in ch.links if l.src not in idle and l.dst not in idle))
        channels.append(ch)
    return replace(prog, channels=tuple(channels))


def output_counts(ch: Channel, ctx: Context) -> dict[str, int | None]:
    """Output ports per node (None when a cell's config is unknown after an error)."""
    counts: dict[str, int | None] = {e.name: 1 for e in ch.endpoints}
    for c in ch.cells:
        ct = ctx.registry.get(c.type)
        counts[c.name] = ct.output_count(c.config) if ct is not None and c.config is not None else None
    return counts


def _check_channel(ch: Channel, ctx: Context, syntax: Syntax = Syntax(), written: int = 0) -> None:
    sink = ctx.sink
    upstream = syntax.upstream
    eps = {e.name for e in ch.endpoints}
    cells = {c.name: c for c in ch.cells}
    counts = output_counts(ch, ctx)
    if not ch.links:
        if written:  # every link names an unknown cell or endpoint: name resolution said which
            return
        if upstream:  # core.rs `spawn_rattan`: SpawnError("No links specified") when `[links]` is empty
            sink.emit("RTN048", f"`{ch.name}` links nothing: upstream refuses to start without links "
                      "(\"No links specified\")", ch.span if ch.name_span.end == 0 else ch.name_span,
                      help=f"add a {syntax.links_section} section, e.g. "
                           + syntax.chain("left", "up", "right", "left"))
            return
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
                      help="to send packets to several places, route them with a `router` cell" if not upstream
                      else 'to send packets to several places, route them with a cell of `type = "Router"`')
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
                    at = _prefix_span(ctx, c.span, p)
                    sink.emit("RTN040", f"route prefix `{p}` is neither an address prefix nor an endpoint",
                              at or c.span, help=f"did you mean `{sugg}`?" if sugg else
                              "endpoints: " + ", ".join(sorted(eps)), fix=sugg if at and sugg else None)
    succ = successors(ch.links)
    pred: dict[str, list] = defaultdict(list)
    for l in ch.links:
        pred[l.dst].append(l)
    fwd = _reach(eps, succ, lambda l: l.dst)
    bwd = _reach(eps, pred, lambda l: l.src)
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
                # the cells of a cycle reach each other: one is on a path between endpoints iff all are
                if upstream and d not in fwd:
                    sink.emit("RTN041", f"cell `{d}` is on a cycle that no endpoint's packets reach: upstream "
                              "builds its cells, and they carry nothing", nxt.span,
                              severity="warning",
                              help="Rattan leaves them out of the plan; remove them, or link the cycle's "
                                   "cells between two endpoints")
                elif upstream and d not in bwd:
                    sink.emit("RTN041", f"packets that reach the cycle through `{d}` go round it and never reach "
                              "an endpoint: upstream passes them round it forever", nxt.span,
                              severity="warning",
                              help="Rattan drops them where they would enter the cycle; link a cell of the "
                                   "cycle to an endpoint instead")
                else:
                    sink.emit("RTN041", f"packets from `{d}` come back to `{d}`: the cell graph has a cycle",
                              nxt.span, help="a channel's graph must be acyclic" if not upstream else
                              ["a channel's graph must be acyclic: upstream passes the packets a router sends "
                               "into this cycle round it forever",
                               "link the cell that closes the cycle to an endpoint instead"])
            elif not color.get(d):
                color[d] = 1
                stack.append((d, iter(succ[d])))
    # reachability
    reported = set()  # each instance of a compound type repeats its body's spans: report them once
    for c in ch.cells:
        if (c.name not in fwd or c.name not in bwd) and c.span not in reported \
                and c.name not in ch.in_broken_chains:  # its chain's RTN040 is the error
            reported.add(c.span)
            if upstream:
                senders = {e for e in eps if c.name in _reach({e}, succ, lambda l: l.dst, stop=eps)}
                end = _an_endpoint(eps - senders or eps, "right")  # an example link on, not back
                _upstream_idle(c.name, c.span, pred, succ, fwd, sink, syntax, end,
                               routes=(ct := ctx.registry.get(c.type)) is not None and ct.routing() is not None)
                continue
            if not pred[c.name] and not succ[c.name]:
                msg = f"cell `{c.name}` is declared but never linked"
            elif c.name not in fwd:
                msg = f"cell `{c.name}` receives packets from no endpoint"
            else:
                msg = f"packets through `{c.name}` reach no endpoint"
            sink.emit("RTN042", msg, c.span, help="put it in a chain between two endpoints, or remove it")
    for e in ch.endpoints:
        if e.name in ch.in_broken_chains:
            continue  # used in a chain whose unknown name (RTN040) left its links out
        if not succ[e.name] and not pred[e.name]:
            span = e.span if e.span.end > 0 else ch.name_span
            sink.emit("RTN045", f"endpoint `{e.name}` is never used", span,
                      help=_unused_endpoint_help(e.name, eps, syntax))
        elif succ[e.name] and not reaches(e.name, succ, eps)[0]:
            if upstream:
                sink.emit("RTN046", f"packets sent by `{e.name}` reach no endpoint: upstream forwards them "
                          "into cells they never leave", succ[e.name][0].span, severity="warning",
                          help=f"Rattan drops what `{e.name}` sends; link a path from `{e.name}` to an "
                               "endpoint to deliver it")
            else:
                sink.emit("RTN046", f"packets sent by `{e.name}` reach no endpoint", succ[e.name][0].span)


_PREFIX = re.compile(r"""\bprefix\s*[=:]\s*["']?([A-Za-z_][A-Za-z0-9_]*)""")


def _prefix_span(ctx: Context, cell_span: Span, name: str) -> Span | None:
    """Where a route's `prefix = NAME` writes NAME inside the cell's text (.rtn, TOML or YAML), so that
    the finding points at it and its fix replaces just the name; None if it is not written there
    (a prefix from a `let`, or an expanded compound's)."""
    text = ctx.sources[cell_span.source].text
    for m in _PREFIX.finditer(text, cell_span.start, cell_span.end):
        if m.group(1) == name:
            return Span(cell_span.source, m.start(1), m.end(1))
    return None


def _unused_endpoint_help(name: str, eps: set[str], syntax: Syntax) -> str | list[str]:
    """RTN045's fix: in `.rtn`, link the endpoint or drop it from `endpoints`; in upstream TOML/YAML
    the endpoints are the veths `[env] left_veth_count`/`right_veth_count` make (`left`, or `left1`
    ... `leftN`), so the fix is a [links] line, or a lower count when it is the side's last veth."""
    if not syntax.upstream:
        return "link it in a chain, or remove it from `endpoints`"
    side = "left" if name.startswith("left") else "right"
    other = _an_endpoint(eps, "right" if side == "left" else "left")
    other = None if other.startswith(side) else other
    example = syntax.chain(name, "CELL", other) if other else syntax.chain(name, "CELL")
    helps = [f"link it in {syntax.links_section}, e.g. {example}, with `CELL` a cell under {syntax.cells_section}"]
    count = sum(1 for e in eps if e.startswith(side))
    if count > 1 and name == f"{side}{count}":
        key = f"{side}_veth_count"
        value = f"{key}: {count - 1}" if syntax.fmt == "yaml" else f"{key} = {count - 1}"
        helps.append(f"or, to have one {side} veth fewer, write `{value}` in " +
                     ("`env:`" if syntax.fmt == "yaml" else "[env]"))
    return helps


def _an_endpoint(eps: Iterable[str], side: str) -> str:
    """An endpoint to name in an example: the first of `side` (`right`, or `right1`), else any."""
    ordered = sorted(eps, key=lambda e: (not e.startswith(side), len(e), e))
    return ordered[0] if ordered else side


def _upstream_idle(name: str, span, pred, succ, fwd, sink, syntax: Syntax, end: str = "right",
                   routes: bool = False) -> None:
    """RTN042 as a warning in an upstream document: what upstream does with a cell on no path
    between endpoints, and what the plan does (drop_idle_cells leaves it out)."""
    if not pred[name] and not succ[name]:
        msg = f"cell `{name}` is in no link: upstream builds it and never sends it a packet"
        help = (f"Rattan leaves it out of the plan; link it in {syntax.links_section} between two endpoints, "
                "or remove it")
    elif name not in fwd:
        msg = f"no endpoint's packets reach cell `{name}`: upstream builds it, and it carries nothing"
        help = "Rattan leaves it out of the plan; link it from an endpoint, or remove it"
    elif not succ[name] and routes:  # a Router's outputs are its routed `egress_connections`
        msg = (f"cell `{name}` has no link out: upstream forwards packets into it and never takes them "
               "out, so they reach no endpoint")
        help = [f"Rattan drops them where they would enter `{name}`; give `{name}` a `routing_table` entry "
                "with an `interface_id`, the index of an `egress_connections` entry that leads to an endpoint",
                f"a {syntax.links_section} line from a Router does nothing upstream"]
    elif not succ[name]:
        msg = (f"cell `{name}` has no link out: upstream forwards packets into it and never takes them "
               "out, so they reach no endpoint")
        help = (f"Rattan drops them where they would enter `{name}`; add a link from `{name}` in "
                f"{syntax.links_section}, e.g. {syntax.chain(name, end)}")
    else:
        msg = (f"packets through cell `{name}` reach no endpoint: upstream forwards them on to cells "
               "they never leave")
        help = "Rattan drops them where they would enter it; link its chain on to an endpoint"
    sink.emit("RTN042", msg, span, severity="warning", help=help)


def _ports_help(ct) -> str:
    """How a cell with a config-dependent number of outputs gets them (from `x-rattan.outputs`)."""
    spec = ct.meta.get("outputs") if ct is not None else None
    if not isinstance(spec, dict) or not spec.get("max_of"):
        return ""
    params = list(dict.fromkeys(f"`{p.strip('/').split('/')[0]}`" for p in spec["max_of"]))
    return f"a {ct.name} has one output per port named in its {' and '.join(params)}"


def _reach(eps, edges, step, stop=None) -> set[str]:
    """The nodes reached from `eps` along `edges`; a path ends at an endpoint (`stop`: `eps`)."""
    stop = eps if stop is None else stop
    seen = set(eps)
    todo = list(eps)
    while todo:
        n = todo.pop()
        for l in edges[n]:
            m = step(l)
            if m not in seen:
                seen.add(m)
                if m not in stop:
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

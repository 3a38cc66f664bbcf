"""Lowering a channel body or a `cell type` body into cells, links and timeline changes.

Shared by `resolve_names` (channels) and `expand_compounds` (compound bodies), so
that both read chains, declarations and timelines by exactly the same rules.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

from ..diagnostics import Label, did_you_mean
from ..ir.nodes import Binding, Bound, Cell, Change, Endpoint, Link, Param, Scope
from ..source import Span
from ..syntax import ast
from .context import Context

DEFAULT_ENDPOINTS = ("left", "right")

# Cell type names a newcomer brings along, for RTN012's "did you mean": upstream Rattan's `type`s
# (rattan-core's cell configs, as rattan/frontends/upstream.py maps them) and everyday words for
# what a cell does (tc/netem, Mahimahi). Keys are compared lower-cased, without `_`.
_UPSTREAM_TYPES = {
    "bw": "bw", "bwreplay": "bw_trace", "delay": "delay", "delayreplay": "delay_trace",
    "delayperpacket": "delay_per_packet", "loss": "loss", "lossreplay": "loss_trace",
    "tokenbucket": "token_bucket", "router": "router", "shadow": "pass", "spy": "spy",
}
_OTHER_NAMES = {
    "bandwidth": "bw", "link": "bw", "rate": "bw", "throughput": "bw", "latency": "delay",
    "rtt": "delay", "jitter": "delay", "drop": "loss", "tbf": "token_bucket", "policer": "token_bucket",
    "shaper": "token_bucket", "capture": "spy", "pcap": "spy", "tcpdump": "spy", "route": "router",
}


def _type_suggestion(written: str, choices: list[str], ctx: Context) -> tuple[str | None, str | None]:
    """The cell type meant by an unknown one, and why it is meant (None, None if no guess)."""
    key = written.lower().replace("_", "")
    up = _UPSTREAM_TYPES.get(key)
    if up and written != up and "_" not in written and ctx.registry.get(up) is not None:
        return up, f"upstream Rattan's `{written}` is `{up}` here"
    sugg = did_you_mean(written, choices)
    if sugg:
        return sugg, None
    other = _OTHER_NAMES.get(key) or _OTHER_NAMES.get(did_you_mean(key, _OTHER_NAMES) or "")
    if other and ctx.registry.get(other) is not None:
        ct = ctx.registry.get(other)
        what = ct.description.split(":")[0].rstrip(".") if ct.description else ""
        return other, f"did you mean `{other}`?" + (f" ({what})" if what else "")
    return None, None


@dataclass
class Lowered:
    endpoints: tuple[Endpoint, ...]
    cells: tuple[Cell, ...]
    links: tuple[Link, ...]
    timeline: tuple[Change, ...]
    scope: Scope
    in_broken_chains: frozenset[str] = frozenset()


def bind_lets(stmts, parent: Scope | None, ctx: Context, base_dir: str | None,
              extra: dict[str, Binding] | None = None) -> Scope:
    """A scope holding the `let`s (and `cell type`s) of one body; redefinitions are RTN010."""
    names: dict[str, Binding] = dict(extra or {})
    scope = Scope(MappingProxyType(names), parent, base_dir)
    for st in stmts:
        if isinstance(st, ast.Let):
            name, span, b = st.name, st.name_span, Binding("let", st.name_span, expr=st.value, scope=scope)
        elif isinstance(st, ast.CellType):
            name, span, b = st.name, st.name_span, Binding("type", st.name_span, decl=st, scope=scope)
            _check_param_types(st, ctx)
        else:
            continue
        ctx.names.define(name, b.kind, span)
        if isinstance(st, ast.CellType):
            for prm in st.params:
                ctx.names.define(prm.name, "param", prm.name_span)
        if name in names:
            ctx.sink.emit("RTN010", f"`{name}` is defined twice in this scope", span,
                          labels=[Label(names[name].span, "first defined here")],
                          help="rename one of them")
            continue
        names[name] = b
    return scope


def _check_param_types(decl: ast.CellType, ctx: Context) -> None:
    """Every parameter of a compound type names a known type (RTN034)."""
    from .evaluate import PARAM_TYPES
    for p in decl.params:
        if p.type_name not in PARAM_TYPES:
            sugg = did_you_mean(p.type_name, PARAM_TYPES)
            ctx.sink.emit("RTN034", f"unknown type `{p.type_name}` for parameter `{p.name}`", p.type_span,
                          help=(f"did you mean `{sugg}`? " if sugg else "") + "types are "
                          + ", ".join(f"`{t}`" for t in sorted(PARAM_TYPES)), fix=sugg)


def resolve_type(name: ast.Name, scope: Scope, ctx: Context) -> tuple[str, Binding | None] | None:
    """A cell type name: a compound binding in scope, or a registry type. None if unknown."""
    parts = name.parts
    b = scope.lookup(parts[0])
    if len(parts) == 1:
        if b is not None and b.kind == "type":
            ctx.names.use(name.span, b.span)
            return parts[0], b
        if ctx.registry.get(parts[0]) is not None:
            return parts[0], None
    elif b is not None and b.kind == "module" and len(parts) == 2:
        inner = b.module.names.get(parts[1])
        if inner is not None and inner.kind == "type":
            ctx.names.use_parts(ctx.sources[name.span.source].text, name, (b.span, inner.span))
            return name.text, inner
    choices = ctx.registry.names() + scope.names_of_kind("type")
    sugg, why = _type_suggestion(name.text, choices, ctx)
    ctx.sink.emit("RTN012", f"unknown cell type `{name.text}`", name.span,
                  help=why or (f"did you mean `{sugg}`?" if sugg else "`rattan cells` lists every cell type"),
                  fix=sugg)
    return None


def _params(fields: tuple[ast.Field, ...], scope: Scope, ctx: Context) -> tuple[Param, ...]:
    seen: dict[str, Span] = {}
    out = []
    for f in fields:
        if f.name in seen:
            ctx.sink.emit("RTN015", f"parameter `{f.name}` is given twice", f.name_span,
                          labels=[Label(seen[f.name], "first given here")])
            continue
        seen[f.name] = f.name_span
        out.append(Param(f.name, f.name_span, Bound(f.value, scope), f.span))
    return tuple(out)


def lower_body(body, scope: Scope, prefix: str, ctx: Context, *, compound: bool, fmt: str = "rtn") -> Lowered:
    """Cells, links and changes of one body. Names get `prefix` (``"up."`` inside compounds)."""
    sink = ctx.sink
    endpoints: list[Endpoint] = []
    ep_stmt = None
    for st in body:
        if isinstance(st, ast.Endpoints):
            if compound:
                sink.emit("RTN033", "a `cell type` has the fixed endpoints `in` and `out`", st.span)
                continue
            if ep_stmt is not None:
                sink.emit("RTN010", "`endpoints` is given twice in this channel", st.span,
                          labels=[Label(ep_stmt.span, "first given here")])
                continue
            ep_stmt = st
            seen: dict[str, Span] = {}
            for n, sp in st.names:
                if n in seen:
                    sink.emit("RTN010", f"endpoint `{n}` is named twice", sp,
                              labels=[Label(seen[n], "first named here")])
                    continue
                seen[n] = sp
                endpoints.append(Endpoint(n, sp))
                ctx.names.define(n, "endpoint", sp)
    if compound:
        endpoints = [Endpoint("in", Span(0, 0, 0)), Endpoint("out", Span(0, 0, 0))]
    elif ep_stmt is None:
        endpoints = [Endpoint(n, Span(0, 0, 0)) for n in DEFAULT_ENDPOINTS]
    ep_names = {e.name for e in endpoints}
    ep_span = {e.name: e.span for e in endpoints}

    cells: dict[str, Cell] = {}
    cell_spans: dict[str, Span] = {}
    for st in body:
        if not isinstance(st, ast.CellDecl):
            continue
        if st.name in ep_names:
            sink.emit("RTN010", f"`{st.name}` is already an endpoint of this "
                      f"{'cell type' if compound else 'channel'}", st.name_span)
            continue
        if st.name in cells:
            sink.emit("RTN010", f"cell `{st.name}` is declared twice", st.name_span,
                      labels=[Label(cell_spans[st.name], "first declared here")])
            continue
        cell_spans[st.name] = st.name_span
        ctx.names.define(st.name, "cell", st.name_span)
        cells[st.name] = replace(_make_cell(prefix + st.name, st.type, st.params, st.span, scope, ctx, False),
                                 name_spans=(st.name_span,), incomplete=st.incomplete)

    anon_count: dict[str, int] = {}
    links: list[Link] = []
    local_to_full = {n: prefix + n for n in cells}
    for e in endpoints:
        local_to_full[e.name] = e.name if not compound else e.name

    def element_node(el) -> str | None:
        if isinstance(el, ast.Inline):
            base = el.type.parts[-1]
            while True:
                anon_count[base] = anon_count.get(base, 0) + 1
                local = f"{base}_{anon_count[base]}" if not compound or anon_count[base] > 1 else base
                if local not in cells and local not in ep_names:
                    break
            cell = replace(_make_cell(prefix + local, el.type, el.params, el.span, scope, ctx, True),
                           incomplete=el.incomplete)
            cells[local] = cell
            local_to_full[local] = prefix + local
            return local
        name = el.name
        if len(name.parts) != 1:
            sink.emit("RTN040", f"`{name.text}` is not a cell or endpoint of this "
                      f"{'cell type' if compound else 'channel'}", name.span,
                      help="declare a compound cell first: `cell x: " + name.text + " { ... }`")
            return None
        n = name.parts[0]
        if n in cells or n in ep_names:
            ctx.names.use(name.span, cell_spans.get(n) or ep_span.get(n))
            return n
        sugg = did_you_mean(n, list(cells) + list(ep_names))
        helps = [f"did you mean `{sugg}`?"] if sugg else []
        if not sugg and not compound and not ep_stmt and n not in DEFAULT_ENDPOINTS:
            helps.append("declare it with `cell NAME: TYPE { ... }` or list it in `endpoints`")
        b = scope.lookup(n)
        if fmt in ("toml", "yaml"):  # upstream's [links] name cells by their id in [cells]
            if not sugg:
                decl = f"`{n}: {{type: ...}}` under `cells:`" if fmt == "yaml" else f"`[cells.{n}]` with its `type`"
                helps = [f"declare the cell as {decl}"]
        elif b is not None and b.kind == "type" or ctx.registry.get(n) is not None:
            helps = [f"`{n}` is a cell type: write `{n} {{ ... }}` for an anonymous cell"]
            sugg = None  # `a -> bw -> b` meant the type: recovering as a near name (`b`) invents links
        fix = sugg
        if sugg and fmt in ("toml", "yaml"):  # the span may hold the quoted string: keep its quotes
            written = ctx.sources[name.span.source].text[name.span.start:name.span.end]
            if len(written) >= 2 and written[0] == written[-1] and written[0] in "\"'":
                fix = written[0] + sugg + written[0]
        sink.emit("RTN040", f"unknown cell or endpoint `{n}`", name.span, help=helps, fix=fix)
        return sugg  # recover as the suggested name, so that the rest of the graph is checked as meant

    # What a chain with an unknown name (RTN040) links: its links are partly missing, so that
    # "never used" or "reaches no endpoint" about these would only repeat RTN040 (check_graph).
    in_broken_chains: set[str] = set()
    for st in body:
        if not isinstance(st, ast.Chain):
            continue
        nodes = [element_node(el) for el in st.elements]
        written = [isinstance(el, ast.Inline) or (len(el.name.parts) == 1 and el.name.parts[0] == n)
                   for el, n in zip(st.elements, nodes)]
        if not all(written):  # unknown, or recovered as the name it is close to
            in_broken_chains.update(local_to_full[n] for n in nodes if n is not None)
        for i in range(len(st.elements) - 1):
            a, b = nodes[i], nodes[i + 1]
            ea, eb = st.elements[i], st.elements[i + 1]
            if a is not None and a == b and not (written[i] and written[i + 1]):
                continue  # `b -> b2` recovered as `b -> b`: a cycle of the recovery's making
            port = ea.port if isinstance(ea, ast.Ref) else None
            if isinstance(eb, ast.Ref) and eb.port is not None and i + 1 == len(st.elements) - 1:
                sink.emit("RTN044", "a port selects an output; the last element of a chain only receives",
                          eb.span, help=f"write `{eb.name.text}` without `[{eb.port}]`")
            if a is None or b is None:
                continue
            if port is not None and a in ep_names:
                sink.emit("RTN044", f"endpoint `{a}` has a single output; it takes no port", ea.span)
                port = None
            if compound and a == "out":
                sink.emit("RTN033", "`out` only receives: nothing can follow it", ea.span)
                continue
            if compound and b == "in":
                sink.emit("RTN033", "`in` only sends: nothing can lead into it", eb.span)
                continue
            links.append(Link(local_to_full[a], port, local_to_full[b],
                              ea.span.to(eb.span)))

    timeline: list[Change] = []
    for st in body:
        if isinstance(st, (ast.At, ast.Every)):
            if compound:
                sink.emit("RTN033", "timelines belong in a channel, not in a `cell type`", st.span)
                continue
            for asg in st.assigns:
                parts = asg.target.parts
                if len(parts) < 2:
                    sink.emit("RTN060", f"`{asg.target.text}` names no parameter: write `CELL.PARAM`",
                              asg.target.span)
                    continue
                ch = Change(".".join(parts[:-1]), parts[-1], Bound(asg.value, scope),
                            asg.target.span, asg.span)
                if isinstance(st, ast.At):
                    ch = Change(ch.cell, ch.param, ch.value, ch.target_span, ch.span, at=Bound(st.time, scope))
                else:
                    ch = Change(ch.cell, ch.param, ch.value, ch.target_span, ch.span,
                                period=Bound(st.period, scope), duration=Bound(st.duration, scope))
                timeline.append(ch)
        elif isinstance(st, ast.Import):
            sink.emit("RTN001", "`import` belongs at the top of a file", st.span)
        elif isinstance(st, ast.Channel):
            sink.emit("RTN001", "a channel cannot be defined inside another channel or cell type", st.span)
        elif isinstance(st, ast.CellType) and not compound:
            pass  # a cell type local to a channel: bound by bind_lets

    return Lowered(tuple(endpoints), tuple(cells.values()), tuple(links), tuple(timeline), scope,
                   frozenset(in_broken_chains))


def _make_cell(full_name: str, type_name: ast.Name, fields, span: Span, scope: Scope,
               ctx: Context, anonymous: bool) -> Cell:
    resolved = resolve_type(type_name, scope, ctx)
    params = _params(fields, scope, ctx)
    if resolved is None:
        return Cell(full_name, "?" + type_name.text, params, span, type_name.span, anonymous)
    tname, binding = resolved
    return Cell(full_name, tname, params, span, type_name.span, anonymous, compound=binding)

"""Pass `expand_compounds`: replace every compound cell instance by its inner cells.

Requires: `resolve_names`.
Guarantees: no cell has a `compound` binding; inner cells are named
`INSTANCE.INNER` (`up.bw`), carry `origin`/`origin_span` pointing at the user's
instance, and links into/out of an instance are rewired to the cells after `in`
and before `out`. Arguments are checked against the type's parameter list
(RTN013 unknown, RTN014 missing); recursion is RTN032.
"""
from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from ..diagnostics import Label, did_you_mean
from ..ir.nodes import Binding, Cell, Channel, Link, Program, Scope
from .context import Context
from .lower_body import bind_lets, lower_body

MAX_EXPANSION_DEPTH = 64


def expand_compounds(prog: Program, ctx: Context) -> Program:
    return replace(prog, channels=tuple(_expand_channel(ch, ctx) for ch in prog.channels))


def _expand_channel(ch: Channel, ctx: Context) -> Channel:
    cells, links = list(ch.cells), list(ch.links)
    if not any(c.compound for c in cells):
        return ch
    cells, links = _expand(cells, links, ctx, ())
    return replace(ch, cells=tuple(cells), links=tuple(links))


def _expand(cells: list[Cell], links: list[Link], ctx: Context, stack: tuple) -> tuple[list[Cell], list[Link]]:
    out_cells: list[Cell] = []
    for cell in cells:
        if cell.compound is None:
            out_cells.append(cell)
            continue
        decl = cell.compound.decl
        if any(d is decl for d in stack) or len(stack) >= MAX_EXPANSION_DEPTH:
            ctx.sink.emit("RTN032", f"cell type `{decl.name}` contains itself", cell.type_span,
                          labels=[Label(decl.name_span, "defined here")],
                          help="a compound cell type may not use itself, directly or through others")
            continue
        inner_cells, inner_links, ins, outs = _instantiate(cell, ctx)
        inner_cells, inner_links = _expand(inner_cells, inner_links, ctx, stack + (decl,))
        origin = cell.origin or cell.name
        origin_span = cell.origin_span or cell.span
        # Inner cells of a named instance are addressable (`up.bw`): they are not anonymous.
        out_cells.extend(replace(c, origin=c.origin or origin, origin_span=c.origin_span or origin_span,
                                 anonymous=c.anonymous and cell.anonymous,
                                 name_spans=cell.name_spans + c.name_spans if cell.name_spans and c.name_spans
                                 else ())
                         for c in inner_cells)
        links = _rewire(links, cell.name, ins, outs) + inner_links
    return out_cells, links


def _instantiate(cell: Cell, ctx: Context):
    """Bind arguments to the type's parameters and lower its body under the instance's name."""
    binding = cell.compound
    decl = binding.decl
    declared = {p.name: p for p in decl.params}
    names: dict[str, Binding] = {}
    for p in cell.params:
        if p.name not in declared:
            sugg = did_you_mean(p.name, declared)
            ctx.sink.emit("RTN013", f"cell type `{decl.name}` has no parameter `{p.name}`", p.name_span,
                          labels=[Label(decl.name_span, f"`{decl.name}` is defined here")],
                          help=f"did you mean `{sugg}`?" if sugg else
                          f"its parameters are {', '.join(declared) or 'none'}", fix=sugg)
            continue
        ctx.names.use(p.name_span, declared[p.name].name_span)
        names[p.name] = Binding("param", p.name_span, expr=p.value.expr, scope=p.value.scope,
                                declared_type=declared[p.name].type_name, declared_at=declared[p.name].name_span)
    for name, pd in declared.items():
        if name in names:
            continue
        if pd.default is None:
            if not cell.incomplete:  # else the syntax error in its braces is the error to fix
                ctx.sink.emit("RTN014", f"missing parameter `{name}` of cell type `{decl.name}`", cell.type_span,
                              labels=[Label(pd.span, "declared here without a default")],
                              help=f"add `{name} = ...`")
            # Bound to nothing, so that its uses inside the body fail without more errors.
            names[name] = Binding("param", pd.name_span, expr=None, scope=binding.scope,
                                  declared_type=pd.type_name)
            continue
        names[name] = Binding("param", pd.name_span, expr=pd.default, scope=binding.scope,
                              declared_type=pd.type_name)
    param_scope = Scope(MappingProxyType(names), binding.scope, binding.scope.base_dir if binding.scope else None)
    scope = bind_lets(decl.body, param_scope, ctx, param_scope.base_dir)
    low = lower_body(decl.body, scope, cell.name + ".", ctx, compound=True)
    ins = [l.dst for l in low.links if l.src == "in"]
    outs = [(l.src, l.src_port) for l in low.links if l.dst == "out"]
    through = any(l.src == "in" and l.dst == "out" for l in low.links)
    if not ins:
        ctx.sink.emit("RTN033", f"cell type `{decl.name}` never uses `in`", decl.name_span,
                      help="start a chain with `in -> ...`")
    if not outs:
        ctx.sink.emit("RTN033", f"cell type `{decl.name}` never reaches `out`", decl.name_span,
                      help="end a chain with `... -> out`")
    inner_links = [l for l in low.links if l.src != "in" and l.dst != "out"]
    ins = [d for d in ins if d != "out"]
    outs = [o for o in outs if o[0] != "in"]
    if through:
        ins.append(None)  # marks a direct in -> out path
    return list(low.cells), inner_links, ins, outs


def _rewire(links: list[Link], name: str, ins, outs) -> list[Link]:
    """Links into and out of a compound instance, moved to its inner cells."""
    result = []
    incoming = [l for l in links if l.dst == name]
    outgoing = [l for l in links if l.src == name]
    for l in links:
        if l.dst == name or l.src == name:
            continue
        result.append(l)
    for l in incoming:
        for d in ins:
            if d is not None:
                result.append(replace(l, dst=d))
    for l in outgoing:
        for src, port in outs:
            result.append(replace(l, src=src, src_port=port))
        if None in ins:
            for li in incoming:
                result.append(Link(li.src, li.src_port, l.dst, li.span))
    return result

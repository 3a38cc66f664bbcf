"""Pass `resolve_names`: build lexical scopes and lower every channel to cells and links.

Requires: all units loaded (`load_imports`).
Guarantees: every channel's chain elements name a declared cell, an inline cell or an
endpoint (else RTN040); every cell's type is a registry type or a compound binding
(else RTN012); `let`s are bound per scope (RTN010 on redefinition). Parameter
expressions are left unevaluated, bound to their scope.
"""
from __future__ import annotations

import os
from dataclasses import replace
from types import MappingProxyType

from ..diagnostics import Label
from ..ir.nodes import Binding, Channel, Program, Scope
from ..syntax import ast
from .context import Context
from .lower_body import bind_lets, lower_body


def file_scopes(prog: Program, ctx: Context) -> list[Scope]:
    """One scope per unit: its own lets and cell types over what plain imports bring in."""
    scopes: list[Scope | None] = [None] * len(prog.units)

    def build(i: int, active: set[int]) -> Scope:
        if scopes[i] is not None:
            return scopes[i]
        unit = prog.units[i]
        base = os.path.dirname(unit.path) if unit.path else None
        imported: dict[str, Binding] = {}
        modules: dict[str, Binding] = {}
        for stmt, j in unit.imports:
            if j in active:  # cycle: reported by load_imports
                continue
            other = build(j, active | {i})
            if stmt.alias:
                if stmt.alias in modules:
                    ctx.sink.emit("RTN010", f"`{stmt.alias}` is defined twice in this scope",
                                  stmt.alias_span, labels=[Label(modules[stmt.alias].span, "first defined here")])
                    continue
                modules[stmt.alias] = Binding("module", stmt.alias_span, module=other)
                ctx.names.define(stmt.alias, "module", stmt.alias_span)
            else:
                for name, b in other.names.items():
                    if b.kind in ("let", "type"):
                        imported.setdefault(name, b)
        parent = Scope(MappingProxyType(imported), None, base) if imported else None
        scope = bind_lets(unit.file.body, parent, ctx, base, extra=modules)
        scopes[i] = scope
        return scope

    return [build(i, {i}) for i in range(len(prog.units))]


def resolve_names(prog: Program, ctx: Context) -> Program:
    if not prog.units:
        return prog
    scopes = file_scopes(prog, ctx)
    entry = prog.units[0]
    channels: list[Channel] = []
    seen: dict[str, Channel] = {}
    for st in entry.file.body:
        if not isinstance(st, ast.Channel):
            if isinstance(st, (ast.CellDecl, ast.Chain, ast.Endpoints, ast.At, ast.Every)):
                ctx.sink.emit("RTN001", "this statement belongs inside a `channel NAME { ... }`", st.span)
            continue
        if st.name in seen:
            ctx.sink.emit("RTN047", f"channel `{st.name}` is defined twice", st.name_span,
                          labels=[Label(seen[st.name].name_span, "first defined here")])
            continue
        scope = bind_lets(st.body, scopes[0], ctx, scopes[0].base_dir)
        low = lower_body(st.body, scope, "", ctx, compound=False, fmt=entry.file.format)
        ch = Channel(st.name, st.name_span, low.endpoints, low.cells, low.links, low.timeline, st.span,
                     in_broken_chains=low.in_broken_chains)
        seen[st.name] = ch
        channels.append(ch)
    for unit in prog.units[1:]:
        for st in unit.file.body:
            if isinstance(st, (ast.Channel, ast.CellDecl, ast.Chain, ast.Endpoints, ast.At, ast.Every)):
                ctx.sink.emit("RTN001", "an imported file may only hold `let`, `cell type` and `import`",
                              st.span)
    settings = MappingProxyType(dict(entry.file.settings))
    return replace(prog, channels=tuple(channels), settings=settings)

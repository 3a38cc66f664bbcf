"""Pass `check_timeline`: every timeline change names a runtime-changeable parameter.

Requires: `validate_params`.
Guarantees: each Change has integer-ns `at` or `period`/`duration`, names an
existing cell and a parameter its schema marks `x-runtime` (RTN060, RTN061),
and its value converted to base units by that parameter's schema; periods
are positive and longer than their window (RTN062).
"""
from __future__ import annotations

from dataclasses import replace

from ..diagnostics import did_you_mean
from ..ir.nodes import Program
from ..ir.values import QtyV
from ..syntax import ast
from ..units import TIME
from .context import Context
from .validate_params import Converter, _Bad


def _time(v, what: str, ctx: Context) -> int | None:
    if isinstance(v, QtyV) and v.q.dim == TIME:
        ns = v.q.to_plan()
        if ns < 0:
            ctx.sink.emit("RTN062", f"{what} must not be negative", v.span)
            return None
        return ns
    ctx.sink.emit("RTN021", f"{what} must be a time, found {v.describe()}", v.span,
                  help="e.g. `10s` or `500ms`")
    return None


def check_timeline(prog: Program, ctx: Context) -> Program:
    channels = []
    for ch in prog.channels:
        cells = {c.name: c for c in ch.cells} | {k.cell.name: k.cell for k in ch.controllers}  # Python cells too
        out = []
        for chg in ch.timeline:
            cell = cells.get(chg.cell)
            if cell is None:
                sugg = did_you_mean(chg.cell, cells)
                ctx.sink.emit("RTN060", f"no cell `{chg.cell}` in channel `{ch.name}`", chg.target_span,
                              help=f"did you mean `{sugg}.{chg.param}`?" if sugg else
                              "name a declared cell: anonymous cells cannot be changed",
                              fix=f"{sugg}.{chg.param}" if sugg else None)
                continue
            if cell.name_spans:  # `up.bw.rate`: `up` and `bw` name the cells declared there
                target = ast.Name(tuple(chg.cell.split(".")) + (chg.param,), chg.target_span)
                ctx.names.use_parts(ctx.sources[chg.target_span.source].text, target, cell.name_spans)
            if cell.anonymous:
                ctx.sink.emit("RTN060", f"`{chg.cell}` is an anonymous cell", chg.target_span,
                              help="declare it with `cell NAME: ...` to change it over time")
                continue
            ct = ctx.registry.get(cell.type)
            if ct is None:
                continue
            if chg.param not in ct.properties:
                sugg = did_you_mean(chg.param, ct.properties)
                ctx.sink.emit("RTN060", f"`{cell.type}` has no parameter `{chg.param}`", chg.target_span,
                              help=f"did you mean `{chg.cell}.{sugg}`?" if sugg else "",
                              fix=f"{chg.cell}.{sugg}" if sugg else None)
                continue
            if chg.param not in ct.runtime_params():
                rt = ct.runtime_params()
                ctx.sink.emit("RTN061", f"`{cell.type}.{chg.param}` cannot change while running",
                              chg.target_span, help=("parameters that can: " + ", ".join(f"`{p}`" for p in rt))
                              if rt else f"no parameter of `{cell.type}` can")
                continue
            conv = Converter(ctx, cell)
            try:
                value = conv.convert(chg.value, ct.properties[chg.param], (chg.param,), f"`{chg.param}`")
            except _Bad:
                continue
            if chg.at is not None:
                at = _time(chg.at, "the time of `at`", ctx)
                if at is None:
                    continue
                out.append(replace(chg, value=value, at=at))
            else:
                period = _time(chg.period, "the period of `every`", ctx)
                dur = _time(chg.duration, "the window of `for`", ctx)
                if period is None or dur is None:
                    continue
                if period == 0:
                    ctx.sink.emit("RTN062", "the period of `every` must be longer than 0s", chg.period.span)
                    continue
                if dur >= period:
                    ctx.sink.emit("RTN062", "the window of `for` must be shorter than the period",
                                  chg.duration.span, help="otherwise the value would never be restored")
                    continue
                out.append(replace(chg, value=value, period=period, duration=dur))
        channels.append(replace(ch, timeline=tuple(out)))
    return replace(prog, channels=tuple(channels))

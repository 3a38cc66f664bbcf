"""Pass `set_lets`: give `let`s of the entry file values from outside the file.

`rattan check/compile/sim/run --let NAME=VALUE`, `rattan.compile(path, lets={...})` and the sweep
axes of `rattan batch` set a `let` of the file being compiled; the file keeps its own value as
the default. Each VALUE is a .rtn expression ("2Mbps", "[10ms, 20ms]", "\"cubic\""), parsed as
if written in the file, so a value of the wrong dimension or type is reported by the passes that
check the file's own values, pointing into the value given.

Requires: a Program whose first unit is the parsed entry file (runs before `load_imports`).
Guarantees: every `let NAME` of the entry file (at file scope, and in channels) named in
`options.lets` has the given expression as its value; a name the file does not define, or a
value that does not parse, is an error (RTN091, or the parser's own).
"""
from __future__ import annotations

from dataclasses import replace

from ..diagnostics import did_you_mean
from ..ir.nodes import Program
from ..syntax import ast
from .context import Context

NAME_PREFIX = "--let "  # the pseudo-file a value is read from, as diagnostics show it


def _lets_of(body) -> list[ast.Let]:
    """Every `let` at file scope and at the scope of each channel, in file order."""
    out = [st for st in body if isinstance(st, ast.Let)]
    out += [st for ch in body if isinstance(ch, ast.Channel) for st in ch.body if isinstance(st, ast.Let)]
    return out


def _parse_value(name: str, text: str, ctx: Context):
    """The expression of `--let NAME=TEXT` and the span of NAME, or None after a parse error."""
    from ..syntax.parser import parse
    src = ctx.sources.add(f"{NAME_PREFIX}{name}", f"let {name} = {text}\n", None)
    errors_before = sum(d.is_error for d in ctx.sink.items)
    file = parse(src, ctx.sink)
    lets = [st for st in file.body if isinstance(st, ast.Let)]
    if sum(d.is_error for d in ctx.sink.items) > errors_before or len(file.body) != 1 or not lets:
        if sum(d.is_error for d in ctx.sink.items) == errors_before:
            ctx.sink.emit("RTN001", f"`{text}` is not one value", file.span,
                          help="give one expression, e.g. --let rate=2Mbps")
        return None
    return lets[0]


def set_lets(prog: Program, ctx: Context) -> Program:
    given = getattr(ctx.options, "lets", None) or {}
    if not given or not prog.units:
        return prog
    entry = prog.units[0]
    known = _lets_of(entry.file.body)
    names = list(dict.fromkeys(st.name for st in known))
    values = {}
    for name, text in given.items():
        text = str(text)
        new = _parse_value(name, text, ctx)
        if new is None:
            continue
        if name not in names:
            guess = did_you_mean(name, names)
            helps = [f"did you mean `{guess}`?"] if guess else []
            helps.append(f"the file's lets: {', '.join(names)}" if names else
                         "the file defines no `let` (only a .rtn file has lets)")
            ctx.sink.emit("RTN091", f"the file has no `let {name}` to set", new.name_span, help=helps)
            continue
        values[name] = new.value

    def swap(st):
        if isinstance(st, ast.Let) and st.name in values:
            return replace(st, value=values[st.name])
        if isinstance(st, ast.Channel):
            return replace(st, body=tuple(swap(s) for s in st.body))
        return st

    if not values:
        return prog
    file = replace(entry.file, body=tuple(swap(st) for st in entry.file.body))
    return replace(prog, units=(replace(entry, file=file), *prog.units[1:]))

"""Pass `load_imports`: read the entry file and, transitively, every file it imports.

Requires: a Program whose first unit is the parsed entry file.
Guarantees: every `import` is resolved to a loaded unit, or reported as missing
(RTN030) or cyclic (RTN031); each file is parsed once.
"""
from __future__ import annotations

import os
from dataclasses import replace

from ..ir.nodes import Program, Unit
from ..syntax import ast
from .context import Context
from .reading import read_source


def load_imports(prog: Program, ctx: Context) -> Program:
    units: list[Unit] = list(prog.units)
    by_path = {u.path: i for i, u in enumerate(units) if u.path}
    i = 0
    while i < len(units):
        unit = units[i]
        base = os.path.dirname(unit.path) if unit.path else os.getcwd()
        imports = []
        for stmt in unit.file.body:
            if not isinstance(stmt, ast.Import):
                continue
            target = os.path.normpath(os.path.join(base, stmt.path.value))
            if target not in by_path:
                if not os.path.isfile(target):
                    hint = "the path is relative to the importing file"
                    if os.path.isdir(target):
                        hint = "that is a directory, not a file"
                    ctx.sink.emit("RTN030", f"cannot import `{stmt.path.value}`: no such file",
                                  stmt.path.span, help=hint)
                    continue
                # Shown relative to the importer as the user named it: stable across machines.
                importer = ctx.sources[unit.file.source].name
                shown = os.path.normpath(os.path.join(os.path.dirname(importer), stmt.path.value))
                src = read_source(ctx, target, shown, stmt.path.span)
                if src is None:
                    continue
                from ..syntax.parser import parse
                by_path[target] = len(units)
                units.append(Unit(target, parse(src, ctx.sink), ()))
            imports.append((stmt, by_path[target]))
        units[i] = replace(unit, imports=tuple(imports))
        i += 1
    _report_cycles(units, ctx)
    return replace(prog, units=tuple(units))


def _report_cycles(units: list[Unit], ctx: Context) -> None:
    state = [0] * len(units)  # 0 new, 1 on stack, 2 done

    def visit(i: int, stack: list[tuple[ast.Import, int]]) -> None:
        state[i] = 1
        for stmt, j in units[i].imports:
            if state[j] == 1:
                chain = [os.path.basename(units[k].path or "?") for _, k in stack] + [
                    os.path.basename(units[j].path or "?")]
                ctx.sink.emit("RTN031", f"import cycle: `{stmt.path.value}` is already being imported"
                              f" ({' -> '.join(chain)})", stmt.path.span,
                              help="a file may not import itself, directly or through other files")
            elif state[j] == 0:
                visit(j, stack + [(stmt, j)])
        state[i] = 2

    for i in range(len(units)):
        if state[i] == 0:
            visit(i, [])

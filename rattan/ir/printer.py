"""A readable text form of the IR, for `--dump-after PASS` and for tests to assert on."""
from __future__ import annotations

import json

from .nodes import Bound, Program
from .values import BoolV, ListV, QtyV, RecV, StrV, SymV


def value_text(v) -> str:
    """A folded value or a still-bound expression, briefly."""
    if isinstance(v, Bound):
        return f"<expr @{v.expr.span.start}>"
    if isinstance(v, QtyV):
        return v.q.pretty()
    if isinstance(v, BoolV):
        return "true" if v.value else "false"
    if isinstance(v, StrV):
        return json.dumps(v.value)
    if isinstance(v, SymV):
        return v.name
    if isinstance(v, RecV):
        return v.kind + " { " + ", ".join(f"{n} = {value_text(x)}" for n, _, x in v.fields) + " }"
    if isinstance(v, ListV):
        return "[" + ", ".join(value_text(x) for x in v.items) + "]"
    return json.dumps(v, sort_keys=True, default=str)


def program_text(prog: Program) -> str:
    """Every unit, channel, cell, link and change of a program, one per line."""
    out = []
    for i, u in enumerate(prog.units):
        imports = ", ".join(f"{s.path.value}->#{j}" for s, j in u.imports)
        out.append(f"unit #{i} {u.path or '<text>'}" + (f" imports {imports}" if imports else ""))
    for ch in prog.channels:
        out.append(f"channel {ch.name} endpoints {', '.join(e.name for e in ch.endpoints)}")
        for c in ch.cells:
            flags = [f for f, on in (("anonymous", c.anonymous), (f"from {c.origin}", c.origin),
                                     ("compound", c.compound)) if on]
            head = f"  cell {c.name}: {c.type}" + (f" [{', '.join(flags)}]" if flags else "")
            if c.config is not None:
                body = json.dumps(dict(c.config), sort_keys=True, default=str)
            else:
                body = "{" + ", ".join(f"{p.name} = {value_text(p.value)}" for p in c.params) + "}"
            out.append(head + " " + body + (" +trace" if c.trace is not None else ""))
        for l in ch.links:
            port = f"[{l.src_port}]" if l.src_port is not None else ""
            out.append(f"  link {l.src}{port} -> {l.dst}")
        for k in ch.controllers:  # Python cells, after expand_python_cells
            inner = ", ".join(f"{n}={c}" for n, c in k.cells.items())
            out.append(f"  python {k.cell.name}: {k.cell.type} {k.python} tick {k.tick_ns} cells {inner} "
                       + json.dumps(dict(k.cell.config), sort_keys=True, default=str))
        if ch.segmenting:  # after mark_segmenting
            out.append(f"  segmenting {', '.join(ch.segmenting)}")
        for src, port, dst in ch.cuts:  # after mark_cuts
            out.append(f"  cut {src}[{port}] -> {dst}")
        for t in ch.timeline:
            when = (f"at {value_text(t.at) if not isinstance(t.at, int) else t.at}"
                    if t.at is not None else f"every {t.period} for {t.duration}")
            out.append(f"  change {when}: {t.cell}.{t.param} = {value_text(t.value)}")
    return "\n".join(out) + "\n"

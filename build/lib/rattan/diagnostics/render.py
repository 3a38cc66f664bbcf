"""Renderers: rustc/ruff-style text for terminals and a JSON list for tools."""
from __future__ import annotations

import json

from ..source import SourceMap
from .diagnostic import Diagnostic


def _loc(sources: SourceMap, d: Diagnostic) -> dict:
    if d.span is None:
        return {"file": None, "line": None, "column": None, "end_line": None, "end_column": None}
    src = sources[d.span.source]
    line, col = src.line_col(d.span.start)
    eline, ecol = src.line_col(d.span.end)
    return {"file": src.name, "line": line, "column": col, "end_line": eline, "end_column": ecol}


def _marks(src, span, mark: str, message: str) -> tuple[int, int, int, str, str]:
    """(line, column, width, mark, message) of one span; a multi-line span marks its first line."""
    line, col = src.line_col(span.start)
    eline, ecol = src.line_col(span.end)
    text = src.line_text(line).expandtabs(1)
    width = max(1, (ecol - col) if eline == line else len(text) - col + 1)
    return line, col, width, mark, message


def _block(src, marks: list, gutter: int) -> list[str]:
    """Source lines in order, each once, with its marks underneath; `...` between distant lines."""
    pad = " " * gutter
    out = [f"{pad} |"]
    by_line: dict[int, list] = {}
    for m in marks:
        by_line.setdefault(m[0], []).append(m)
    prev = None
    for line in sorted(by_line):
        if prev is not None and line > prev + 1:
            out.append("...")
        out.append(f"{line:>{gutter}} | {src.line_text(line).expandtabs(1)}")
        # primary carets first, then labels, each on its own row when they carry a message
        for _, col, width, mark, msg in sorted(by_line[line], key=lambda m: (m[3] != "^", m[1])):
            out.append(f"{pad} | {' ' * (col - 1)}{mark * width}{(' ' + msg) if msg else ''}")
        prev = line
    return out


def render_text(sources: SourceMap, diags: list[Diagnostic], *, color: bool = False) -> str:
    """Every diagnostic as rustc does it: header, location, source lines, carets, labels, help."""
    parts: list[str] = []
    for d in diags:
        sev = d.severity
        head = f"{sev}[{d.code}]: {d.message}"
        if color:
            c = "\x1b[1;31m" if sev == "error" else "\x1b[1;33m"
            head = f"{c}{sev}[{d.code}]\x1b[0m\x1b[1m: {d.message}\x1b[0m"
        lines = [head]
        pad = "  "
        if d.span is not None:
            loc = _loc(sources, d)
            spans = [d.span] + [lab.span for lab in d.labels]
            gutter = max(len(str(sources[s.source].line_col(s.start)[0])) for s in spans)
            pad = " " * gutter
            lines.append(f"{pad}--> {loc['file']}:{loc['line']}:{loc['column']}")
            primary = sources[d.span.source]
            marks = [_marks(primary, d.span, "^", "")]
            elsewhere: dict[int, list] = {}
            for lab in d.labels:
                src = sources[lab.span.source]
                m = _marks(src, lab.span, "-", lab.message)
                (marks if lab.span.source == d.span.source else elsewhere.setdefault(lab.span.source, [])).append(m)
            lines += _block(primary, marks, gutter)
            for sid, ms in elsewhere.items():
                src = sources[sid]
                first = min(ms)
                lines.append(f"{pad}::: {src.name}:{first[0]}:{first[1]}")
                lines += _block(src, ms, gutter)
        for h in d.help:
            lines.append(f"{pad} = help: {h}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + ("\n" if parts else "")


def diagnostics_as_data(sources: SourceMap, diags: list[Diagnostic]) -> list[dict]:
    """The JSON form of PRODUCT.md: code, severity, message, file and positions."""
    out = []
    for d in diags:
        item = {"code": d.code, "severity": d.severity, "message": d.message, **_loc(sources, d)}
        if d.help:
            item["help"] = list(d.help)
        if d.fix is not None:
            item["fix"] = d.fix
        out.append(item)
    return out


def render_json(sources: SourceMap, diags: list[Diagnostic]) -> str:
    """The JSON list printed by `--format json`."""
    return json.dumps(diagnostics_as_data(sources, diags), indent=2) + "\n"

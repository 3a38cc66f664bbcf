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


def _snippet(sources: SourceMap, span, mark: str, message: str, gutter: int) -> list[str]:
    src = sources[span.source]
    line, col = src.line_col(span.start)
    eline, ecol = src.line_col(span.end)
    text = src.line_text(line).expandtabs(1)
    width = max(1, (ecol - col) if eline == line else len(text) - col + 1)
    pad = " " * gutter
    out = [f"{pad} |", f"{line:>{gutter}} | {text}",
           f"{pad} | {' ' * (col - 1)}{mark * width}{(' ' + message) if message else ''}"]
    return out


def render_text(sources: SourceMap, diags: list[Diagnostic], *, color: bool = False) -> str:
    """Every diagnostic as rustc does it: header, location, source line, carets, help."""
    parts: list[str] = []
    for d in diags:
        sev = d.severity
        head = f"{sev}[{d.code}]: {d.message}"
        if color:
            c = "\x1b[1;31m" if sev == "error" else "\x1b[1;33m"
            head = f"{c}{sev}[{d.code}]\x1b[0m\x1b[1m: {d.message}\x1b[0m"
        lines = [head]
        if d.span is not None:
            loc = _loc(sources, d)
            spans = [d.span] + [lab.span for lab in d.labels]
            gutter = max(len(str(sources[s.source].line_col(s.start)[0])) for s in spans)
            lines.append(f"{' ' * gutter}--> {loc['file']}:{loc['line']}:{loc['column']}")
            lines += _snippet(sources, d.span, "^", "", gutter)
            shown = (d.span.source, sources[d.span.source].line_col(d.span.start)[0])
            for lab in d.labels:
                if lab.span.source != d.span.source:
                    ls = sources[lab.span.source]
                    ll, lc = ls.line_col(lab.span.start)
                    lines.append(f"{' ' * gutter}::: {ls.name}:{ll}:{lc}")
                snippet = _snippet(sources, lab.span, "-", lab.message, gutter)[1:]
                where = (lab.span.source, sources[lab.span.source].line_col(lab.span.start)[0])
                # A label on the line just shown gets only its marks, under that line.
                lines += snippet[1:] if where == shown else snippet
                shown = where
            pad = " " * gutter
            for h in d.help:
                lines.append(f"{pad} = help: {h}")
        else:
            for h in d.help:
                lines.append(f"  = help: {h}")
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

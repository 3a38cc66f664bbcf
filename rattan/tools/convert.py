"""`rattan convert`: upstream Rattan TOML/YAML to `.rtn`, through the shared AST and the formatter."""
from __future__ import annotations

import json
import os

from dataclasses import replace

from ..diagnostics import Sink
from ..passes.check_graph import idle_nodes
from ..syntax import ast
from ..passes.reading import read_text
from ..source import SourceMap
from .fmt import format_file


def convert_path(path: str):
    """(text or None, sources, diagnostics) for a TOML or YAML file."""
    from ..compiler import front_end
    from ..frontends.upstream import load_document
    text, _bad = read_text(path)
    sources = SourceMap()
    src = sources.add(path, text, os.path.abspath(path))
    kind = front_end(src)
    if kind == "rtn":
        from ..passes.reading import InputError
        raise InputError(f"{path}: convert reads upstream TOML (any extension but .rtn) or YAML "
                         "(.yaml, .yml) files")
    sink = Sink()
    file = load_document(src, sink, kind)
    if sink.has_errors:
        return None, sources, sink.sorted()
    header = [f"# Converted from {os.path.basename(path)} by `rattan convert`."]
    settings = dict(file.settings)
    if settings:
        header.append("# Run settings of the original that .rtn does not express:")
        for k in sorted(settings):
            header.append(f"#   [{k}] {json.dumps(settings[k], sort_keys=True)}")
    file, left_out = without_idle_cells(file)
    if left_out:
        header.append("# Left out: cells on no path between endpoints, which upstream builds but which carry no")
        header.append("# packet to an endpoint (the plan of the original leaves them out too):")
        header.append("#   " + ", ".join(left_out))
    body = format_file(file, None)
    # A blank line between top-level statements reads better than the AST's packed form.
    return "\n".join(header) + "\n\n" + body, sources, sink.sorted()


def without_idle_cells(file: ast.File) -> tuple[ast.File, list[str]]:
    """The document's channels without the cells on no path between endpoints, and those cells'
    names in declaration order. In TOML/YAML these are warnings and `drop_idle_cells` leaves them out
    of the plan; in `.rtn` they would be errors, so the converted file leaves them out as well and
    compiles to the same plan."""
    body, left_out = [], []
    for st in file.body:
        if not isinstance(st, ast.Channel):
            body.append(st)
            continue
        eps = [n for s in st.body if isinstance(s, ast.Endpoints) for n, _ in s.names] or ["left", "right"]
        chains = [s for s in st.body if isinstance(s, ast.Chain)]
        links = [(a.name.text, b.name.text) for c in chains for a, b in zip(c.elements, c.elements[1:])
                 if isinstance(a, ast.Ref) and isinstance(b, ast.Ref)]
        decls = [s.name for s in st.body if isinstance(s, ast.CellDecl)]
        linked = {n for pair in links for n in pair}
        idle = idle_nodes(eps, links) | {n for n in decls if n not in linked}
        if not links or not idle:  # no links: an error the converted file should keep
            body.append(st)
            continue
        kept = []
        for s in st.body:
            if isinstance(s, ast.CellDecl) and s.name in idle:
                left_out.append(s.name)
            elif isinstance(s, ast.Chain):
                kept.extend(_live_part(s, idle))
            else:
                kept.append(s)
        body.append(replace(st, body=tuple(kept)))
    return replace(file, body=tuple(body)), left_out


def _live_part(chain: ast.Chain, idle: set[str]) -> list[ast.Chain]:
    """The chain without its idle elements: a cell between two live ones is live, so what remains
    is one run of elements (none if fewer than two)."""
    def live(e) -> bool:
        return not (isinstance(e, ast.Ref) and e.name.text in idle)
    idx = [i for i, e in enumerate(chain.elements) if live(e)]
    if len(idx) < 2:
        return []
    lo, hi = idx[0], idx[-1]
    elems = chain.elements[lo:hi + 1]
    if len(elems) == len(chain.elements):
        return [chain]
    breaks = chain.line_breaks[lo:hi] if chain.line_breaks else ()
    return [ast.Chain(elems, elems[0].span.to(elems[-1].span), breaks)]

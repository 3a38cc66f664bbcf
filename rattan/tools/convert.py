"""`rattan convert`: upstream Rattan TOML/YAML to `.rtn`, through the shared AST and the formatter."""
from __future__ import annotations

import json
import os

from dataclasses import replace

from ..diagnostics import Sink
from ..passes.check_graph import idle_nodes
from ..syntax import ast
from ..passes.reading import read_text
from ..registry import default_registry
from ..source import SourceMap
from .fmt import format_file


def _routes(decl) -> bool:
    """A cell declaration of a type that routes by destination address (`x-rattan.routing`)."""
    if not isinstance(decl, ast.CellDecl) or not decl.params:
        return False
    cell = default_registry().get(decl.type.text)
    return cell is not None and cell.routing() is not None


def convert_path(path: str, out: str | None = None):
    """(text or None, sources, diagnostics) for a TOML or YAML file. With `out` (where the `.rtn` will
    be written), relative trace and capture paths are rewritten to start at `out`'s folder, since a
    `.rtn` file's relative paths start at its own folder as the document's do at the document's."""
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
        header.append("# `rattan run` of this .rtn builds Rattan's own namespaces and addresses (docs/running.md),")
        header.append("# not the layout above: run the original to keep upstream's.")
        flags = []
        if (log := (settings.get("general") or {}).get("packet_log")):
            flags.append(f"--packet-log {log}")
        if (settings.get("http") or {}).get("enable"):
            flags.append(f"--http {settings['http'].get('port', 8086)}")
        if flags:
            header.append(f"# The packet log and control server of the original, for this file: {' '.join(flags)}")
    if any(_routes(c) for ch in file.body if isinstance(ch, ast.Channel) for c in ch.body):
        header.append("# The router's prefixes name upstream's addresses (left veth i is 10.1.i.x, right veth i")
        header.append("# 10.2.i.x), which `rattan run` and `rattan sim` give the original; a run or sim of this")
        header.append("# .rtn gives its endpoints Rattan's own addresses, which these routes do not match.")
    file, left_out = without_idle_cells(file)
    if out not in (None, "-"):  # `-o -` is stdout: no folder to start from
        file = with_paths_from(file, os.path.dirname(os.path.abspath(path)),
                               os.path.dirname(os.path.abspath(out)))
    if left_out:
        header.append("# Left out: cells on no path between endpoints, which upstream builds but which carry no")
        header.append("# packet to an endpoint (the plan of the original leaves them out too):")
        header.append("#   " + ", ".join(left_out))
    body = format_file(file, None)
    # A blank line between top-level statements reads better than the AST's packed form.
    return "\n".join(header) + "\n\n" + body, sources, sink.sorted()


def with_paths_from(file: ast.File, src_dir: str, out_dir: str) -> ast.File:
    """The document's relative file parameters (schema `x-unit: path`: traces, spy captures) rewritten
    so that from `out_dir` they name the same files they name from `src_dir`."""
    if os.path.realpath(src_dir) == os.path.realpath(out_dir):
        return file
    from ..registry import default_registry
    registry = default_registry()

    def moved(decl: ast.CellDecl) -> ast.CellDecl:
        ct = registry.get(decl.type.text)
        if ct is None:
            return decl
        params = []
        for f in decl.params:
            unit = (ct.properties.get(f.name) or {}).get("x-unit")
            if unit == "path" and isinstance(f.value, ast.String) and f.value.value \
                    and not os.path.isabs(f.value.value):
                target = os.path.normpath(os.path.join(src_dir, f.value.value))
                f = replace(f, value=replace(f.value, value=os.path.relpath(target, out_dir)))
            params.append(f)
        return replace(decl, params=tuple(params))

    body = []
    for st in file.body:
        if isinstance(st, ast.Channel):
            st = replace(st, body=tuple(moved(s) if isinstance(s, ast.CellDecl) else s for s in st.body))
        body.append(st)
    return replace(file, body=tuple(body))


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

"""Semantic tokens, folding ranges, signature help and range formatting for `.rtn` documents.

Semantic tokens come from the compiler's name index (what each name resolved to) and the AST
(what each literal is); nothing is guessed from the text. Signature help describes the cell type
whose braces hold the cursor: a compound's own parameter list, or a registry type's schema.
"""
from __future__ import annotations

import bisect
import difflib
import re

from lsprotocol import types as lsp

from ...source import Span
from ...syntax import ast
from . import positions
from .analysis import (Analysis, statement_start, _block_owner, _children, _fields_here, _open_brackets, _strip_code, params_of,
                       uri_to_path)

TOKEN_TYPES = ("namespace", "type", "class", "parameter", "variable", "property", "enumMember", "interface",
               "number", "string")
TOKEN_MODIFIERS = ("declaration", "readonly", "defaultLibrary")
_KIND_TOKEN = {"let": ("variable", {"readonly"}), "param": ("parameter", set()), "type": ("class", set()),
               "module": ("namespace", set()), "cell": ("variable", set()), "endpoint": ("interface", set())}


def _walk(node, parent=None):
    yield node, parent
    for child in _children(node):
        yield from _walk(child, node)


# ---------------------------------------------------------------- semantic tokens
def tokens(an: Analysis) -> list[tuple[Span, str, set[str]]]:
    """(span, token type, modifiers) of every meaningful name and literal in the document."""
    if an.file is None or an.file.format != "rtn":
        return []
    sid = an.source.id
    found: dict[tuple[int, int], tuple[Span, str, set[str]]] = {}
    names = an.comp.names
    if names is not None:
        for span, d in names.definitions.items():
            if span.source == sid:
                t, mods = _KIND_TOKEN.get(d.kind, ("variable", set()))
                found[(span.start, span.end)] = (span, t, mods | {"declaration"})
        for span, u in names.uses.items():
            if span.source == sid:
                d = names.definitions.get(u.target)
                t, mods = _KIND_TOKEN.get(d.kind if d else "", ("variable", set()))
                found.setdefault((span.start, span.end), (span, t, set(mods)))
    for node, parent in _walk_file(an.file):
        if isinstance(node, ast.Quantity) or isinstance(node, ast.Number):
            found.setdefault((node.span.start, node.span.end), (node.span, "number", set()))
        elif isinstance(node, ast.String):
            found.setdefault((node.span.start, node.span.end), (node.span, "string", set()))
        elif isinstance(node, ast.Field):
            found.setdefault((node.name_span.start, node.name_span.end), (node.name_span, "property", set()))
        elif isinstance(node, ast.Channel):
            found.setdefault((node.name_span.start, node.name_span.end),
                             (node.name_span, "namespace", {"declaration"}))
        elif isinstance(node, ast.Name) and isinstance(parent, (ast.CellDecl, ast.Inline, ast.Record)):
            if an.registry.get(node.text) is not None or isinstance(parent, ast.Record):
                found.setdefault((node.span.start, node.span.end), (node.span, "type", {"defaultLibrary"}))
        elif isinstance(node, ast.Name) and isinstance(parent, ast.Assign) and len(node.parts) > 1:
            last = node.parts[-1]
            end = node.span.end
            start = an.source.text.rfind(last, node.span.start, end)
            if start >= 0:
                found.setdefault((start, start + len(last)), (Span(sid, start, start + len(last)), "property", set()))
        elif isinstance(node, ast.Name) and isinstance(parent, ast.Field) and len(node.parts) == 1:
            # a bare word as a value that names nothing: a symbol of the parameter (`state = down`)
            found.setdefault((node.span.start, node.span.end), (node.span, "enumMember", set()))
    return [found[k] for k in sorted(found)]


def _walk_file(file: ast.File):
    for st in file.body:
        yield from _walk(st)


def semantic_tokens(an: Analysis) -> list[int]:
    """The LSP encoding: five integers per token, each relative to the previous one."""
    data: list[int] = []
    prev_line = prev_char = 0
    text, starts, enc = an.source.text, an.source.line_starts(), an.enc
    types = {t: i for i, t in enumerate(TOKEN_TYPES)}
    for span, t, mods in tokens(an):
        line = bisect.bisect_right(starts, span.start) - 1
        if line + 1 < len(starts) and span.end >= starts[line + 1]:
            continue  # a token spans lines only in the protocol's multiline mode, which few editors have
        char = positions.width(text[starts[line]:span.start], enc)
        data += [line - prev_line, char - prev_char if line == prev_line else char,
                 positions.width(text[span.start:span.end], enc), types[t],
                 sum(1 << TOKEN_MODIFIERS.index(m) for m in mods)]
        prev_line, prev_char = line, char
    return data


# ---------------------------------------------------------------- folding
_FOLDED = (ast.Channel, ast.CellType, ast.CellDecl, ast.Inline, ast.At, ast.Every, ast.Chain, ast.Record, ast.List)


def folding_ranges(an: Analysis) -> list[lsp.FoldingRange]:
    """Blocks that span lines (channels, cell types, cells, timelines, records, lists), runs of
    comment lines, and the imports at the top."""
    if an.file is None or an.file.format != "rtn":
        return []
    src = an.source
    out: dict[tuple[int, int], lsp.FoldingRange] = {}

    def add(start: int, end: int, kind=None) -> None:
        a, b = src.line_col(start)[0] - 1, src.line_col(max(start, end - 1))[0] - 1
        if b > a and (a, b) not in out:
            out[(a, b)] = lsp.FoldingRange(start_line=a, end_line=b, kind=kind)

    for node, _ in _walk_file(an.file):
        if isinstance(node, _FOLDED):
            add(node.span.start, node.span.end)
    run: list[int] = []
    for c in an.file.comments:
        line = src.line_col(c.span.start)[0]
        if run and line == src.line_col(run[-1])[0] + 1 and src.line_text(line).lstrip().startswith("#"):
            run.append(c.span.start)
            continue
        if len(run) > 1:
            add(run[0], run[-1] + 1, lsp.FoldingRangeKind.Comment)
        run = [c.span.start] if src.line_text(line).lstrip().startswith("#") else []
    if len(run) > 1:
        add(run[0], run[-1] + 1, lsp.FoldingRangeKind.Comment)
    imports = [st for st in an.file.body if isinstance(st, ast.Import)]
    if len(imports) > 1:
        add(imports[0].span.start, imports[-1].span.end, lsp.FoldingRangeKind.Imports)
    return sorted(out.values(), key=lambda r: (r.start_line, r.end_line))


# ---------------------------------------------------------------- signature help
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def signature_help(an: Analysis, pos: lsp.Position, moved: positions.Moved | None = None) -> lsp.SignatureHelp | None:
    """Inside a cell's braces: the cell type's parameters, the one being written active."""
    text = moved.new_text if moved else an.source.text
    off = moved.new_offset(pos, an.enc) if moved else an.offset(pos)
    at = moved.back(off) if moved else off
    code, inside = _strip_code(text[statement_start(text, off):off])
    if inside:
        return None
    braces = [o for o in _open_brackets(code) if o.bracket == "{"]
    if not braces:
        return None
    owner = _block_owner(braces[-1].head)
    if owner is None:
        return None
    params = params_of(an, owner, at)
    if not params:
        return None
    labels = []
    for name, info in params.items():
        default = "" if info["required"] else f" = {info['default']}" if info["default"] else " (optional)"
        labels.append((name, f"{name}: {info['type']}{default}", info))
    head = f"{owner} {{ "
    label = head + ", ".join(lab for _, lab, _ in labels) + " }"
    plist, cursor = [], len(head)
    for name, lab, info in labels:
        plist.append(lsp.ParameterInformation(label=(cursor, cursor + len(lab)),
                                              documentation=info.get("doc") or None))
        cursor += len(lab) + 2
    # the parameter being written: `name =` last at the block's top level before the cursor
    block = code[braces[-1].at + 1:]
    depth, current = 0, None
    for m in re.finditer(rf"[{{}}()\[\]]|({_NAME})\s*=|,", block):
        tok = m.group(0)
        if tok in "{([":
            depth += 1
        elif tok in "})]":
            depth -= 1
        elif depth == 0:
            current = None if tok == "," else m.group(1)
    names = [n for n, _, _ in labels]
    if current in names:
        active = names.index(current)
    else:
        present = _fields_here(code, braces[-1].at)
        active = next((i for i, n in enumerate(names) if n not in present), 0)
    doc = None
    sym = an.scope(at).get(owner)
    if sym is not None and sym.kind == "cell type":
        doc = f"compound cell type from {uri_to_path(an.uri) if sym.source is an.source else sym.source.name}"
    elif an.registry.get(owner) is not None:
        doc = an.registry.get(owner).description or None
    return lsp.SignatureHelp(signatures=[lsp.SignatureInformation(label=label, documentation=doc,
                                                                  parameters=plist, active_parameter=active)],
                             active_signature=0, active_parameter=active)


# ---------------------------------------------------------------- range formatting
def range_formatting(an: Analysis, rng: lsp.Range) -> list[lsp.TextEdit] | None:
    """The edits of whole-document formatting that touch the lines of `rng` (None while the text
    has syntax errors)."""
    from .analysis import formatting
    whole = formatting(an)
    if not whole:
        return whole
    new = whole[0].new_text
    old_lines = an.source.text.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    first, last = rng.start.line, rng.end.line - (1 if rng.end.character == 0 and rng.end.line > rng.start.line else 0)
    edits = []
    sm = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        touched_last = max(i1, i2 - 1)
        if touched_last < first or i1 > last:
            continue
        if op == "replace" and i2 - i1 == j2 - j1:  # line for line: only the lines asked for
            pairs = [(i, i + 1, j, j + 1) for i, j in zip(range(i1, i2), range(j1, j2)) if first <= i <= last]
        else:
            pairs = [(i1, i2, j1, j2)]
        for a1, a2, b1, b2 in pairs:
            edits.append(lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=a1, character=0),
                                                      end=lsp.Position(line=a2, character=0)),
                                      new_text="".join(new_lines[b1:b2])))
    return edits

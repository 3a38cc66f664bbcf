"""Find references, document highlight and rename, from the compiler's name index.

The compiler records every definition and every use it resolved (`rattan.ir.names`), across
imported files and timelines; nothing here reads names from the text. A definition is known
across documents by its key: the URI of its file and its offsets. A rename that would make two
names collide, or that targets something built in (a registry cell type, a built-in cell's
parameter, the default endpoints, a compound's `in`/`out`, a keyword), is refused with a message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types as lsp

from ...ir.names import GROUPS, Definition
from ...source import Source, Span
from ...syntax import ast
from .analysis import Analysis, container_at, path_at, path_to_uri

KEYWORDS = {"as", "at", "cell", "channel", "endpoints", "every", "false", "for", "import", "let", "true", "type"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
Key = tuple[str, int, int]  # (file URI, start, end) of a definition's name


class Refused(Exception):
    """Why the name under the cursor cannot be renamed (shown to the user as is)."""


@dataclass(frozen=True)
class Target:
    """The definition the cursor is on (at the definition itself or at one of its uses)."""
    key: Key
    definition: Definition
    at: Span  # the occurrence under the cursor


def _uri(an: Analysis, src: Source) -> str:
    return an.uri if src is an.source else path_to_uri(src.path) if src.path else an.uri


def _uris(an: Analysis) -> dict[int, str]:
    """The URI of each source of the analysis, by source id."""
    return {src.id: _uri(an, src) for src in an.comp.sources}


def key_of(an: Analysis, span: Span, uris: dict[int, str] | None = None) -> Key:
    return ((uris or _uris(an))[span.source], span.start, span.end)


def target_at(an: Analysis, off: int) -> Target | None:
    """The definition named at `off` in this document, by the compiler's resolution."""
    names = an.comp.names
    if names is None:
        return None
    sid = an.source.id
    for span, d in names.definitions.items():
        if span.source == sid and span.start <= off <= span.end:
            return Target(key_of(an, span), d, span)
    for span, u in names.uses.items():
        if span.source == sid and span.start <= off <= span.end:
            d = names.definitions.get(u.target)
            if d is None:
                src = an.src_of(u.target)
                d = Definition(src.text[u.target.start:u.target.end], "name", u.target)
            return Target(key_of(an, u.target), d, span)
    return None


def occurrences(an: Analysis, key: Key) -> list[tuple[Span, bool]]:
    """Every occurrence this analysis knows of the definition `key`: (span, is the definition)."""
    names = an.comp.names
    if names is None:
        return []
    uris = _uris(an)
    uri, start, end = key
    out = [(span, True) for span in names.definitions
           if span.start == start and span.end == end and uris[span.source] == uri]
    out += [(u.span, False) for u in names.uses.values()
            if u.target.start == start and u.target.end == end and uris[u.target.source] == uri]
    return out


def locations(an: Analysis, key: Key, include_declaration: bool = True) -> list[lsp.Location]:
    return [an.location(an.src_of(span), span) for span, is_def in occurrences(an, key)
            if include_declaration or not is_def]


def highlights(an: Analysis, pos: lsp.Position) -> list[lsp.DocumentHighlight]:
    """Every occurrence in this document of the name under the cursor (the definition as Write)."""
    t = target_at(an, an.offset(pos))
    if t is None:
        return []
    kind = lsp.DocumentHighlightKind
    return [lsp.DocumentHighlight(range=an.range(span), kind=kind.Write if is_def else kind.Read)
            for span, is_def in occurrences(an, t.key) if span.source == an.source.id]


# ---------------------------------------------------------------- rename
def why_not(an: Analysis, off: int) -> str:
    """What the cursor is on when it is no renameable name: the refusal's message."""
    path = path_at(an.file, off)
    node = path[-1] if path else None
    parent = path[-2] if len(path) > 1 else None
    word = _word(an.source.text, off)
    if word in KEYWORDS:
        return f"`{word}` is a keyword of the language: it cannot be renamed"
    if isinstance(node, ast.Name) and isinstance(parent, (ast.CellDecl, ast.Inline, ast.Record)):
        if an.registry.get(node.text) is not None:
            return f"`{node.text}` is a built-in cell type: it cannot be renamed"
        return f"`{node.text}` names no cell type the compiler resolved"
    if isinstance(node, ast.Field):
        return f"`{node.name}` is a parameter of a built-in cell type: it cannot be renamed"
    if isinstance(node, ast.Name) and isinstance(parent, ast.Assign):
        return f"`{word}` is a parameter of a built-in cell type: it cannot be renamed"
    if word in ("left", "right"):
        return f"`{word}` is a default endpoint: declare `endpoints` to name them otherwise"
    if word in ("in", "out"):
        return f"`{word}` is a fixed endpoint of a compound cell type: it cannot be renamed"
    if word:
        return f"`{word}` names nothing the compiler resolved here (is the file checked without errors?)"
    return "no name under the cursor"


def _word(text: str, off: int) -> str:
    start = off
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    end = off
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[start:end]


def prepare(an: Analysis, pos: lsp.Position) -> lsp.Range:
    """The range of the name to rename at `pos`, or Refused."""
    off = an.offset(pos)
    t = target_at(an, off)
    if t is None:
        raise Refused(why_not(an, off))
    return an.range(t.at)


def _files(an: Analysis) -> dict[int, ast.File]:
    prog = an.comp.program
    return {u.file.source: u.file for u in prog.units} if prog is not None else {an.source.id: an.file}


def clash(an: Analysis, t: Target, new: str) -> str | None:
    """Why renaming `t` to `new` would change what some name means (None: it would not)."""
    if not _IDENT.match(new):
        return f"`{new}` is not a name: names are letters, digits and `_`, not starting with a digit"
    if new in KEYWORDS:
        return f"`{new}` is a keyword of the language"
    d = t.definition
    if new == d.name:
        return None
    if d.kind == "type" and an.registry.get(new) is not None:
        return f"`{new}` is a built-in cell type: a compound cell type of that name would hide it"
    group = GROUPS.get(d.kind)
    files = _files(an)
    home = files.get(d.span.source)
    here = container_at(home, d.span.start) if home is not None else None
    if group == "graph":
        if isinstance(here, ast.CellType) and new in ("in", "out"):
            return f"`{new}` is a fixed endpoint of every compound cell type"
        if isinstance(here, ast.Channel) and new in ("left", "right") and \
                not any(isinstance(s, ast.Endpoints) for s in here.body):
            return f"`{new}` is a default endpoint of channel `{here.name}`"
    for span, other in an.comp.names.definitions.items():
        if other.name != new or GROUPS.get(other.kind) != group:
            continue
        file = files.get(span.source)
        there = container_at(file, span.start) if file is not None else None
        top_level = here is None and there is None
        same_file = span.source == d.span.source
        if (same_file and (here is there or here is None or there is None)) or (top_level and group == "value"):
            src = an.src_of(span)
            line, col = src.line_col(span.start)
            article = "an" if other.kind[0] in "aeiou" else "a"
            return (f"`{new}` is already {article} {other.kind} visible here ({src.name}:{line}:{col}): "
                    f"renaming `{d.name}` would make the two collide")
    return None


def rename(analyses: list[Analysis], an: Analysis, pos: lsp.Position, new: str) -> lsp.WorkspaceEdit:
    """Every occurrence, in this document, the files it imports and the other open documents that
    reach the same definition, replaced by `new`; or Refused."""
    off = an.offset(pos)
    t = target_at(an, off)
    if t is None:
        raise Refused(why_not(an, off))
    for other in [an] + [a for a in analyses if a is not an]:
        why = clash(other, t, new) if any(True for _ in occurrences(other, t.key)) else None
        if why:
            raise Refused(why)
    edits: dict[str, dict[tuple[int, int], lsp.TextEdit]] = {}
    for a in [an] + [x for x in analyses if x is not an]:
        for span, _ in occurrences(a, t.key):
            loc = a.location(a.src_of(span), span)
            edits.setdefault(loc.uri, {})[(span.start, span.end)] = lsp.TextEdit(range=loc.range, new_text=new)
    return lsp.WorkspaceEdit(changes={uri: [e for _, e in sorted(es.items())] for uri, es in edits.items()})

"""What the language server knows of one document, as pure functions of its text.

`analyze` compiles the text with the compiler's checks (imports resolved next to the file);
the other functions answer the editor's questions from that analysis: diagnostics, hover,
go to definition, completion, document symbols, formatting and quick fixes. Everything
about cell types and their parameters comes from the registry's schemas, so plugin cells
are described like built-ins.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping
from urllib.parse import unquote, urlparse
from urllib.request import pathname2url

from lsprotocol import types as lsp

from ...compiler import Compilation, compile_text
from ...diagnostics import Diagnostic, Sink
from ...passes.context import Options
from ...registry import Registry
from ...source import Source, Span
from ...syntax import ast
from ..cells import _type_name, default_text, describe_cell
from .positions import offset as to_offset, position, span_range, whole_range  # noqa: F401 (whole_range: API)

SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
            "note": lsp.DiagnosticSeverity.Information}
TOP_KEYWORDS = ("let", "import", "cell type", "channel")
CHANNEL_KEYWORDS = ("endpoints", "cell", "at", "every")


# ---------------------------------------------------------------- documents
def uri_to_path(uri: str) -> str | None:
    """The file system path of a file:// URI (None for an unsaved buffer)."""
    u = urlparse(uri)
    return unquote(u.path) if u.scheme == "file" else None


def path_to_uri(path: str) -> str:
    return "file://" + pathname2url(os.path.abspath(path))


@dataclass(frozen=True)
class Symbol:
    """A name the document can refer to, and where it is defined."""
    name: str
    kind: str       # "let", "cell type", "cell", "endpoint"
    node: Any       # the AST statement (Let, CellType, CellDecl, Endpoints)
    span: Span      # the defining name's span
    source: Source


@dataclass
class Analysis:
    uri: str
    source: Source
    comp: Compilation
    registry: Registry
    file: ast.File | None

    # -- sources and locations
    def location(self, src: Source, span: Span) -> lsp.Location:
        uri = self.uri if src is self.source else path_to_uri(src.path) if src.path else self.uri
        return lsp.Location(uri=uri, range=span_range(src, span))

    def src_of(self, span: Span) -> Source:
        return self.comp.sources[span.source]

    # -- scope: this file's lets and cell types, then those of the files it imports
    def globals(self) -> dict[str, Symbol]:
        out: dict[str, Symbol] = {}
        prog = self.comp.program
        if prog is not None and prog.units:
            for stmt, index in prog.units[0].imports:
                unit = prog.units[index]
                src = self.comp.sources[unit.file.source]
                for sym in _file_symbols(unit.file, src):
                    out[f"{stmt.alias}.{sym.name}" if stmt.alias else sym.name] = sym
        if self.file is not None:
            for sym in _file_symbols(self.file, self.source):
                out[sym.name] = sym
        return out

    def channel_at(self, off: int) -> ast.Channel | None:
        for st in self.file.body if self.file else ():
            if isinstance(st, ast.Channel) and st.span.start <= off <= st.span.end:
                return st
        return None

    def locals(self, channel: ast.Channel | None) -> dict[str, Symbol]:
        """Cells and endpoints declared in a channel (endpoints `left` and `right` by default)."""
        out: dict[str, Symbol] = {}
        if channel is None:
            return out
        declared = False
        for st in channel.body:
            if isinstance(st, ast.CellDecl):
                out[st.name] = Symbol(st.name, "cell", st, st.name_span, self.source)
            elif isinstance(st, ast.Endpoints):
                declared = True
                for name, span in st.names:
                    out[name] = Symbol(name, "endpoint", st, span, self.source)
        if not declared:
            for name in ("left", "right"):
                out.setdefault(name, Symbol(name, "endpoint", None, channel.name_span, self.source))
        return out

    def lookup(self, name: str, off: int) -> Symbol | None:
        return self.locals(self.channel_at(off)).get(name) or self.globals().get(name)


def _file_symbols(file: ast.File, src: Source) -> Iterator[Symbol]:
    for st in file.body:
        if isinstance(st, ast.Let):
            yield Symbol(st.name, "let", st, st.name_span, src)
        elif isinstance(st, ast.CellType):
            yield Symbol(st.name, "cell type", st, st.name_span, src)


def analyze(uri: str, text: str, registry: Registry) -> Analysis:
    """Compile a document as `rattan check` would, without optimizing."""
    path = uri_to_path(uri)
    name = path or uri
    comp = compile_text(text, name, path=path, registry=registry, options=Options(optimize=False))
    src = comp.entry
    file = None
    if comp.program is not None and comp.program.units:
        file = comp.program.units[0].file
    if file is None:  # stopped before the program was built: parse for the outline at least
        from ...syntax.parser import parse
        file = parse(src, Sink())
    return Analysis(uri, src, comp, registry, file)


# ---------------------------------------------------------------- diagnostics
def diagnostics(an: Analysis) -> list[lsp.Diagnostic]:
    """Every finding of the compiler. One in an imported file is shown at the import that brought
    it in, with its own place as related information."""
    out = []
    imports = _import_spans(an)
    for d in an.comp.diagnostics:
        out.append(_diagnostic(an, d, imports))
    return out


def _import_spans(an: Analysis) -> dict[int, Span]:
    """Source id of each imported file -> the span of this file's import of it (transitively)."""
    prog = an.comp.program
    if prog is None or not prog.units:
        return {}
    unit_source = [u.file.source for u in prog.units]
    out: dict[int, Span] = {}
    todo = [(stmt.span, index) for stmt, index in prog.units[0].imports]
    while todo:
        span, index = todo.pop()
        sid = unit_source[index]
        if sid in out or sid == an.source.id:
            continue
        out[sid] = span
        todo += [(span, j) for _, j in prog.units[index].imports]
    return out


def _diagnostic(an: Analysis, d: Diagnostic, imports: dict[int, Span]) -> lsp.Diagnostic:
    message = d.message + "".join(f"\nhelp: {h}" for h in d.help)
    related = [lsp.DiagnosticRelatedInformation(location=an.location(an.src_of(lab.span), lab.span),
                                                message=lab.message) for lab in d.labels]
    if d.span is None:
        rng = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))
    elif d.span.source == an.source.id:
        rng = span_range(an.source, d.span)
    else:  # in an imported file
        src = an.src_of(d.span)
        line, col = src.line_col(d.span.start)
        at = imports.get(d.span.source)
        rng = span_range(an.source, at) if at else lsp.Range(start=lsp.Position(line=0, character=0),
                                                              end=lsp.Position(line=0, character=0))
        message = f"in {_shown(src, an.source)}:{line}:{col}: {message}"
        related.insert(0, lsp.DiagnosticRelatedInformation(location=an.location(src, d.span), message=d.message))
    return lsp.Diagnostic(range=rng, message=message, severity=SEVERITY.get(d.severity), code=d.code,
                          source="rattan", related_information=related or None,
                          data={"fix": d.fix} if d.fix is not None and d.span is not None
                          and d.span.source == an.source.id else None)


def code_actions(an: Analysis, rng: lsp.Range) -> list[lsp.CodeAction]:
    """A quick fix for every finding at `rng` that has one obvious replacement ("did you mean")."""
    start, end = to_offset(an.source, rng.start), to_offset(an.source, rng.end)
    out = []
    for d in an.comp.diagnostics:
        if d.fix is None or d.span is None or d.span.source != an.source.id:
            continue
        if d.span.end < start or d.span.start > end:
            continue
        edit = lsp.TextEdit(range=span_range(an.source, d.span), new_text=d.fix)
        out.append(lsp.CodeAction(
            title=f"Replace `{an.source.text[d.span.start:d.span.end]}` with `{d.fix}`",
            kind=lsp.CodeActionKind.QuickFix, is_preferred=True,
            diagnostics=[_diagnostic(an, d, {})],
            edit=lsp.WorkspaceEdit(changes={an.uri: [edit]})))
    return out


# ---------------------------------------------------------------- the node under the cursor
def _children(node) -> Iterator[Any]:
    if not dataclasses.is_dataclass(node):
        return
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, tuple):
            for x in v:
                if dataclasses.is_dataclass(x):
                    yield x
        elif dataclasses.is_dataclass(v) and not isinstance(v, Span):
            yield v


def path_at(file: ast.File, off: int) -> list[Any]:
    """The nodes whose span holds `off`, outermost first."""
    path: list[Any] = []
    nodes = list(file.body)
    while True:
        for n in nodes:
            sp = getattr(n, "span", None)
            if isinstance(sp, Span) and sp.start <= off <= sp.end:
                path.append(n)
                nodes = list(_children(n))
                break
        else:
            return path


def _in(span: Span | None, off: int) -> bool:
    return span is not None and span.start <= off <= span.end


# ---------------------------------------------------------------- schemas
def record_schema(reg: Registry, tag: str) -> Mapping[str, Any] | None:
    """The schema of a tagged record kind (`droptail`, `gilbert_elliott`, `route`) from any cell."""
    if tag in reg.queues:
        return reg.queues[tag]
    for name in reg.names():
        found = _find_kind(reg.get(name).schema, tag)
        if found is not None:
            return found
    return None


def _find_kind(schema: Any, tag: str) -> Mapping[str, Any] | None:
    if isinstance(schema, Mapping):
        kind = schema.get("properties", {}).get("kind") if isinstance(schema.get("properties"), Mapping) else None
        if isinstance(kind, Mapping) and kind.get("const") == tag:
            return schema
        for v in schema.values():
            found = _find_kind(v, tag)
            if found is not None:
                return found
    elif isinstance(schema, list):
        for v in schema:
            found = _find_kind(v, tag)
            if found is not None:
                return found
    return None


def params_of(an: Analysis, type_name: str, off: int) -> dict[str, dict[str, str]]:
    """Parameters of a cell type or record kind: name -> {type, default, doc, runtime}."""
    reg = an.registry
    ct = reg.get(type_name)
    if ct is not None:
        return {n: _param_info(reg, p, n in ct.required) for n, p in ct.properties.items()}
    sym = an.globals().get(type_name)
    if sym is not None and sym.kind == "cell type":
        return {p.name: {"type": p.type_name, "default": _text(sym.source, p.default.span) if p.default else "",
                         "doc": "", "required": p.default is None, "runtime": False}
                for p in sym.node.params}
    rec = record_schema(reg, type_name)
    if rec is not None:
        req = set(rec.get("required", ()))
        return {n: _param_info(reg, p, n in req) for n, p in rec.get("properties", {}).items() if n != "kind"}
    return {}


def _param_info(reg: Registry, prop: Mapping[str, Any], required: bool) -> dict[str, Any]:
    return {"type": _type_name(reg, prop), "default": default_text(prop), "doc": prop.get("description", ""),
            "required": required, "runtime": bool(prop.get("x-runtime")), "schema": reg.deref(prop)}


def _shown(src: Source, here: Source | None) -> str:
    """An imported file's name as the document would write it: relative to the document."""
    if src.path and here is not None and here.path:
        return os.path.relpath(src.path, os.path.dirname(here.path))
    return src.name


def _text(src: Source, span: Span) -> str:
    return src.text[span.start:span.end]


def _param_markdown(owner: str, name: str, info: Mapping[str, Any]) -> str:
    head = f"```rtn\n{owner} {{ {name}: {info['type']} }}\n```"
    facts = ["required" if info["required"] else f"default `{info['default']}`" if info["default"] else "optional"]
    if info.get("runtime"):
        facts.append("changeable while running")
    return "\n\n".join(x for x in (head, ", ".join(facts), info.get("doc", "")) if x)


def _cell_type_markdown(an: Analysis, name: str) -> str | None:
    ct = an.registry.get(name)
    if ct is not None:
        return f"```text\n{describe_cell(an.registry, ct).rstrip()}\n```"
    sym = an.globals().get(name)
    if sym is not None and sym.kind == "cell type":
        return _definition_markdown(sym, an.source)
    rec = record_schema(an.registry, name)
    if rec is not None:
        lines = [f"**{name}**" + (f" — {rec['description']}" if rec.get("description") else "")]
        for n, info in params_of(an, name, 0).items():
            lines.append(f"- `{n}`: {info['type']}" + (f" (default `{info['default']}`)" if info["default"] else "")
                         + (f" — {info['doc']}" if info["doc"] else ""))
        return "\n".join(lines)
    return None


def _definition_markdown(sym: Symbol, here: Source | None = None) -> str:
    node = sym.node
    if sym.kind == "cell type":
        text = _text(sym.source, Span(node.span.source, node.span.start, node.body[0].span.start
                                      if node.body else node.span.end)).rstrip().rstrip("{").rstrip()
    elif node is None:
        text = f"endpoint {sym.name}"
    else:
        text = _text(sym.source, node.span)
    where = ""
    if sym.source is not here:
        where = f"\n\n{sym.kind} from `{_shown(sym.source, here)}`"
    return f"```rtn\n{text}\n```{where}"


# ---------------------------------------------------------------- hover
def hover(an: Analysis, pos: lsp.Position) -> lsp.Hover | None:
    if an.file is None:
        return None
    off = to_offset(an.source, pos)
    path = path_at(an.file, off)
    if not path:
        return None
    found = _hover_text(an, path, off)
    if found is None:
        return None
    text, span = found
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text),
                     range=span_range(an.source, span))


def _hover_text(an: Analysis, path: list[Any], off: int) -> tuple[str, Span] | None:
    node = path[-1]
    owner = next((n for n in reversed(path[:-1]) if isinstance(n, (ast.CellDecl, ast.Inline, ast.Record))), None)
    if isinstance(node, ast.Field) and _in(node.name_span, off) and owner is not None:
        type_name = owner.tag.text if isinstance(owner, ast.Record) else owner.type.text
        info = params_of(an, type_name, off).get(node.name)
        if info is not None:
            return _param_markdown(type_name, node.name, info), node.name_span
        return None
    if isinstance(node, (ast.CellDecl, ast.CellType, ast.Let, ast.Channel)) and _in(node.name_span, off):
        if isinstance(node, ast.CellDecl):
            return _cell_type_markdown(an, node.type.text) or "", node.name_span
        if isinstance(node, ast.CellType):
            return _definition_markdown(Symbol(node.name, "cell type", node, node.name_span, an.source), an.source), node.name_span
        if isinstance(node, ast.Let):
            return f"```rtn\n{_text(an.source, node.span)}\n```", node.name_span
        return None
    if isinstance(node, ast.Name):
        parent = path[-2] if len(path) > 1 else None
        if isinstance(parent, (ast.CellDecl, ast.Inline)) and parent.type is node:
            md = _cell_type_markdown(an, node.text)
            return (md, node.span) if md else None
        if isinstance(parent, ast.Record) and parent.tag is node:
            md = _cell_type_markdown(an, node.text)
            return (md, node.span) if md else None
        if isinstance(parent, ast.Assign) and parent.target is node and len(node.parts) == 2:
            cell = an.lookup(node.parts[0], off)
            if cell is not None and cell.kind == "cell":
                info = params_of(an, cell.node.type.text, off).get(node.parts[1])
                if info is not None:
                    return _param_markdown(f"{node.parts[0]}: {cell.node.type.text}", node.parts[1], info), node.span
        sym = an.lookup(node.text, off)
        if sym is not None:
            return _definition_markdown(sym, an.source), node.span
        return None
    if isinstance(node, ast.Ref):
        sym = an.lookup(node.name.text, off)
        return (_definition_markdown(sym, an.source), node.name.span) if sym else None
    if isinstance(node, ast.Quantity):
        return f"`{node.text}` = {_base(node)}", node.span
    return None


def _base(q: ast.Quantity) -> str:
    from ...units import NAMED_DIMS
    name = next((k for k, d in NAMED_DIMS.items() if d == q.dim), None)
    unit = {"time": "s", "rate": "bit/s", "size": "bytes"}.get(name or "", "")
    v = q.value
    value = f"{v.numerator:,}" if v.denominator == 1 else f"{float(v):,.12g}"
    return f"{value} {unit}" if unit else f"{float(v):.12g}"


# ---------------------------------------------------------------- definition
def definition(an: Analysis, pos: lsp.Position) -> lsp.Location | None:
    if an.file is None:
        return None
    off = to_offset(an.source, pos)
    path = path_at(an.file, off)
    if not path:
        return None
    node = path[-1]
    if isinstance(node, ast.String) and len(path) > 1 and isinstance(path[-2], ast.Import):
        target = _import_target(an, path[-2])
        if target is None:
            return None
        return lsp.Location(uri=path_to_uri(target), range=lsp.Range(start=lsp.Position(line=0, character=0),
                                                                     end=lsp.Position(line=0, character=0)))
    name = None
    if isinstance(node, ast.Ref):
        name = node.name.text
    elif isinstance(node, ast.Name):
        parent = path[-2] if len(path) > 1 else None
        name = node.parts[0] if isinstance(parent, ast.Assign) and parent.target is node else node.text
    if name is None:
        return None
    sym = an.lookup(name, off)
    if sym is None or sym.node is None:
        return None
    return an.location(sym.source, sym.span)


def _import_target(an: Analysis, imp: ast.Import) -> str | None:
    base = os.path.dirname(an.source.path) if an.source.path else os.getcwd()
    target = os.path.normpath(os.path.join(base, imp.path.value))
    return target if os.path.isfile(target) else None


# ---------------------------------------------------------------- document symbols
def symbols(an: Analysis) -> list[lsp.DocumentSymbol]:
    if an.file is None:
        return []
    src = an.source
    out = []
    for st in an.file.body:
        if isinstance(st, ast.Let):
            out.append(_sym(src, st.name, lsp.SymbolKind.Constant, st.span, st.name_span,
                            _text(src, st.value.span)))
        elif isinstance(st, ast.CellType):
            params = ", ".join(f"{p.name}: {p.type_name}" for p in st.params)
            out.append(_sym(src, st.name, lsp.SymbolKind.Class, st.span, st.name_span, f"({params})"))
        elif isinstance(st, ast.Import):
            out.append(_sym(src, st.path.value, lsp.SymbolKind.Module, st.span, st.path.span,
                            f"as {st.alias}" if st.alias else ""))
        elif isinstance(st, ast.Channel):
            children = []
            for c in st.body:
                if isinstance(c, ast.CellDecl):
                    children.append(_sym(src, c.name, lsp.SymbolKind.Object, c.span, c.name_span, c.type.text))
                elif isinstance(c, ast.Endpoints):
                    for name, span in c.names:
                        children.append(_sym(src, name, lsp.SymbolKind.Interface, span, span, "endpoint"))
                elif isinstance(c, (ast.At, ast.Every)):
                    label = ("at " + _text(src, c.time.span) if isinstance(c, ast.At)
                             else f"every {_text(src, c.period.span)} for {_text(src, c.duration.span)}")
                    children.append(_sym(src, label, lsp.SymbolKind.Event, c.span, c.span, "timeline"))
            out.append(lsp.DocumentSymbol(name=st.name, kind=lsp.SymbolKind.Namespace, detail="channel",
                                          range=span_range(src, st.span),
                                          selection_range=span_range(src, st.name_span), children=children))
    return out


def _sym(src, name, kind, span, sel, detail) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(name=name, kind=kind, detail=detail or None, range=span_range(src, span),
                              selection_range=span_range(src, sel))


# ---------------------------------------------------------------- formatting
def formatting(an: Analysis) -> list[lsp.TextEdit] | None:
    """The whole text in canonical form (`rattan fmt`), or None while it has syntax errors."""
    from ...syntax.parser import parse
    from ..fmt import format_file
    sink = Sink()
    file = parse(an.source, sink)
    if sink.has_errors:
        return None
    out = format_file(file, an.source)
    if out == an.source.text:
        return []
    return [lsp.TextEdit(range=whole_range(an.source), new_text=out)]


# ---------------------------------------------------------------- completion
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def _strip_code(text: str) -> str:
    """`text` with comments and string contents blanked (same length), for scanning brackets."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif ch == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append('"' + " " * (j - i - 2) + '"' if j - i >= 2 else '"')
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _open_blocks(code: str) -> list[tuple[str, str]]:
    """The brackets still open at the end of `code`, outermost first: (bracket, the words before it)."""
    stack: list[tuple[str, str]] = []
    for i, ch in enumerate(code):
        if ch in "{([":
            line_start = code.rfind("\n", 0, i) + 1
            stack.append((ch, code[line_start:i]))
        elif ch in "})]" and stack:
            stack.pop()
    return stack


def completion(an: Analysis, pos: lsp.Position) -> list[lsp.CompletionItem]:
    src = an.source
    off = to_offset(src, pos)
    code = _strip_code(src.text[:off])
    line = code[code.rfind("\n") + 1:]
    typed = _IDENT.search(line)
    prefix_len = len(typed.group(0)) if typed else 0
    before = line[:len(line) - prefix_len]
    blocks = _open_blocks(code)
    braces = [b for b in blocks if b[0] == "{"]
    head = braces[-1][1] if braces else ""

    # `x.` in a timeline: the cell's runtime parameters
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\.$", before)
    if m:
        cell = an.lookup(m.group(1), off)
        if cell is not None and cell.kind == "cell":
            return [_param_item(n, info) for n, info in params_of(an, cell.node.type.text, off).items()
                    if info["runtime"] or an.registry.get(cell.node.type.text) is None]
        return []
    # the value of a parameter: its enum values, record kinds, or names in scope
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*$", before)
    if m and braces:
        owner = _block_owner(head)
        info = params_of(an, owner, off).get(m.group(1)) if owner else None
        return _value_items(an, info, off)
    # a chain element after `->`, or the type after `cell NAME:`
    if re.search(r"->\s*$", before):
        return _type_items(an) + _local_items(an, off)
    if re.search(r"\bcell\s+[A-Za-z_][A-Za-z0-9_]*\s*:\s*$", before):
        return _type_items(an)
    # a timeline block: the channel's cells, then `.` and a parameter
    if braces and re.match(r"\s*(at|every)\b", head):
        if re.fullmatch(r".*[{,]\s*|\s*", before):
            return [it for it in _local_items(an, off) if it.kind == lsp.CompletionItemKind.Variable]
        return []
    # a field name inside a cell's or record's braces
    if braces and re.fullmatch(r".*[{,]\s*|\s*", before) and _block_owner(head) is not None:
        owner = _block_owner(head)
        present = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=", code[code.rfind("{") + 1:]))
        items = [_param_item(n, info) for n, info in params_of(an, owner, off).items() if n not in present]
        return items
    # the start of a statement
    if before.strip() == "":
        if any(re.match(r"\s*channel\b", h) for _, h in braces):
            return _keyword_items(CHANNEL_KEYWORDS) + _local_items(an, off)
        if not braces:
            return _keyword_items(TOP_KEYWORDS)
    return []


def _block_owner(head: str) -> str | None:
    """The cell type or record kind whose braces these are: `cell up: bw {` -> bw, `queue = codel {` -> codel."""
    m = re.search(r"([A-Za-z_][A-Za-z0-9_.]*)\s*$", head)
    if not m or m.group(1) in ("channel", "type") or re.match(r"\s*(channel|at|every)\b", head):
        return None
    if re.match(r"\s*cell\s+type\b", head):
        return None
    return m.group(1)


def _param_item(name: str, info: Mapping[str, Any]) -> lsp.CompletionItem:
    detail = info["type"] + (" (required)" if info["required"] else f" = {info['default']}" if info["default"] else "")
    return lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Property, detail=detail,
                              documentation=info.get("doc") or None, insert_text=f"{name} = ",
                              sort_text=("0" if info["required"] else "1") + name)


def _value_items(an: Analysis, info: Mapping[str, Any] | None, off: int) -> list[lsp.CompletionItem]:
    items: list[lsp.CompletionItem] = []
    schema = (info or {}).get("schema") or {}
    for v in schema.get("enum", ()):
        items.append(lsp.CompletionItem(label=str(v), kind=lsp.CompletionItemKind.EnumMember))
    for variant in schema.get("oneOf", ()):
        variant = an.registry.deref(variant)
        kind = variant.get("properties", {}).get("kind", {}).get("const")
        if kind:
            items.append(lsp.CompletionItem(label=kind, kind=lsp.CompletionItemKind.Struct,
                                            detail=variant.get("description") or None,
                                            insert_text=f"{kind} {{ $0 }}",
                                            insert_text_format=lsp.InsertTextFormat.Snippet))
    if schema.get("type") == "boolean":
        items += [lsp.CompletionItem(label=v, kind=lsp.CompletionItemKind.Keyword) for v in ("true", "false")]
    if schema.get("type") == "array" and schema.get("items"):
        inner = an.registry.deref(schema["items"])
        kind = inner.get("properties", {}).get("kind", {}).get("const")
        if kind:
            items.append(lsp.CompletionItem(label=f"[{kind} {{ }}]", kind=lsp.CompletionItemKind.Struct,
                                            insert_text=f"[{kind} {{ $0 }}]",
                                            insert_text_format=lsp.InsertTextFormat.Snippet))
    for name, sym in an.globals().items():
        if sym.kind == "let":
            items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Constant,
                                            detail=_text(sym.source, sym.node.value.span)))
    return items


def _type_items(an: Analysis) -> list[lsp.CompletionItem]:
    items = []
    for name in an.registry.names():
        ct = an.registry.get(name)
        items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Class, detail=ct.description or None,
                                        insert_text=f"{name} {{ $0 }}",
                                        insert_text_format=lsp.InsertTextFormat.Snippet))
    for name, sym in an.globals().items():
        if sym.kind == "cell type":
            params = ", ".join(f"{p.name}: {p.type_name}" for p in sym.node.params)
            items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Class,
                                            detail=f"cell type ({params})", insert_text=f"{name} {{ $0 }}",
                                            insert_text_format=lsp.InsertTextFormat.Snippet))
    return items


def _local_items(an: Analysis, off: int) -> list[lsp.CompletionItem]:
    out = []
    for name, sym in an.locals(an.channel_at(off)).items():
        kind = lsp.CompletionItemKind.Variable if sym.kind == "cell" else lsp.CompletionItemKind.Interface
        detail = sym.node.type.text if sym.kind == "cell" else "endpoint"
        out.append(lsp.CompletionItem(label=name, kind=kind, detail=detail))
    return out


def _keyword_items(words) -> list[lsp.CompletionItem]:
    return [lsp.CompletionItem(label=w, kind=lsp.CompletionItemKind.Keyword) for w in words]

"""What the language server knows of one document, as pure functions of its text.

`analyze` compiles the text with the compiler's checks (imports resolved next to the file);
the other functions answer the editor's questions from that analysis: diagnostics, hover,
go to definition, completion, document symbols, formatting and quick fixes. Everything
about cell types and their parameters comes from the registry's schemas, so plugin cells
are described like built-ins. Positions are in the encoding the editor and server agreed on.
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
from ...ir import nodes as ir
from ...passes.context import Options
from ...registry import Registry
from ...source import Source, SourceMap, Span
from ...syntax import ast
from ..cells import _type_name, default_text, describe_cell
from . import positions
from .positions import UTF16

SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
            "note": lsp.DiagnosticSeverity.Information}
TOP_KEYWORDS = ("let", "import", "cell type", "channel")
CHANNEL_KEYWORDS = ("endpoints", "cell", "let", "at", "every")
BODY_KEYWORDS = ("cell", "let")  # in a compound cell type's body
ORIGIN = lsp.Position(line=0, character=0)


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
    kind: str       # "let", "cell type", "cell", "endpoint", "param", "port"
    node: Any       # the AST node that defines it (None for implicit endpoints and ports)
    span: Span      # the defining name's span
    source: Source


@dataclass
class Analysis:
    uri: str
    source: Source
    comp: Compilation
    registry: Registry
    file: ast.File
    enc: str = UTF16

    # -- positions in the agreed encoding
    def pos(self, off: int, src: Source | None = None) -> lsp.Position:
        return positions.position(src or self.source, off, self.enc)

    def range(self, span: Span, src: Source | None = None) -> lsp.Range:
        return positions.span_range(src or self.source, span, self.enc)

    def offset(self, pos: lsp.Position) -> int:
        return positions.offset(self.source, pos, self.enc)

    def whole(self) -> lsp.Range:
        return positions.whole_range(self.source, self.enc)

    def location(self, src: Source, span: Span) -> lsp.Location:
        uri = self.uri if src is self.source else path_to_uri(src.path) if src.path else self.uri
        return lsp.Location(uri=uri, range=self.range(span, src))

    def src_of(self, span: Span) -> Source:
        return self.comp.sources[span.source]

    # -- names
    def globals(self) -> dict[str, Symbol]:
        """This file's lets and cell types over those of the files it imports (`alias.name`)."""
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

    def scope(self, off: int, file: ast.File | None = None) -> dict[str, Symbol]:
        """Every name visible at `off`: the enclosing channel's or cell type's own over the file's."""
        out = self.globals()
        container = container_at(file or self.file, off)
        out.update(_local_symbols(container, self.source))
        return out

    def lookup(self, name: str, off: int) -> Symbol | None:
        return self.scope(off).get(name)

    def ir_channel(self, off: int) -> ir.Channel | None:
        """The compiled channel around `off` (compound cells expanded to `up.bw`, ...)."""
        container = container_at(self.file, off)
        if not isinstance(container, ast.Channel) or self.comp.program is None:
            return None
        return next((c for c in self.comp.program.channels if c.name == container.name), None)


def _file_symbols(file: ast.File, src: Source) -> Iterator[Symbol]:
    for st in file.body:
        if isinstance(st, ast.Let):
            yield Symbol(st.name, "let", st, st.name_span, src)
        elif isinstance(st, ast.CellType):
            yield Symbol(st.name, "cell type", st, st.name_span, src)


def container_at(file: ast.File, off: int) -> ast.Channel | ast.CellType | None:
    for st in file.body:
        if isinstance(st, (ast.Channel, ast.CellType)) and st.span.start <= off <= st.span.end:
            return st
    return None


def _local_symbols(container, src: Source) -> dict[str, Symbol]:
    out: dict[str, Symbol] = {}
    if container is None:
        return out
    if isinstance(container, ast.CellType):
        for p in container.params:
            out[p.name] = Symbol(p.name, "param", p, p.name_span, src)
        for port in ("in", "out"):
            out[port] = Symbol(port, "port", None, container.name_span, src)
    declared = False
    for st in container.body:
        if isinstance(st, ast.Let):
            out[st.name] = Symbol(st.name, "let", st, st.name_span, src)
        elif isinstance(st, ast.CellDecl):
            out[st.name] = Symbol(st.name, "cell", st, st.name_span, src)
        elif isinstance(st, ast.Endpoints):
            declared = True
            for name, span in st.names:
                out[name] = Symbol(name, "endpoint", st, span, src)
    if isinstance(container, ast.Channel) and not declared:
        for name in ("left", "right"):
            out.setdefault(name, Symbol(name, "endpoint", None, container.name_span, src))
    return out


def analyze(uri: str, text: str, registry: Registry, enc: str = UTF16) -> Analysis:
    """Compile a document as `rattan check` would, without optimizing."""
    path = uri_to_path(uri)
    comp = compile_text(text, path or uri, path=path, registry=registry, options=Options(optimize=False))
    comp.entry.line_starts()  # built here, in the worker thread, not by the first request
    # the checks always run (compiler.py), so the program and its first unit, this file, exist
    return Analysis(uri, comp.entry, comp, registry, comp.program.units[0].file, enc)


# ---------------------------------------------------------------- diagnostics
def diagnostics(an: Analysis) -> list[lsp.Diagnostic]:
    """Every finding of the compiler. One in an imported file is shown at the import that brought
    it in, with its own place as related information."""
    imports = _import_spans(an)
    return [_diagnostic(an, d, imports) for d in an.comp.diagnostics]


def imported_paths(an: Analysis) -> set[str]:
    """Every file this document imports, directly or not (absolute paths)."""
    prog = an.comp.program
    return {u.path for u in prog.units[1:] if u.path} if prog is not None else set()


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
        rng = lsp.Range(start=ORIGIN, end=ORIGIN)
    elif d.span.source == an.source.id:
        rng = an.range(d.span)
    else:  # in an imported file
        src = an.src_of(d.span)
        line, col = src.line_col(d.span.start)
        at = imports.get(d.span.source)
        rng = an.range(at) if at else lsp.Range(start=ORIGIN, end=ORIGIN)
        message = f"in {_shown(src, an.source)}:{line}:{col}: {message}"
        related.insert(0, lsp.DiagnosticRelatedInformation(location=an.location(src, d.span), message=d.message))
    return lsp.Diagnostic(range=rng, message=message, severity=SEVERITY.get(d.severity), code=d.code,
                          source="rattan", related_information=related or None)


def code_actions(an: Analysis, rng: lsp.Range) -> list[lsp.CodeAction]:
    """A quick fix for every finding at `rng` that has one obvious replacement ("did you mean")."""
    start, end = an.offset(rng.start), an.offset(rng.end)
    out = []
    for d in an.comp.diagnostics:
        if d.fix is None or d.span is None or d.span.source != an.source.id:
            continue
        if d.span.end < start or d.span.start > end:
            continue
        edit = lsp.TextEdit(range=an.range(d.span), new_text=d.fix)
        out.append(lsp.CodeAction(
            title=f"Replace `{an.source.text[d.span.start:d.span.end]}` with `{d.fix}`",
            kind=lsp.CodeActionKind.QuickFix, is_preferred=True,
            diagnostics=[_diagnostic(an, d, {})],
            edit=lsp.WorkspaceEdit(changes={an.uri: [edit]})))
    return out


# ---------------------------------------------------------------- the node under the cursor
_FIELDS: dict[type, tuple[str, ...]] = {}


def _children(node) -> Iterator[Any]:
    names = _FIELDS.get(type(node))
    if names is None:
        if not dataclasses.is_dataclass(node):
            return
        names = _FIELDS[type(node)] = tuple(f.name for f in dataclasses.fields(node))
    for name in names:
        v = getattr(node, name)
        if isinstance(v, tuple):
            for x in v:
                if hasattr(type(x), "__dataclass_fields__"):
                    yield x
        elif hasattr(type(v), "__dataclass_fields__") and not isinstance(v, Span):
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
    rec = reg.records().get(tag)
    return rec.schema if rec is not None else None


def params_of(an: Analysis, type_name: str, off: int) -> dict[str, dict[str, Any]]:
    """Parameters of a cell type or record kind: name -> {type, default, doc, required, runtime, schema}."""
    reg = an.registry
    ct = reg.get(type_name)
    if ct is not None:
        return {n: _param_info(reg, p, n in ct.required) for n, p in ct.properties.items()}
    sym = an.scope(off).get(type_name)
    if sym is not None and sym.kind == "cell type":
        return {p.name: {"type": p.type_name, "default": _text(sym.source, p.default.span) if p.default else "",
                         "doc": "", "required": p.default is None, "runtime": False,
                         "schema": _declared_schema(reg, p.type_name)}
                for p in sym.node.params}
    rec = record_schema(reg, type_name)
    if rec is not None:
        req = set(rec.get("required", ()))
        return {n: _param_info(reg, p, n in req) for n, p in rec.get("properties", {}).items() if n != "kind"}
    return {}


def _declared_schema(reg: Registry, type_name: str) -> Mapping[str, Any]:
    """What a compound parameter's declared type admits, as a schema (for value completion)."""
    if type_name == "queue":
        return reg.deref({"$ref": "rattan:queue"})
    if type_name == "bool":
        return {"type": "boolean"}
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


def _cell_type_markdown(an: Analysis, name: str, off: int) -> str | None:
    ct = an.registry.get(name)
    if ct is not None:
        return f"```text\n{describe_cell(an.registry, ct).rstrip()}\n```"
    sym = an.scope(off).get(name)
    if sym is not None and sym.kind == "cell type":
        return _definition_markdown(sym, an.source)
    rec = record_schema(an.registry, name)
    if rec is not None:
        lines = [f"**{name}**" + (f" — {rec['description']}" if rec.get("description") else "")]
        for n, info in params_of(an, name, off).items():
            lines.append(f"- `{n}`: {info['type']}" + (f" (default `{info['default']}`)" if info["default"] else "")
                         + (f" — {info['doc']}" if info["doc"] else ""))
        return "\n".join(lines)
    return None


def _definition_markdown(sym: Symbol, here: Source | None = None) -> str:
    node = sym.node
    if sym.kind == "cell type":
        end = node.body[0].span.start if node.body else node.span.end
        text = _text(sym.source, Span(node.span.source, node.span.start, end)).rstrip().rstrip("{").rstrip()
    elif sym.kind == "port":
        text = f"{sym.name}: the compound cell's {'input' if sym.name == 'in' else 'output'}"
    elif sym.kind == "endpoint":
        text = f"endpoint {sym.name}"
    elif sym.kind == "param":
        text = f"parameter {_text(sym.source, node.span)}"
    else:
        text = _text(sym.source, node.span)
    where = f"\n\n{sym.kind} from `{_shown(sym.source, here)}`" if sym.source is not here else ""
    return f"```rtn\n{text}\n```{where}"


def _target_cell(an: Analysis, parts: tuple[str, ...], off: int,
                 scope: dict[str, Symbol] | None = None) -> tuple[str, str] | None:
    """A timeline target's cell (`up`, or `up.bw` inside a compound): (its name, its type)."""
    name = ".".join(parts)
    chan = an.ir_channel(off)
    if chan is not None:
        cell = next((c for c in chan.cells if c.name == name), None)
        if cell is not None:
            return cell.name, cell.type
    if len(parts) == 1:  # not compiled (yet): a declared cell of a registered type
        sym = (scope if scope is not None else an.scope(off)).get(name)
        if sym is not None and sym.kind == "cell" and an.registry.get(sym.node.type.text) is not None:
            return name, sym.node.type.text
    return None


# ---------------------------------------------------------------- hover
def upstream_format(an: Analysis) -> str | None:
    """"toml" or "yaml" for upstream Rattan's documents (None for `.rtn`)."""
    fmt = an.file.format if an.file is not None else "rtn"
    return fmt if fmt in ("toml", "yaml") else None


def hover(an: Analysis, pos: lsp.Position) -> lsp.Hover | None:
    if upstream_format(an):
        from . import upstream
        return upstream.hover(an.source.text, pos, upstream_format(an) == "yaml")
    off = an.offset(pos)
    path = path_at(an.file, off)
    if not path:
        return None
    found = _hover_text(an, path, off)
    if found is None or not found[0]:
        return None
    text, span = found
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text), range=an.range(span))


def _field_info(an: Analysis, path: list[Any], off: int) -> tuple[str, str, dict[str, Any]] | None:
    """For a value written as a parameter (`state = down`, `trace = "x.trace"`): the owner's type,
    the parameter and what its schema says."""
    if len(path) < 3 or not isinstance(path[-2], ast.Field) or path[-2].value is not path[-1]:
        return None
    owner = path[-3]
    if not isinstance(owner, (ast.CellDecl, ast.Inline, ast.Record)):
        return None
    type_name = owner.tag.text if isinstance(owner, ast.Record) else owner.type.text
    info = params_of(an, type_name, off).get(path[-2].name)
    return (type_name, path[-2].name, info) if info else None


def trace_path(an: Analysis, path: list[Any], off: int) -> str | None:
    """The file a trace parameter's string names (resolved next to the document), if it is one."""
    found = _field_info(an, path, off)
    if found is None or not isinstance(path[-1], ast.String) or not found[2]["schema"].get("x-trace"):
        return None
    base = os.path.dirname(an.source.path) if an.source.path else os.getcwd()
    return os.path.normpath(os.path.join(base, path[-1].value))


def _trace_markdown(an: Analysis, file: str, kind: str) -> str:
    from ...passes.load_traces import TraceError, read_trace
    shown = _shown(Source(0, file, "", file), an.source)
    if not os.path.isfile(file):
        return f"`{shown}`: no such file"
    try:
        t = read_trace(file, kind)
    except (TraceError, OSError, ValueError) as e:
        return f"`{shown}`: malformed {kind} trace: {e}"
    facts = [f"{kind} trace `{shown}`", f"format {t.get('format', '?')}"]
    if "period_ns" in t:
        facts.append(f"period {t['period_ns'] / 1e9:g} s")
    for k in ("opportunities_ns", "steps", "points"):
        if k in t:
            facts.append(f"{len(t[k])} {k.split('_')[0]}")
    return ", ".join(facts)


def _import_markdown(an: Analysis, imp: ast.Import) -> str:
    target = _import_target(an, imp)
    if target is None:
        return f"`{imp.path.value}`: no such file next to this one"
    prog = an.comp.program
    unit = next((u for u in prog.units[1:] if u.path == target), None) if prog else None
    lines = [f"imports `{_shown(Source(0, target, '', target), an.source)}`"
             + (f" as `{imp.alias}` (its names are `{imp.alias}.NAME`)" if imp.alias else "")]
    if unit is not None:
        src = an.comp.sources[unit.file.source]
        for sym in _file_symbols(unit.file, src):
            detail = _text(src, sym.node.value.span) if sym.kind == "let" else \
                "(" + ", ".join(f"{p.name}: {p.type_name}" for p in sym.node.params) + ")"
            lines.append(f"- {sym.kind} `{sym.name}` {detail}")
    return "\n".join(lines)


def _enum_markdown(an: Analysis, type_name: str, param: str, info: dict[str, Any], value: str) -> str | None:
    schema = info.get("schema") or {}
    choices = [str(v) for v in schema.get("enum", ())]
    docs: dict[str, str] = {}
    for v in schema.get("oneOf", ()):
        v = an.registry.deref(v)
        if v.get("x-symbol") and "const" in v:
            choices.append(str(v["const"]))
            docs[str(v["const"])] = v.get("description", "")
    if value not in choices:
        return None
    head = f"```rtn\n{type_name} {{ {param} = {value} }}\n```"
    rest = ", ".join(f"`{c}`" if c != value else f"**`{c}`**" for c in choices)
    return "\n\n".join(x for x in (head, docs.get(value, ""), f"one of {rest}", info.get("doc", "")) if x)


def _hover_text(an: Analysis, path: list[Any], off: int) -> tuple[str, Span] | None:
    node = path[-1]
    parent = path[-2] if len(path) > 1 else None
    owner = next((n for n in reversed(path[:-1]) if isinstance(n, (ast.CellDecl, ast.Inline, ast.Record))), None)
    if isinstance(node, ast.String) and isinstance(parent, ast.Import):
        return _import_markdown(an, parent), node.span
    if isinstance(node, ast.String):
        file = trace_path(an, path, off)
        if file is not None:
            return _trace_markdown(an, file, _field_info(an, path, off)[2]["schema"]["x-trace"]), node.span
    if isinstance(node, ast.Name) and len(node.parts) == 1 and an.lookup(node.text, off) is None:
        found = _field_info(an, path, off)
        if found is not None:
            text = _enum_markdown(an, *found, node.text)
            if text:
                return text, node.span
    if isinstance(node, ast.Field) and _in(node.name_span, off) and owner is not None:
        type_name = owner.tag.text if isinstance(owner, ast.Record) else owner.type.text
        info = params_of(an, type_name, off).get(node.name)
        return (_param_markdown(type_name, node.name, info), node.name_span) if info else None
    if isinstance(node, ast.Endpoints):
        for name, span in node.names:
            if _in(span, off):
                return f"```rtn\nendpoint {name}\n```", span
        return None
    if isinstance(node, ast.ParamDecl) and _in(node.name_span, off):
        return _definition_markdown(Symbol(node.name, "param", node, node.name_span, an.source),
                                    an.source), node.name_span
    if isinstance(node, (ast.CellDecl, ast.CellType, ast.Let, ast.Channel)) and _in(node.name_span, off):
        if isinstance(node, ast.CellDecl):
            return _cell_type_markdown(an, node.type.text, off) or "", node.name_span
        if isinstance(node, ast.CellType):
            return _definition_markdown(Symbol(node.name, "cell type", node, node.name_span, an.source),
                                        an.source), node.name_span
        if isinstance(node, ast.Let):
            return f"```rtn\n{_text(an.source, node.span)}\n```", node.name_span
        return None
    if isinstance(node, ast.Name):
        if isinstance(parent, (ast.CellDecl, ast.Inline)) and parent.type is node:
            return _cell_type_markdown(an, node.text, off), node.span
        if isinstance(parent, ast.Record) and parent.tag is node:
            return _cell_type_markdown(an, node.text, off), node.span
        if isinstance(parent, ast.Assign) and parent.target is node and len(node.parts) >= 2:
            cell = _target_cell(an, node.parts[:-1], off)
            if cell is not None:
                info = params_of(an, cell[1], off).get(node.parts[-1])
                if info is not None:
                    return _param_markdown(f"{cell[0]}: {cell[1]}", node.parts[-1], info), node.span
            return None
        sym = an.lookup(node.text, off)
        return (_definition_markdown(sym, an.source), node.span) if sym is not None else None
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
    off = an.offset(pos)
    path = path_at(an.file, off)
    if not path:
        return None
    node = path[-1]
    if isinstance(node, ast.String) and len(path) > 1 and isinstance(path[-2], ast.Import):
        target = _import_target(an, path[-2])
        return lsp.Location(uri=path_to_uri(target), range=lsp.Range(start=ORIGIN, end=ORIGIN)) if target else None
    if isinstance(node, ast.String):
        target = trace_path(an, path, off)
        if target is not None and os.path.isfile(target):
            return lsp.Location(uri=path_to_uri(target), range=lsp.Range(start=ORIGIN, end=ORIGIN))
        return None
    from .rename import target_at
    t = target_at(an, off)  # what the compiler resolved the name to
    if t is not None and t.at != t.definition.span:
        return an.location(an.src_of(t.definition.span), t.definition.span)
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
    """The outline of a `.rtn` file (none for a TOML or YAML document: its channels are made by
    the compiler, not written)."""
    if upstream_format(an):
        return []
    src = an.source
    out = []
    for st in an.file.body:
        if isinstance(st, ast.Let):
            out.append(_sym(an, st.name, lsp.SymbolKind.Constant, st.span, st.name_span, _text(src, st.value.span)))
        elif isinstance(st, ast.CellType):
            params = ", ".join(f"{p.name}: {p.type_name}" for p in st.params)
            out.append(_sym(an, st.name, lsp.SymbolKind.Class, st.span, st.name_span, f"({params})"))
        elif isinstance(st, ast.Import):
            out.append(_sym(an, st.path.value, lsp.SymbolKind.Module, st.span, st.path.span,
                            f"as {st.alias}" if st.alias else ""))
        elif isinstance(st, ast.Channel):
            children = []
            for c in st.body:
                if isinstance(c, ast.CellDecl):
                    children.append(_sym(an, c.name, lsp.SymbolKind.Object, c.span, c.name_span, c.type.text))
                elif isinstance(c, ast.Let):
                    children.append(_sym(an, c.name, lsp.SymbolKind.Constant, c.span, c.name_span,
                                         _text(src, c.value.span)))
                elif isinstance(c, ast.Endpoints):
                    for name, span in c.names:
                        children.append(_sym(an, name, lsp.SymbolKind.Interface, span, span, "endpoint"))
                elif isinstance(c, (ast.At, ast.Every)):
                    label = ("at " + _text(src, c.time.span) if isinstance(c, ast.At)
                             else f"every {_text(src, c.period.span)} for {_text(src, c.duration.span)}")
                    children.append(_sym(an, label, lsp.SymbolKind.Event, c.span, c.span, "timeline"))
            out.append(lsp.DocumentSymbol(name=st.name, kind=lsp.SymbolKind.Namespace, detail="channel",
                                          range=an.range(st.span), selection_range=an.range(st.name_span),
                                          children=children))
    return out


def _sym(an: Analysis, name, kind, span, sel, detail) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(name=name, kind=kind, detail=detail or None, range=an.range(span),
                              selection_range=an.range(sel))


# ---------------------------------------------------------------- formatting
def formatting(an: Analysis) -> list[lsp.TextEdit] | None:
    """The whole text in canonical form (`rattan fmt`, keeping the file's line breaks), or None
    while it has syntax errors."""
    from ...syntax.parser import parse
    from ..fmt import format_file
    if upstream_format(an):
        return None
    sink = Sink()
    file = parse(an.source, sink)
    if sink.has_errors:
        return None
    out = format_file(file, an.source)
    if "\r\n" in an.source.text:
        out = out.replace("\n", "\r\n")
    if out == an.source.text:
        return []
    return [lsp.TextEdit(range=an.whole(), new_text=out)]


# ---------------------------------------------------------------- completion
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


_TOP_LEVEL = re.compile(r"(?:channel|cell\s+type|let|import)\b")


def statement_start(text: str, off: int) -> int:
    """Where the top-level statement around `off` starts: the last line at or before it that
    begins, at its first column, with a keyword only a top-level statement starts with (0 if
    none). What is typed before the cursor is read from there, not from the top of the file."""
    i = text.rfind("\n", 0, off)
    while i >= 0:
        if _TOP_LEVEL.match(text, i + 1):
            return i + 1
        i = text.rfind("\n", 0, i)
    return 0


def _strip_code(text: str) -> tuple[str, bool]:
    """`text` with comments and string contents blanked (same length), and whether it ends inside
    a comment or a string."""
    out = []
    i, n = 0, len(text)
    inside = False
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            inside = j < 0
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif ch == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            inside = j >= n
            j = min(j + 1, n)
            out.append('"' + " " * max(0, j - i - 2) + ('"' if j - i >= 2 else ""))
            i = j
        else:
            inside = False
            out.append(ch)
            i += 1
    return "".join(out), inside


@dataclass(frozen=True)
class _Open:
    bracket: str
    head: str   # the line's text before the bracket
    at: int     # the bracket's offset


def _open_brackets(code: str) -> list[_Open]:
    """The brackets still open at the end of `code`, outermost first."""
    stack: list[_Open] = []
    for i, ch in enumerate(code):
        if ch in "{([":
            line_start = code.rfind("\n", 0, i) + 1
            stack.append(_Open(ch, code[line_start:i], i))
        elif ch in "})]" and stack:
            stack.pop()
    return stack


def _fields_here(code: str, start: int) -> set[str]:
    """`name =` fields written at the top level of the block opened at `start`."""
    names, depth = set(), 0
    for m in re.finditer(rf"[{{}}()\[\]]|({_NAME})\s*=", code[start + 1:]):
        tok = m.group(0)
        if tok in "{([":
            depth += 1
        elif tok in "})]":
            depth -= 1
        elif depth == 0:
            names.add(m.group(1))
    return names


def completion(an: Analysis, pos: lsp.Position, moved: positions.Moved | None = None) -> list[lsp.CompletionItem]:
    """What fits at `pos`. With `moved`, the analysis is of an older text than the document's:
    the context (what is typed before the cursor) is read from the current text, names and
    types from the analysis, at the cursor's place in the analysed text."""
    text = moved.new_text if moved else an.source.text
    off = moved.new_offset(pos, an.enc) if moved else an.offset(pos)
    at = moved.back(off) if moved else off  # the cursor's offset in the analysed text
    if upstream_format(an):
        from . import upstream
        return upstream.completion(text, pos, upstream_format(an) == "yaml")
    base = statement_start(text, off)
    code, in_comment_or_string = _strip_code(text[base:off])  # offsets in `code` are from `base`
    if in_comment_or_string:
        return []
    line = code[code.rfind("\n") + 1:]
    typed = _IDENT.search(line)
    before = line[:len(line) - (len(typed.group(0)) if typed else 0)]
    opened = _open_brackets(code)
    braces = [o for o in opened if o.bracket == "{"]
    inner = opened[-1] if opened else None
    timeline = bool(braces) and re.match(r"\s*(at|every)\b", braces[-1].head) is not None
    file, here = _scope_file(an, at, code, text, base)
    scope = an.scope(here, file)
    container = container_at(file, here)

    # `a.b.` : a timeline target's cells and parameters, or the names an import alias brings
    m = re.search(rf"({_NAME}(?:\.{_NAME})*)\.$", before)
    if m:
        parts = tuple(m.group(1).split("."))
        if timeline:
            return _target_items(an, parts, at, scope)
        prefix = m.group(1) + "."
        return [_symbol_item(name[len(prefix):], sym) for name, sym in scope.items()
                if name.startswith(prefix) and "." not in name[len(prefix):]]
    # `param =` : the values that fit the parameter
    m = re.search(rf"({_NAME}(?:\.{_NAME})*)\s*=\s*$", before)
    if m and timeline:
        parts = tuple(m.group(1).split("."))
        cell = _target_cell(an, parts[:-1], at, scope) if len(parts) > 1 else None
        info = params_of(an, cell[1], at).get(parts[-1]) if cell else None
        return _value_items(an, info, scope)
    if m and inner is not None and inner.bracket == "{":
        owner = _block_owner(inner.head)
        info = params_of(an, owner, at).get(m.group(1)) if owner else None
        return _value_items(an, info, scope)
    # a chain element after `->`, or the type after `cell NAME:`
    own_type = container.name if isinstance(container, ast.CellType) else None
    if re.search(r"->\s*$", before):
        return _type_items(an, scope, own_type) + _local_items(scope, chain=True)
    if re.search(rf"\bcell\s+{_NAME}\s*:\s*$", before):
        return _type_items(an, scope, own_type)
    # an item of a list parameter: `routes = [route { ... }, |`
    if inner is not None and inner.bracket == "[" and re.fullmatch(r".*[\[,]\s*|\s*", before):
        lm = re.search(rf"({_NAME})\s*=\s*$", inner.head)
        owner = _block_owner(braces[-1].head) if braces else None
        info = params_of(an, owner, at).get(lm.group(1)) if lm and owner else None
        items_schema = an.registry.deref(((info or {}).get("schema") or {}).get("items") or {})
        return _kind_items([items_schema]) if items_schema else []
    # a field name inside a cell's or record's braces, or a target in a timeline block
    if inner is not None and inner.bracket == "{" and re.fullmatch(r".*[{,]\s*|\s*", before):
        if timeline:
            return [it for it in _local_items(scope) if it.kind == lsp.CompletionItemKind.Variable]
        owner = _block_owner(inner.head)
        if owner is not None:
            present = _fields_here(code, inner.at)
            return [_param_item(n, info) for n, info in params_of(an, owner, at).items() if n not in present]
    # the start of a statement
    if before.strip() == "":
        if isinstance(container, ast.CellType) or (braces and re.match(r"\s*cell\s+type\b", braces[0].head)):
            return _keyword_items(BODY_KEYWORDS) + _local_items(scope, chain=True)
        if braces and re.match(r"\s*channel\b", braces[0].head):
            return _keyword_items(CHANNEL_KEYWORDS) + _local_items(scope, chain=True)
        if not braces:
            return _keyword_items(TOP_KEYWORDS)
    return []


def _scope_file(an: Analysis, off: int, code: str, text: str, base: int) -> tuple[ast.File, int]:
    """The AST to find names in, and the offset to look from: the analysed one, or, where a block
    being typed left the enclosing channel or cell type out of it, the lines of `text` (the current
    one) before the cursor's with the open blocks closed (looked at from the start of the cursor's
    line)."""
    if container_at(an.file, off) is not None:
        return an.file, off
    line_start = base + code.rfind("\n") + 1
    depth = sum(1 for o in _open_brackets(code[:line_start - base]) if o.bracket == "{")
    if depth == 0:
        return an.file, off
    from ...syntax.parser import parse
    text = text[:line_start] + "\n" + "}\n" * depth
    src = SourceMap().add(an.source.name, text, an.source.path)
    src.id = an.source.id  # the same offsets as the document up to the cursor's line
    return parse(src, Sink()), line_start


def _block_owner(head: str) -> str | None:
    """The cell type or record kind whose braces these are: `cell up: bw {` -> bw, `queue = codel {` -> codel."""
    if re.match(r"\s*(channel|at|every|cell\s+type)\b", head):
        return None
    m = re.search(rf"({_NAME}(?:\.{_NAME})*)\s*$", head)
    return m.group(1) if m else None


def _target_items(an: Analysis, parts: tuple[str, ...], off: int,
                  scope: dict[str, Symbol]) -> list[lsp.CompletionItem]:
    """After `up.` in a timeline: the parameters of `up`, or the cells inside it if it is a compound."""
    cell = _target_cell(an, parts, off, scope)
    if cell is not None:
        reg_type = an.registry.get(cell[1])
        return [_param_item(n, info) for n, info in params_of(an, cell[1], off).items()
                if info["runtime"] or reg_type is None]
    chan = an.ir_channel(off)
    prefix = ".".join(parts) + "."
    seen: dict[str, str] = {}
    for c in chan.cells if chan else ():
        if c.name.startswith(prefix):
            rest = c.name[len(prefix):].split(".")
            seen.setdefault(rest[0], c.type if len(rest) == 1 else "compound cell")
    return [lsp.CompletionItem(label=n, kind=lsp.CompletionItemKind.Variable, detail=t) for n, t in seen.items()]


def _param_item(name: str, info: Mapping[str, Any]) -> lsp.CompletionItem:
    detail = info["type"] + (" (required)" if info["required"] else f" = {info['default']}" if info["default"] else "")
    return lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Property, detail=detail,
                              documentation=info.get("doc") or None, insert_text=f"{name} = ",
                              sort_text=("0" if info["required"] else "1") + name)


def _kind_items(variants) -> list[lsp.CompletionItem]:
    items = []
    for v in variants:
        kind = v.get("properties", {}).get("kind", {}).get("const")
        if kind:
            items.append(lsp.CompletionItem(label=kind, kind=lsp.CompletionItemKind.Struct,
                                            detail=v.get("description") or None, insert_text=f"{kind} {{ $0 }}",
                                            insert_text_format=lsp.InsertTextFormat.Snippet))
    return items


def _value_items(an: Analysis, info: Mapping[str, Any] | None, scope: dict[str, Symbol]) -> list[lsp.CompletionItem]:
    """Values for a parameter: its enum, its symbols, its record kinds, booleans, endpoint names for
    a prefix, and the `let`s and compound parameters in scope."""
    items: list[lsp.CompletionItem] = []
    schema = (info or {}).get("schema") or {}
    for v in schema.get("enum", ()):
        items.append(lsp.CompletionItem(label=str(v), kind=lsp.CompletionItemKind.EnumMember))
    variants = [an.registry.deref(v) for v in schema.get("oneOf", ())]
    for v in variants:
        if v.get("x-symbol") and "const" in v:
            items.append(lsp.CompletionItem(label=str(v["const"]), kind=lsp.CompletionItemKind.EnumMember,
                                            detail=v.get("description") or None))
    items += _kind_items(variants)
    if schema.get("type") == "boolean":
        items += [lsp.CompletionItem(label=v, kind=lsp.CompletionItemKind.Keyword) for v in ("true", "false")]
    if schema.get("type") == "array" and schema.get("items"):
        for it in _kind_items([an.registry.deref(schema["items"])]):
            items.append(lsp.CompletionItem(label=f"[{it.label} {{ }}]", kind=lsp.CompletionItemKind.Struct,
                                            insert_text=f"[{it.label} {{ $0 }}]",
                                            insert_text_format=lsp.InsertTextFormat.Snippet))
    if schema.get("x-unit") == "prefix":
        items += [lsp.CompletionItem(label=n, kind=lsp.CompletionItemKind.Interface, detail="endpoint")
                  for n, s in scope.items() if s.kind == "endpoint"]
    for name, sym in scope.items():
        if sym.kind == "let":
            items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Constant,
                                            detail=_text(sym.source, sym.node.value.span)))
        elif sym.kind == "param":
            items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Variable,
                                            detail=f"parameter: {sym.node.type_name}"))
    return items


def _type_items(an: Analysis, scope: dict[str, Symbol], exclude: str | None = None) -> list[lsp.CompletionItem]:
    items = []
    for name in an.registry.names():
        ct = an.registry.get(name)
        items.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Class, detail=ct.description or None,
                                        insert_text=f"{name} {{ $0 }}",
                                        insert_text_format=lsp.InsertTextFormat.Snippet))
    for name, sym in scope.items():
        if sym.kind == "cell type" and name != exclude:
            items.append(_symbol_item(name, sym))
    return items


def _symbol_item(label: str, sym: Symbol) -> lsp.CompletionItem:
    if sym.kind == "cell type":
        params = ", ".join(f"{p.name}: {p.type_name}" for p in sym.node.params)
        return lsp.CompletionItem(label=label, kind=lsp.CompletionItemKind.Class, detail=f"cell type ({params})",
                                  insert_text=f"{label} {{ $0 }}", insert_text_format=lsp.InsertTextFormat.Snippet)
    detail = _text(sym.source, sym.node.value.span) if sym.kind == "let" else sym.kind
    return lsp.CompletionItem(label=label, kind=lsp.CompletionItemKind.Constant, detail=detail)


def _local_items(scope: dict[str, Symbol], chain: bool = False) -> list[lsp.CompletionItem]:
    """The cells and endpoints in scope (and a compound's `in`/`out` where a chain may name them)."""
    out = []
    for name, sym in scope.items():
        if sym.kind == "cell":
            out.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Variable,
                                          detail=sym.node.type.text))
        elif sym.kind == "endpoint" or (chain and sym.kind == "port"):
            out.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Interface, detail=sym.kind))
    return out


def _keyword_items(words) -> list[lsp.CompletionItem]:
    return [lsp.CompletionItem(label=w, kind=lsp.CompletionItemKind.Keyword) for w in words]

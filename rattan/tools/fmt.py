"""`rattan fmt`: print an AST back as canonical `.rtn`, keeping every comment.

Canonical means: four-space indentation, one space around `=`, `->` and
operators, `{ a = 1, b = 2 }` on one line unless the source spread it over
several (then one item per line), blank lines between statements kept (at most
one), literals exactly as written. Printing the output again gives the same text.
"""
from __future__ import annotations

import os

from ..source import Source
from ..syntax import ast

INDENT = "    "
MAX_WIDTH = 100


class Printer:
    """Emits lines; pulls comments in by position so none is lost."""

    def __init__(self, file: ast.File, source: Source | None) -> None:
        self.src = source
        self.comments = sorted(file.comments, key=lambda c: c.span.start) if source else []
        self.ci = 0
        self.lines: list[str] = []

    # -- comments
    def leading(self, pos: int, indent: str) -> bool:
        """Own-line comments before `pos`; True if any were written."""
        wrote = False
        while self.ci < len(self.comments) and self.comments[self.ci].span.start < pos:
            c = self.comments[self.ci]
            if self.lines and self.lines[-1] != "" and self._blank_before(c.span.start):
                self.lines.append("")
            self.lines.append(indent + c.text.rstrip())
            self.ci += 1
            wrote = True
        return wrote

    def trailing(self, end: int) -> str:
        """A comment on the same line after `end`, as `  # text`."""
        if self.ci < len(self.comments) and self.src is not None:
            c = self.comments[self.ci]
            if c.span.start >= end and "\n" not in self.src.text[end:c.span.start]:
                self.ci += 1
                return "  " + c.text.rstrip()
        return ""

    def _blank_before(self, pos: int) -> bool:
        if self.src is None:
            return False
        text = self.src.text
        i = pos - 1
        while i >= 0 and text[i] in " \t":
            i -= 1
        j = i
        while j >= 0 and text[j] in " \t\r\n":
            j -= 1
        return text.count("\n", j + 1, pos) >= 2

    # -- statements
    def body(self, stmts, indent: str, end: int | None) -> None:
        for st in stmts:
            self.leading(st.span.start, indent)
            if self.lines and self.lines[-1] != "" and not self.lines[-1].endswith("{") \
                    and self._blank_before(st.span.start):
                self.lines.append("")
            self.stmt(st, indent)
        if end is not None:
            self.leading(end, indent)

    def emit(self, indent: str, text: str, end: int) -> None:
        self.lines.append(indent + text + self.trailing(end))

    def stmt(self, st, indent: str) -> None:
        if isinstance(st, ast.Let):
            self.emit(indent, f"let {st.name} = {self.expr(st.value, indent)}", st.span.end)
        elif isinstance(st, ast.Import):
            alias = f" as {st.alias}" if st.alias else ""
            self.emit(indent, f"import {string_literal(st.path.value)}{alias}", st.span.end)
        elif isinstance(st, ast.Endpoints):
            self.emit(indent, "endpoints " + ", ".join(n for n, _ in st.names), st.span.end)
        elif isinstance(st, ast.CellDecl):
            head = f"cell {st.name}: {st.type.text}"
            if not st.has_block:
                self.emit(indent, head, st.span.end)
            else:
                self.block(head, st.params, st.multiline, indent, st.span)
        elif isinstance(st, ast.Channel):
            self.lines.append(indent + f"channel {st.name} {{" + self.trailing(st.name_span.end + 1))
            self.body(st.body, indent + INDENT, st.span.end)
            self.emit(indent, "}", st.span.end)
        elif isinstance(st, ast.CellType):
            params = [self.param_decl(p, indent) for p in st.params]
            one = f"cell type {st.name}(" + ", ".join(params) + ") {"
            if len(indent + one) <= MAX_WIDTH:
                self.lines.append(indent + one)
            else:
                self.lines.append(indent + f"cell type {st.name}(")
                for p in params:
                    self.lines.append(indent + INDENT + p + ",")
                self.lines.append(indent + ") {")
            self.body(st.body, indent + INDENT, st.span.end)
            self.emit(indent, "}", st.span.end)
        elif isinstance(st, ast.Chain):
            self.chain(st, indent)
        elif isinstance(st, (ast.At, ast.Every)):
            head = (f"at {self.expr(st.time, indent)}" if isinstance(st, ast.At) else
                    f"every {self.expr(st.period, indent)} for {self.expr(st.duration, indent)}")
            multiline = self.src is not None and "\n" in self.src.text[st.span.start:st.span.end]
            items = [(a.span, f"{a.target.text} = {self.expr(a.value, indent + INDENT)}") for a in st.assigns]
            self.items_block(head, items, multiline, indent, st.span)

    def param_decl(self, p: ast.ParamDecl, indent: str) -> str:
        s = f"{p.name}: {p.type_name}"
        if p.default is not None:
            s += " = " + self.expr(p.default, indent)
        return s

    def block(self, head: str, fields, multiline: bool, indent: str, span) -> None:
        items = [(f.span, f"{f.name} = {self.expr(f.value, indent + INDENT)}") for f in fields]
        self.items_block(head, items, multiline, indent, span)

    def items_block(self, head: str, items, multiline: bool, indent: str, span) -> None:
        if not multiline or not items:
            inner = ", ".join(t for _, t in items)
            self.emit(indent, f"{head} {{ {inner} }}" if inner else f"{head} {{ }}", span.end)
            return
        self.lines.append(indent + head + " {" + self.trailing_after_brace(span, items))
        for sp, text in items:
            self.leading(sp.start, indent + INDENT)
            self.emit(indent + INDENT, text, sp.end)
        self.leading(span.end - 1, indent + INDENT)
        self.emit(indent, "}", span.end)

    def trailing_after_brace(self, span, items) -> str:
        if self.src is None or not items:
            return ""
        brace = self.src.text.find("{", span.start, items[0][0].start)
        return self.trailing(brace + 1) if brace >= 0 else ""

    def chain(self, st: ast.Chain, indent: str) -> None:
        parts = [self.element(st.elements[0], indent)]
        line = indent + parts[0]
        breaks = st.line_breaks or (False,) * (len(st.elements) - 1)
        for el, br in zip(st.elements[1:], breaks):
            text = self.element(el, indent + INDENT)
            if br:
                prev_end = self._prev_end(st, el)
                self.lines.append(line + self.trailing(prev_end))
                self.leading(el.span.start, indent + INDENT)
                line = indent + INDENT + "-> " + text
            else:
                line += " -> " + text
        self.lines.append(line + self.trailing(st.span.end))

    @staticmethod
    def _prev_end(st: ast.Chain, el) -> int:
        i = st.elements.index(el)
        return st.elements[i - 1].span.end

    def element(self, el, indent: str) -> str:
        if isinstance(el, ast.Ref):
            return el.name.text + (f"[{el.port}]" if el.port is not None else "")
        inner = ", ".join(f"{f.name} = {self.expr(f.value, indent)}" for f in el.params)
        return f"{el.type.text} {{ {inner} }}" if inner else f"{el.type.text} {{ }}"

    # -- expressions
    def expr(self, e, indent: str) -> str:
        if isinstance(e, (ast.Quantity, ast.Number)):
            return e.text
        if isinstance(e, ast.String):
            return string_literal(e.value)
        if isinstance(e, ast.Bool):
            return "true" if e.value else "false"
        if isinstance(e, ast.Name):
            return e.text
        if isinstance(e, ast.Paren):
            return "(" + self.expr(e.inner, indent) + ")"
        if isinstance(e, ast.Neg):
            return "-" + self.expr(e.operand, indent)
        if isinstance(e, ast.BinOp):
            return f"{self.expr(e.left, indent)} {e.op} {self.expr(e.right, indent)}"
        if isinstance(e, ast.Record):
            if e.multiline and self._comments_within(e.span):  # one per line, so its comments stay put
                items = [(f.span, f"{f.name} = {self.expr(f.value, indent + INDENT)}") for f in e.fields]
                return self._lines(f"{e.tag.text} {{", items, "", "}", e.span, indent)
            inner = ", ".join(f"{f.name} = {self.expr(f.value, indent)}" for f in e.fields)
            return f"{e.tag.text} {{ {inner} }}" if inner else f"{e.tag.text} {{ }}"
        if isinstance(e, ast.List):
            if e.multiline:
                items = [(i.span, self.expr(i, indent + INDENT)) for i in e.items]
                return self._lines("[", items, ",", "]", e.span, indent)
            return "[" + ", ".join(self.expr(i, indent + INDENT) for i in e.items) + "]"
        raise TypeError(f"cannot print {type(e).__name__}")


    def _comments_within(self, span) -> bool:
        return self.ci < len(self.comments) and self.comments[self.ci].span.start < span.end

    def _lines(self, opening: str, items, sep: str, closing: str, span, indent: str) -> str:
        """A bracketed value one item per line, with the comments written among its items."""
        inner = indent + INDENT
        first = items[0][0].start if items else span.end
        at_opening = self.ci < len(self.comments) and self.comments[self.ci].span.start < first
        out = [opening + (self._comment_after(span.start + len(opening)) if at_opening else "")]
        for sp, text in items:
            out += [inner + c for c in self._comments_before(sp.start)]
            out.append(inner + text + sep + self._comment_after(sp.end))
        out += [inner + c for c in self._comments_before(span.end - 1)]
        out.append(indent + closing)
        return "\n".join(out)

    def _comments_before(self, pos: int) -> list[str]:
        out = []
        while self.ci < len(self.comments) and self.comments[self.ci].span.start < pos:
            out.append(self.comments[self.ci].text.rstrip())
            self.ci += 1
        return out

    def _comment_after(self, end: int) -> str:
        return self.trailing(end) if self.src is not None else ""


def string_literal(s: str) -> str:
    """`s` as a `.rtn` string literal (the escapes the parser reads back)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def format_file(file: ast.File, source: Source | None) -> str:
    """Canonical text of a parsed file (comments from `source`, if given)."""
    p = Printer(file, source)
    p.body(file.body, "", None)
    while p.ci < len(p.comments):  # comments after the last statement
        if p.lines and p._blank_before(p.comments[p.ci].span.start):
            p.lines.append("")
        p.lines.append(p.comments[p.ci].text.rstrip())
        p.ci += 1
    text = "\n".join(p.lines).rstrip("\n")
    return text + "\n" if text else ""


def rtn_files(paths: list[str]) -> list[str]:
    """What `rattan fmt PATH...` works on: each file as given, and every `.rtn` file under each
    folder (sorted; hidden folders skipped), so `rattan fmt --check examples` covers `examples/lib`."""
    out = []
    for path in paths:
        if not os.path.isdir(path):
            out.append(path)
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            out += [os.path.join(root, f) for f in sorted(files) if f.endswith(".rtn")]
    return out

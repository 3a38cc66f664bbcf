"""Parse `.rtn` text into the AST, reporting every syntax error (recovering per statement)."""
from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken, UnexpectedCharacters

from ..diagnostics import Label, Sink, did_you_mean
from ..source import Source, Span
from ..units import MAX_EXPONENT, READINGS, UNITS, NumberTooLarge, parse_number, unit_advice
from . import ast
from .lexer import ScannerLexer

MAX_DEPTH = 200  # brackets nested deeper than this are refused (RTN007)

_TOKEN_NAMES = {
    "_NL": "end of line", "NAME": "name", "QUANTITY": "quantity", "NUMBER": "number",
    "STRING": "string", "ARROW": "`->`", "RBRACE": "`}`", "LBRACE": "`{`", "LPAR": "`(`",
    "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`", "EQUAL": "`=`", "COLON": "`:`",
    "COMMA": "`,`", "DOT": "`.`", "PLUS": "`+`", "MINUS": "`-`", "STAR": "`*`",
    "SLASH": "`/`", "$END": "end of file",
}
_OPEN = {"LBRACE": "RBRACE", "LPAR": "RPAR", "LSQB": "RSQB"}


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type in ("NAME", "QUANTITY", "NUMBER", "STRING"):
        return f"{_TOKEN_NAMES[tok.type]} `{tok.value}`"
    if tok.type == "_NL":
        return "end of line"
    return f"`{tok.value}`"


# What may follow a number as its unit: the letters of QUANTITY's suffix, or `%`, up to the end of the word.
_SPACED_UNIT = re.compile(r"%|[A-Za-z\u00b5\u03bc][A-Za-z0-9\u00b5\u03bc]*(?:/(?:s|sec))?(?![A-Za-z0-9_])")


class _PostLexer:
    """Newline handling, `10 ms` detection, bad tokens and nesting depth, between lexer and parser."""

    always_accept = ("_NL", "BAD_STRING", "BAD_CHAR")

    def __init__(self) -> None:
        self.sink: Sink | None = None
        self.sid = 0
        self.text = ""

    def _span(self, t: Token) -> Span:
        return Span(self.sid, t.start_pos, t.end_pos)

    def _unit_after(self, held: Token, tok: Token) -> str | None:
        """The unit, accepted or refused, that `tok` starts after a space behind the number `held`
        (`5 µs`, `10 Mbit/s`, `10 MBps`, `1 %`), or None. A number followed by a name is never valid,
        so reading one as a unit takes nothing that could parse."""
        if tok.start_pos <= held.end_pos:
            return None
        m = _SPACED_UNIT.match(self.text, tok.start_pos)
        if m is None:
            return None
        u = m.group()
        for cand in (u, u.split("/")[0]):  # `10 ms/s` is `10ms / s`
            if cand in UNITS or cand in READINGS:
                return cand
        return None

    def process(self, stream):
        stream = iter(stream)
        sink = self.sink
        pending_nl = None
        held = None  # a NUMBER, held back until we know whether a unit follows it after a space
        depth = 0
        for tok in stream:
            tt = tok.type
            if tt == "_NL":
                if pending_nl is None:
                    pending_nl = tok
                continue
            if held is not None:
                unit = self._unit_after(held, tok) if pending_nl is None else None
                if unit is not None:
                    end = tok.start_pos + len(unit)
                    while tok.end_pos < end:  # `µs` is a BAD_CHAR and a NAME, `Mbit/s` three tokens
                        tok = next(stream)
                    # `10 mbps`: `10mbps` is refused too (its RTN004 follows), so say so rather than
                    # advise writing what is still wrong
                    also = "" if unit in UNITS else f" (without the space; `{unit}` is wrong too: see the next error)"
                    sink.emit("RTN003", f"`{held.value} {unit}`: a number and its unit are written together",
                              Span(self.sid, held.start_pos, end),
                              help=f"write `{held.value}{unit}`{also}", fix=f"{held.value}{unit}")
                    # Recover as if it had been written correctly: an accepted unit then has no error
                    # that follows from the space, a refused one (`10 MBps`) gets its own RTN004.
                    yield Token("QUANTITY", held.value + unit, held.start_pos, held.line, held.column,
                                tok.end_line, tok.end_column, end)
                    held = None
                    continue
                yield held
                held = None
            if tt == "BAD_STRING":
                sink.emit("RTN002", "unterminated string", self._span(tok),
                          help="close the string with `\"` on the same line")
                tok = Token("STRING", tok.value + '"', tok.start_pos, tok.line, tok.column,
                            tok.end_line, tok.end_column, tok.end_pos)
                tt = "STRING"
            elif tt == "BAD_CHAR":
                ch = tok.value
                what = f"U+{ord(ch):04X}" if not ch.isprintable() else f"`{ch}`"
                sink.emit("RTN005", f"invalid character {what}", self._span(tok),
                          help="remove it" if ch.isprintable() else "the file must be UTF-8 text")
                continue
            if pending_nl is not None:
                if tt != "ARROW":  # a line starting with `->` continues the chain above
                    yield pending_nl
                pending_nl = None
            if tt == "NUMBER":
                held = tok
                continue
            if tt in ("LPAR", "LSQB") or tok.value == "{":
                depth += 1
                if depth > MAX_DEPTH:
                    sink.emit("RTN007", f"brackets nested more than {MAX_DEPTH} deep", self._span(tok),
                              help="split the expression with `let`")
                    raise _TooDeep()
            elif tt in ("RPAR", "RSQB", "RBRACE"):
                depth = max(0, depth - 1)
            yield tok
        if held is not None:
            yield held
        if pending_nl is not None:
            yield pending_nl


class _TooDeep(Exception):
    pass


class _AstBuilder(Transformer):
    """Builds AST nodes bottom-up while the LALR parser reduces (no parse tree in between)."""

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self.sid = 0
        self.text = ""
        self.sink: Sink | None = None
        # Where the closing `}` of each block that recovery skipped text in starts (see
        # _parse_recovering): the record or cell it closes is built `incomplete`.
        self.incomplete: set[int] = set()

    # -- helpers
    def _sp(self, a, b=None) -> Span:
        sa = a.span if not isinstance(a, Token) else Span(self.sid, a.start_pos, a.end_pos)
        if b is None:
            return sa
        sb = b.span if not isinstance(b, Token) else Span(self.sid, b.start_pos, b.end_pos)
        return Span(self.sid, sa.start, max(sa.end, sb.end))

    def _multiline(self, span: Span) -> bool:
        return "\n" in self.text[span.start:span.end]

    def _incomplete(self, body) -> bool:
        """Whether recovery skipped text inside the braces `body` (fields..., RBRACE) closes."""
        return body[-1].start_pos in self.incomplete

    # -- expressions
    def quantity(self, ch):
        tok = ch[0]
        text = tok.value
        i = 0
        while i < len(text) and (text[i].isdigit() or text[i] == "." or
                                 (text[i] in "eE" and i + 1 < len(text) and (text[i + 1].isdigit() or text[i + 1] in "+-"))
                                 or (text[i] in "+-" and i > 0 and text[i - 1] in "eE")):
            i += 1
        num, unit = text[:i], text[i:]
        span = self._sp(tok)
        if unit not in UNITS:
            advice = unit_advice(num, unit)
            where, fix = advice.edit(span)
            # The advice lists every reading; validate_params narrows it to the dimension the
            # parameter wants (see unit_diagnostic_for), so that the file shows one finding per mistake.
            self.sink.emit("RTN004", f"unknown unit `{unit}` in `{text}`", where, help=advice.help(), fix=fix)
            if not advice.readings:
                return ast.Number(self._exact(num, span), num, span)
            r = advice.readings[0]
            return ast.Quantity(self._exact(num, span) * r.scale, r.dim, text, span, advice.readings)
        dim, scale = UNITS[unit]
        return ast.Quantity(self._exact(num, span) * scale, dim, text, span)

    def number(self, ch):
        tok = ch[0]
        span = self._sp(tok)
        return ast.Number(self._exact(tok.value, span), tok.value, span)

    def _exact(self, num: str, span) -> Fraction:
        try:
            return parse_number(num)
        except NumberTooLarge:
            self.sink.emit("RTN008", f"`{num}` is too large a number: exponents go up to ±{MAX_EXPONENT}", span)
            return Fraction(0)

    def string(self, ch):
        tok = ch[0]
        raw = tok.value[1:-1]
        if "\\" in raw:
            out, i = [], 0
            esc = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}
            while i < len(raw):
                c = raw[i]
                if c == "\\" and i + 1 < len(raw):
                    out.append(esc.get(raw[i + 1], raw[i + 1]))
                    i += 2
                else:
                    out.append(c)
                    i += 1
            raw = "".join(out)
        return ast.String(raw, self._sp(tok))

    def true(self, ch):
        return ast.Bool(True, self._sp(ch[0]))

    def false(self, ch):
        return ast.Bool(False, self._sp(ch[0]))

    def dotted(self, ch):
        return ast.Name(tuple(t.value for t in ch), self._sp(ch[0], ch[-1]))

    def name(self, ch):
        return ch[0]

    def binop(self, ch):
        left, op, right = ch
        return ast.BinOp(op.value, left, right, self._sp(left, right))

    def neg(self, ch):
        return ast.Neg(ch[1], self._sp(ch[0], ch[1]))

    def paren(self, ch):
        return ast.Paren(ch[1], self._sp(ch[0], ch[2]))

    def list(self, ch):
        span = self._sp(ch[0], ch[-1])
        return ast.List(tuple(ch[1:-1]), span, self._multiline(span))

    def field(self, ch):
        name, value = ch
        return ast.Field(name.value, self._sp(name), value, self._sp(name, value))

    def record_body(self, ch):
        return ch  # fields..., RBRACE

    def record(self, ch):
        tag, body = ch
        span = self._sp(tag, body[-1])
        return ast.Record(tag, tuple(body[:-1]), span, self._multiline(span), self._incomplete(body))

    # -- statements
    def let_stmt(self, ch):
        kw, name, value = ch
        return ast.Let(name.value, self._sp(name), value, self._sp(kw, value))

    def import_stmt(self, ch):
        kw, path = ch[0], ch[1]
        s = self.string([path])
        if len(ch) == 4:
            return ast.Import(s, ch[3].value, self._sp(ch[3]), self._sp(kw, ch[3]))
        return ast.Import(s, None, None, self._sp(kw, path))

    def param_decl(self, ch):
        name, tname = ch[0], ch[1]
        default = ch[2] if len(ch) > 2 else None
        return ast.ParamDecl(name.value, self._sp(name), tname.value, self._sp(tname), default,
                             self._sp(name, default or tname))

    def body(self, ch):
        return ch  # stmts..., RBRACE

    def cell_type(self, ch):
        kw, name = ch[0], ch[2]  # ch[1] is `type`
        params = tuple(c for c in ch[3:-1])
        body = ch[-1]
        return ast.CellType(name.value, self._sp(name), params, tuple(body[:-1]), self._sp(kw, body[-1]))

    def channel(self, ch):
        kw, name, body = ch
        return ast.Channel(name.value, self._sp(name), tuple(body[:-1]), self._sp(kw, body[-1]))

    def endpoints(self, ch):
        names = tuple((t.value, self._sp(t)) for t in ch[1:])
        return ast.Endpoints(names, self._sp(ch[0], ch[-1]))

    def cell_decl(self, ch):
        kw, name, typ = ch[0], ch[1], ch[2]
        if len(ch) == 4:
            body = ch[3]
            span = self._sp(kw, body[-1])
            block = self._sp(typ, body[-1])
            return ast.CellDecl(name.value, self._sp(name), typ, tuple(body[:-1]), span, self._multiline(block),
                                incomplete=self._incomplete(body))
        return ast.CellDecl(name.value, self._sp(name), typ, (), self._sp(kw, typ), False, False)

    def port(self, ch):
        lsq, num, rsq = ch
        return (num, self._sp(lsq, rsq))

    def ref_element(self, ch):
        name = ch[0]
        if len(ch) == 2:
            num, pspan = ch[1]
            try:
                port = int(num.value)
            except ValueError:
                self.sink.emit("RTN044", f"port `{num.value}` is not a whole number", pspan)
                port = 0
            return ast.Ref(name, port, self._sp(name, num).to(pspan))
        return ast.Ref(name, None, name.span)

    def inline_element(self, ch):
        typ, body = ch
        span = self._sp(typ, body[-1])
        return ast.Inline(typ, tuple(body[:-1]), span, self._multiline(span), self._incomplete(body))

    def chain(self, ch):
        elems = tuple(c for c in ch if not isinstance(c, Token))
        breaks = tuple("\n" in self.text[a.span.end:b.span.start] for a, b in zip(elems, elems[1:]))
        return ast.Chain(elems, self._sp(elems[0], elems[-1]), breaks)

    def assign(self, ch):
        target, value = ch
        return ast.Assign(target, value, self._sp(target, value))

    def assign_block(self, ch):
        return ch

    def at_stmt(self, ch):
        kw, t, block = ch
        return ast.At(t, tuple(block[:-1]), self._sp(kw, block[-1]))

    def every_stmt(self, ch):
        kw, period, _for, dur, block = ch
        return ast.Every(period, dur, tuple(block[:-1]), self._sp(kw, block[-1]))

    def start(self, ch):
        return tuple(ch)


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, _AstBuilder, _PostLexer, list]:
    grammar = resources.files("rattan.grammar").joinpath("rtn.lark").read_text(encoding="utf-8")
    builder = _AstBuilder()
    post = _PostLexer()
    comments: list = []
    ScannerLexer.on_comment = comments.append
    lark = Lark(grammar, parser="lalr", lexer=ScannerLexer, transformer=builder, postlex=post,
                maybe_placeholders=False, cache=True)
    return lark, builder, post, comments


@lru_cache(maxsize=1)
def _scanner(lark: Lark) -> ScannerLexer:
    """The same scanner the parser uses, for the recovering path that feeds tokens itself."""
    return ScannerLexer(lark.lexer_conf)


def _expected(e: UnexpectedToken) -> str:
    names = sorted({_TOKEN_NAMES.get(t, f"`{t.lower()}`") for t in e.expected
                    if not t.startswith("__") and t not in ("BAD_STRING", "BAD_CHAR")})
    if not names:
        return ""
    if len(names) > 6:
        return ""
    return "expected " + ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]


def _syntax_error(sink: Sink, sid: int, text: str, e: UnexpectedInput, labels=()) -> None:
    tok = getattr(e, "token", None)
    if tok is None or tok.type == "$END":
        pos = len(text)
        span = Span(sid, max(0, pos - 1) if text else 0, pos)
        msg = "unexpected end of file"
    else:
        span = Span(sid, tok.start_pos, tok.end_pos if tok.end_pos is not None else tok.start_pos + 1)
        msg = f"unexpected {_describe(tok)}"
    helps = []
    fix = None
    if isinstance(e, UnexpectedToken):
        exp = _expected(e)
        if exp:
            helps.append(exp)
        if tok is not None and tok.type == "NAME" and "NAME" not in e.expected:
            kw = did_you_mean(tok.value, ["let", "cell", "channel", "endpoints", "import", "at", "every", "type"])
            if kw and kw != tok.value:
                helps.append(f"did you mean `{kw}`?")
                fix = kw
    sink.emit("RTN001", msg, span, help=helps, labels=labels, fix=fix)


def parse(source: Source, sink: Sink) -> ast.File:
    """Parse one source. Errors go to `sink`; the returned file holds every statement that parsed."""
    lark, builder, post, comments = _parser()
    sid, text = source.id, source.text
    builder.sid = post.sid = sid
    builder.text = post.text = text
    builder.sink = post.sink = sink
    builder.incomplete = set()
    comments.clear()
    before = len(sink.items)
    try:
        body = lark.parse(text)
        ok = True
    except _TooDeep:
        return ast.File(sid, (), (), Span(sid, 0, len(text)))
    except UnexpectedInput:
        ok = False
    if not ok:
        # Slow path: lex once, then feed tokens statement by statement and skip a bad one.
        del sink.items[before:]
        sink._seen.clear()
        comments.clear()
        body = _parse_recovering(lark, builder, post, sid, text, sink)
    cs = tuple(ast.Comment(c.value, Span(sid, c.start_pos, c.end_pos)) for c in comments)
    return ast.File(sid, tuple(body), cs, Span(sid, 0, len(text)))


def _snapshot(ip):
    """A parser state to resume from later.

    Lark extends the children list of a left-recursive repetition in place, and a
    copy without deep-copied values shares it; remembering each list's length (and
    cutting back to it on resume) undoes what was parsed after the snapshot, cheaply.
    """
    saved = ip.copy(deepcopy_values=False)
    return saved, [len(v.children) if isinstance(v, Tree) else None for v in saved.parser_state.value_stack]


def _resume(snapshot):
    """A fresh parser in the state of a `_snapshot`."""
    saved, lengths = snapshot
    ip = saved.copy(deepcopy_values=False)
    stack = ip.parser_state.value_stack
    for k, n in enumerate(lengths):
        if n is not None:
            stack[k] = Tree(stack[k].data, stack[k].children[:n], getattr(stack[k], "_meta", None))
    return ip


def _parse_recovering(lark: Lark, builder: _AstBuilder, post: _PostLexer, sid: int, text: str, sink: Sink):
    try:
        tokens = list(post.process(_scanner(lark).lex(text)))
    except _TooDeep:
        return ()
    except UnexpectedCharacters as e:  # cannot happen: BAD_CHAR matches anything
        _syntax_error(sink, sid, text, e)
        return ()
    ip = lark.parse_interactive("")
    # Where to resume after an error: the parser state after the last newline (or `{`) at
    # each open bracket depth. A block closed since then drops its entries, so an error
    # after `bw { ... }` resumes before the statement holding it, not inside the block.
    checkpoints = [(_snapshot(ip), 0)]
    depth = 0
    # The open brackets (token indices), and those a skip dropped text inside: the `}` that
    # closes one of these is noted in builder.incomplete, so that its record or cell says so
    # and no pass reports a parameter missing only because it was in the dropped text.
    opens: list[int] = []
    skipped_in: set[int] = set()
    i = 0
    n = len(tokens)
    resumed_at = -1
    while i < n:
        tok = tokens[i]
        if tok.type in ("RPAR", "RSQB", "RBRACE") and opens and opens[-1] in skipped_in:
            builder.incomplete.add(tok.start_pos)  # before the parser reduces the block it closes
        try:
            ip.feed_token(tok)
        except UnexpectedToken as e:
            stuck = i == resumed_at  # resuming here failed again (a stray `)`): drop the token
            if not stuck:
                _syntax_error(sink, sid, text, e)
            # Skip to the end of the statement that failed: the next newline (or the
            # closing bracket) at the checkpoint's depth, then resume from the checkpoint.
            saved, depth = checkpoints[-1]
            ip = _resume(saved)
            base = depth
            del opens[base:]
            if opens:
                skipped_in.add(opens[-1])
            i += stuck
            while i < n:
                t = tokens[i]
                if t.type in ("LPAR", "LSQB") or t.value == "{":
                    depth += 1
                elif t.type in ("RPAR", "RSQB", "RBRACE"):
                    if depth == base:
                        break  # the enclosing block ends here: feed it
                    depth -= 1
                elif t.type == "_NL" and depth == base:
                    break
                i += 1
            resumed_at = i
            continue
        if tok.type in ("LPAR", "LSQB") or tok.value == "{":
            depth += 1
            opens.append(i)
        elif tok.type in ("RPAR", "RSQB", "RBRACE"):
            depth = max(0, depth - 1)
            if opens:
                opens.pop()
            while len(checkpoints) > 1 and checkpoints[-1][1] > depth:
                checkpoints.pop()
        i += 1
        if tok.type == "_NL" or tok.value == "{":
            if checkpoints[-1][1] == depth:
                checkpoints.pop()
            checkpoints.append((_snapshot(ip), depth))
    last = tokens[-1] if tokens else None
    try:
        return ip.feed_eof(last)
    except UnexpectedToken as e:
        stack = []
        for t in tokens:
            if t.type in ("LPAR", "LSQB") or t.value == "{":
                stack.append(t)
            elif t.type in ("RPAR", "RSQB", "RBRACE") and stack:
                stack.pop()
        labels = [Label(Span(sid, t.start_pos, t.end_pos), "opened here, never closed") for t in stack[-1:]]
        _syntax_error(sink, sid, text, e, labels)
    # Close what is still open, so the statements that parsed are kept.
    end = _snapshot(ip)
    for closers in range(1, MAX_DEPTH):
        trial = _resume(end)
        try:
            for _ in range(closers):
                trial.feed_token(Token.new_borrow_pos("RBRACE", "}", last))
            return trial.feed_eof(last)
        except UnexpectedInput:
            continue
    return ()

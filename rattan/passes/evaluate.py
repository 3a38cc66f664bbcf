"""Pass `evaluate`: fold every parameter expression to a value, checking dimensions.

Requires: `expand_compounds`.
Guarantees: every `Param.value` and timeline value/time is a Value (see
rattan.ir.values), or, after a diagnostic, the parameter stays unevaluated (`Bound`)
and the timeline change is dropped. Arithmetic
is exact and dimension-checked (RTN020), division by zero is RTN024, an
argument of a compound parameter matches its declared type (RTN021), a `let`
that refers to itself is RTN011, a `let` of the checked file's channels that
nothing uses is RTN090 (a warning). A bare name that names nothing becomes a
symbol (SymV): whether it is an enum member, a record kind or an endpoint is
for `validate_params` to decide against the schema.
"""
from __future__ import annotations

from dataclasses import replace

from ..diagnostics import Label, did_you_mean
from ..ir.nodes import Binding, Bound, Program, Scope
from ..ir.values import BoolV, ListV, QtyV, RecV, StrV, SymV, Value
from ..syntax import ast
from ..units import NAMED_DIMS, NUMBER, Quantity, dim_name
from .context import Context

PARAM_TYPE_DIMS = {**NAMED_DIMS, "probability": NUMBER, "int": NUMBER, "float": NUMBER, "number": NUMBER}
PARAM_TYPES = set(PARAM_TYPE_DIMS) | {"bool", "string", "path", "queue", "record", "list", "any"}


class _Fail(Exception):
    """An expression could not be evaluated; a diagnostic has been emitted."""


class Evaluator:
    """Evaluates expressions in scopes, memoizing each `let` once."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.memo: dict[int, Value | None] = {}
        self.active: set[int] = set()
        self.used: set = set()  # spans of the bindings some expression referred to

    def value(self, bound: Bound) -> Value | None:
        try:
            return self.eval(bound.expr, bound.scope)
        except _Fail:
            return None
        except RecursionError:
            self.ctx.sink.emit("RTN007", "expression nested too deeply", bound.expr.span)
            return None

    def binding(self, b: Binding, use) -> Value:
        key = id(b)
        self.used.add(b.span)
        if key in self.memo:
            v = self.memo[key]
            if v is None:
                raise _Fail
            return v
        if key in self.active:
            self.ctx.sink.emit("RTN011", f"`{use.text}` is defined in terms of itself", use.span,
                               labels=[Label(b.span, "defined here")])
            raise _Fail
        if b.expr is None:  # a missing compound argument, reported by expand_compounds
            raise _Fail
        self.active.add(key)
        try:
            v = self.eval(b.expr, b.scope)
            if b.kind == "param" and b.declared_type:
                self._check_declared(b, v)
        except _Fail:
            self.memo[key] = None
            raise
        finally:
            self.active.discard(key)
        self.memo[key] = v
        return v

    def _check_declared(self, b: Binding, v: Value) -> None:
        t = b.declared_type
        if t not in PARAM_TYPE_DIMS:
            return
        want = PARAM_TYPE_DIMS[t]
        if isinstance(v, QtyV) and v.q.dim == want:
            return
        self.ctx.sink.emit("RTN021", f"expected a {t}, found {v.describe()}", v.span,
                           labels=[Label(b.span, f"parameter of type `{t}`")] if b.span != v.span else [],
                           help=_unit_help(t, v))
        raise _Fail

    def eval(self, e: ast.Expr, scope: Scope) -> Value:
        if isinstance(e, ast.Quantity):
            return QtyV(Quantity(e.value, e.dim), e.span, e.text.endswith("%"), e.text if e.readings else None)
        if isinstance(e, ast.Number):
            return QtyV(Quantity(e.value, NUMBER), e.span)
        if isinstance(e, ast.String):
            return StrV(e.value, e.span, scope.base_dir)
        if isinstance(e, ast.Bool):
            return BoolV(e.value, e.span)
        if isinstance(e, ast.Paren):
            v = self.eval(e.inner, scope)
            return replace(v, span=e.span)
        if isinstance(e, ast.Name):
            return self.name(e, scope)
        if isinstance(e, ast.Neg):
            v = self.number(self.eval(e.operand, scope), e.operand)
            if v.unknown_unit:  # the parser reported it; its dimension is a guess
                raise _Fail
            return QtyV(-v.q, e.span, v.percent)
        if isinstance(e, ast.BinOp):
            return self.binop(e, scope)
        if isinstance(e, ast.Record):
            fields = []
            seen = {}
            for f in e.fields:
                if f.name in seen:
                    self.ctx.sink.emit("RTN015", f"field `{f.name}` is given twice", f.name_span,
                                       labels=[Label(seen[f.name], "first given here")])
                    continue
                seen[f.name] = f.name_span
                try:
                    fields.append((f.name, f.name_span, self.eval(f.value, scope)))
                except _Fail:
                    pass
            return RecV(e.tag.text, e.tag.span, tuple(fields), e.span, e.incomplete)
        if isinstance(e, ast.List):
            items = []
            for it in e.items:
                try:
                    items.append(self.eval(it, scope))
                except _Fail:
                    pass
            return ListV(tuple(items), e.span)
        raise _Fail

    def name(self, e: ast.Name, scope: Scope) -> Value:
        b = scope.lookup(e.parts[0])
        if b is not None and b.kind == "module":
            if len(e.parts) == 2 and e.parts[1] in b.module.names and b.module.names[e.parts[1]].kind == "let":
                self.ctx.names.use_parts(self.ctx.sources[e.span.source].text, e,
                                         (b.span, b.module.names[e.parts[1]].span))
                return replace(self.binding(b.module.names[e.parts[1]], e), span=e.span)
            sugg = did_you_mean(e.parts[-1], [n for n, x in b.module.names.items() if x.kind == "let"])
            self.ctx.sink.emit("RTN011", f"`{e.text}` is not defined in the imported file", e.span,
                               help=f"did you mean `{e.parts[0]}.{sugg}`?" if sugg else "",
                               fix=f"{e.parts[0]}.{sugg}" if sugg else None)
            raise _Fail
        if len(e.parts) > 1:
            self.ctx.sink.emit("RTN011", f"unknown name `{e.text}`", e.span)
            raise _Fail
        if b is not None and b.kind in ("let", "param"):
            self.ctx.names.use(e.span, b.declared_at or b.span)
            return replace(self.binding(b, e), span=e.span)
        return SymV(e.parts[0], e.span)

    def number(self, v: Value, e: ast.Expr) -> QtyV:
        if isinstance(v, QtyV):
            return v
        if isinstance(v, SymV):
            self.unknown(v, e)
        self.ctx.sink.emit("RTN023", f"arithmetic needs numbers or quantities, found {v.describe()}", v.span)
        raise _Fail

    def unknown(self, v: SymV, e: ast.Expr) -> None:
        self.ctx.sink.emit("RTN011", f"unknown name `{v.name}`", v.span)
        raise _Fail

    def binop(self, e: ast.BinOp, scope: Scope) -> Value:
        lv = self.eval(e.left, scope)
        rv = self.eval(e.right, scope)
        if isinstance(lv, SymV):
            self.unknown_in_scope(lv, scope)
        if isinstance(rv, SymV):
            self.unknown_in_scope(rv, scope)
        a, b = self.number(lv, e.left), self.number(rv, e.right)
        if a.unknown_unit or b.unknown_unit:  # the parser reported it; its dimension is a guess
            raise _Fail
        op = e.op
        if op in "+-":
            if a.q.dim != b.q.dim:
                self.ctx.sink.emit(
                    "RTN020", f"cannot {'add' if op == '+' else 'subtract'} {_dim(b)} "
                    f"{'to' if op == '+' else 'from'} {_dim(a)}", e.span,
                    labels=[Label(a.span, f"this is {_dim(a)}"), Label(b.span, f"this is {_dim(b)}")],
                    help="both sides of `+` and `-` must have the same dimension")
                raise _Fail
            q = a.q + b.q if op == "+" else a.q - b.q
            return QtyV(q, e.span, a.percent and b.percent)
        if op == "*":
            return QtyV(a.q * b.q, e.span, a.percent or b.percent)
        if b.q.value == 0:
            self.ctx.sink.emit("RTN024", "division by zero", b.span)
            raise _Fail
        return QtyV(a.q / b.q, e.span, a.percent)

    def unknown_in_scope(self, v: SymV, scope: Scope) -> None:
        sugg = did_you_mean(v.name, scope.names_of_kind("let", "param"))
        self.ctx.sink.emit("RTN011", f"unknown name `{v.name}`", v.span,
                           help=f"did you mean `{sugg}`?" if sugg else "define it with `let`", fix=sugg)
        raise _Fail


def _dim(v: QtyV) -> str:
    return "a number" if v.q.dim == NUMBER else f"a {dim_name(v.q.dim)}"


def _unit_help(t: str, v: Value) -> str:
    examples = {"time": "ms", "rate": "Mbps", "size": "KiB"}
    if isinstance(v, QtyV) and v.q.dim == NUMBER and t in examples:
        return f"write a {t} with its unit, e.g. `{_num_text(v)}{examples[t]}`"
    return ""


def _num_text(v: QtyV) -> str:
    from ..units import number_text
    return number_text(v.q.value) or "1"


def symbol_suggestion(sym: SymV, scope: Scope | None) -> str | None:
    """The `let` or parameter a bare name most likely meant."""
    if scope is None:
        return None
    return did_you_mean(sym.name, scope.names_of_kind("let", "param"))


def evaluate(prog: Program, ctx: Context) -> Program:
    ev = Evaluator(ctx)
    channels = []
    for ch in prog.channels:
        cells = []
        for c in ch.cells:
            params = []
            for p in c.params:
                if isinstance(p.value, Bound):
                    v = ev.value(p.value)
                    if v is None:
                        params.append(p)  # left unevaluated: validate_params knows it was given
                        continue
                    if isinstance(v, SymV):
                        # keep where it was written: validate_params suggests a `let` if it was a typo
                        v = replace(v, scope=p.value.scope)
                    params.append(replace(p, value=v))
                else:
                    params.append(p)
            cells.append(replace(c, params=tuple(params)))
        timeline = []
        for chg in ch.timeline:
            vals = {}
            ok = True
            for attr in ("value", "at", "period", "duration"):
                x = getattr(chg, attr)
                if isinstance(x, Bound):
                    v = ev.value(x)
                    if v is None:
                        ok = False
                        break
                    vals[attr] = v
            if ok:
                timeline.append(replace(chg, **vals))
        channels.append(replace(ch, cells=tuple(cells), timeline=tuple(timeline)))
    _report_unused(prog, ev, ctx)
    return replace(prog, channels=tuple(channels))


def _report_unused(prog: Program, ev: Evaluator, ctx: Context) -> None:
    """RTN090 for `let`s at file or channel scope that nothing uses.

    Only for a file with channels (one without is a library, checked on its own), and
    only when there is no error: a failed expression may hide a use.
    """
    if not prog.units or not prog.channels or ctx.sink.has_errors:
        return
    body = prog.units[0].file.body
    lets = [st for st in body if isinstance(st, ast.Let)]
    lets += [st for ch in body if isinstance(ch, ast.Channel) for st in ch.body if isinstance(st, ast.Let)]
    for st in lets:
        if st.name_span not in ev.used and not st.name.startswith("_"):
            ctx.sink.emit("RTN090", f"`{st.name}` is defined but never used", st.name_span,
                          help=f"remove it, or name it `_{st.name}` to keep it unused")

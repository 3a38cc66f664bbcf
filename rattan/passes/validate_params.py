"""Pass `validate_params`: check every cell's parameters against its type's JSON Schema.

Requires: `evaluate`.
Guarantees: each cell of a known type has `config`, its parameters in base units
(ns, bit/s, bytes, probabilities as floats) with schema defaults filled in, valid
against the schema; or diagnostics at the user's spans: unknown parameter
(RTN013), missing (RTN014), unknown record kind or symbol (RTN016), wrong
dimension (RTN021), out of range (RTN022), wrong type (RTN023), a forbidden
combination (RTN025).
"""
from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import replace
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Mapping

from ..diagnostics import Label, did_you_mean
from ..ir.nodes import Bound, Cell, Program
from ..ir.values import BoolV, ListV, QtyV, RecV, StrV, SymV, Value
from ..registry import Registry
from ..source import Span
from ..units import NAMED_DIMS, NUMBER, dim_name, format_quantity, split_quantity, unit_advice
from .context import Context
from .evaluate import symbol_suggestion

UNIT_DIMS = dict(NAMED_DIMS)
_UNIT_EXAMPLE = {"time": "ms", "rate": "Mbps", "size": "KiB"}


class _Bad(Exception):
    """A value could not be converted; a diagnostic has been emitted."""


class Converter:
    """Turns folded values into plan JSON following a (sub)schema, recording spans by path."""

    def __init__(self, ctx: Context, cell: Cell) -> None:
        self.ctx = ctx
        self.reg: Registry = ctx.registry
        self.cell = cell
        self.spans: dict[tuple, Span] = {}

    def labels(self) -> list[Label]:
        c = self.cell
        if c.origin_span is not None:
            return [Label(c.origin_span, f"in `{c.origin}`")]
        return []

    def emit(self, code: str, msg: str, span: Span, **kw) -> None:
        self.ctx.sink.emit(code, msg, span, labels=list(kw.pop("labels", [])) + self.labels(), **kw)

    def convert(self, v: Value, prop: Mapping[str, Any], path: tuple, what: str) -> Any:
        prop = self.reg.deref(prop)
        self.spans[path] = v.span
        if "oneOf" in prop and "type" not in prop:
            return self.one_of(v, prop, path, what)
        unit = prop.get("x-unit")
        if unit in UNIT_DIMS:
            return self.quantity(v, UNIT_DIMS[unit], unit, what)
        if unit == "probability":
            return self.probability(v, what)
        if unit == "path":
            s = self.string(v, what)
            base = v.base_dir if isinstance(v, StrV) and v.base_dir else os.getcwd()
            return os.path.normpath(os.path.join(base, s))
        if unit == "prefix":
            return self.prefix(v, what)
        t = prop.get("type")
        if prop.get("x-symbol") or (t == "string" and "enum" in prop and isinstance(v, SymV)):
            return self.symbol(v, prop, what)
        if t == "boolean":
            if not isinstance(v, BoolV):
                self.wrong(v, "`true` or `false`", what)
            return v.value
        if t == "string":
            return self.string(v, what)
        if t == "integer":
            q = self.plain_number(v, what)
            if q.denominator != 1:
                self.emit("RTN023", f"{what} must be a whole number, found `{_fmt(q)}`", v.span)
                raise _Bad
            return int(q)
        if t == "number":
            q = self.plain_number(v, what)
            return int(q) if q.denominator == 1 else float(q)
        if t == "array":
            if not isinstance(v, ListV):
                self.wrong(v, "a list `[...]`", what)
            items = prop.get("items", {})
            out = []
            for i, it in enumerate(v.items):
                try:
                    out.append(self.convert(it, items, path + (i,), f"item {i + 1} of {what}"))
                except _Bad:
                    pass
            return out
        if t == "object" or "properties" in prop:
            return self.record(v, prop, path, what)
        return self.plain_json(v, what)

    # -- kinds of values
    def wrong(self, v: Value, expected: str, what: str, help: str = "") -> None:
        if isinstance(v, SymV):
            self.unknown_name(v, expected, what)
        self.emit("RTN023", f"{what} must be {expected}, found {v.describe()}", v.span, help=help)
        raise _Bad

    def unknown_name(self, v: SymV, expected: str, what: str) -> None:
        sugg = symbol_suggestion(v, v.scope)
        self.emit("RTN011", f"unknown name `{v.name}` ({what} must be {expected})", v.span,
                  help=f"did you mean `{sugg}`?" if sugg else "", fix=sugg)
        raise _Bad

    def refused_unit(self, v: QtyV, dim) -> None:
        """A literal whose unit the parser refused (RTN004): narrow that finding's advice to the
        dimension this parameter wants, and add none of its own (its dimension is a guess)."""
        num, unit = split_quantity(v.unknown_unit)
        sink = self.ctx.sink
        old = next((d for d in sink.items if d.code == "RTN004" and d.span is not None
                    and d.span.source == v.span.source and v.span.start <= d.span.start
                    and d.span.end <= v.span.end), None)
        if old is not None and old.span.end == v.span.end:  # the literal itself, not `-10Mbs`
            advice = unit_advice(num, unit, dim)
            where, fix = advice.edit(v.span)
            sink.revise(old, replace(old, span=where, help=(advice.help(),), fix=fix))
        raise _Bad

    def quantity(self, v: Value, dim, unit: str, what: str) -> int:
        if not isinstance(v, QtyV):
            self.wrong(v, f"a {unit}", what, help=f"e.g. `10{_UNIT_EXAMPLE[unit]}`")
        if v.unknown_unit is not None:
            self.refused_unit(v, dim)
        if v.q.dim != dim:
            if v.q.dim == NUMBER:
                num = _fmt(v.q.value)
                # No machine fix: which unit the number was in is a guess (the control API reads
                # a bare number in base units), and a fix must never change a magnitude.
                self.emit("RTN021", f"{what} is a {unit}: a bare number has no unit", v.span,
                          help=f"add its unit, e.g. `{num}{_UNIT_EXAMPLE[unit]}`")
            else:
                self.emit("RTN021", f"{what} must be a {unit}, found a {dim_name(v.q.dim)}", v.span)
            raise _Bad
        return v.q.to_plan()

    def probability(self, v: Value, what: str) -> float:
        if not isinstance(v, QtyV):
            self.wrong(v, "a probability", what, help="e.g. `1%` or `0.01`")
        if v.unknown_unit is not None:
            self.refused_unit(v, NUMBER)
        if v.q.dim != NUMBER:
            self.emit("RTN021", f"{what} is a probability, found a {dim_name(v.q.dim)}", v.span,
                      help="write a percentage like `1%` or a number in [0, 1]")
            raise _Bad
        x = v.q.value
        if x < 0 or x > 1:
            shown = f"{_fmt(x * 100)}%" if v.percent else _fmt(x)
            self.emit("RTN022", f"{what} must be a probability between 0% and 100%, found {shown}", v.span,
                      help=("" if v.percent else f"for a percentage write `{_fmt(x)}%`") if x > 1 else "")
            raise _Bad
        return float(x)

    def plain_number(self, v: Value, what: str) -> Fraction:
        if not isinstance(v, QtyV):
            self.wrong(v, "a number", what)
        if v.q.dim != NUMBER:
            self.emit("RTN021", f"{what} is a plain number, found a {dim_name(v.q.dim)}", v.span)
            raise _Bad
        return v.q.value

    def string(self, v: Value, what: str) -> str:
        if not isinstance(v, StrV):
            self.wrong(v, 'a string `"..."`', what)
        return v.value

    def symbol(self, v: Value, prop, what: str) -> str:
        choices = list(prop.get("enum", [])) or ([prop["const"]] if "const" in prop else [])
        if not isinstance(v, SymV):
            if isinstance(v, StrV) and v.value in choices:
                return v.value
            self.wrong(v, "one of " + ", ".join(f"`{c}`" for c in choices), what)
        if v.name not in choices:
            sugg = did_you_mean(v.name, choices)
            self.emit("RTN016", f"`{v.name}` is not a valid {what}", v.span,
                      help=(f"did you mean `{sugg}`? " if sugg else "") +
                      "choose one of " + ", ".join(f"`{c}`" for c in choices), fix=sugg)
            raise _Bad
        return v.name

    def prefix(self, v: Value, what: str) -> str:
        if isinstance(v, SymV):
            return v.name  # an endpoint's name; check_graph verifies it exists
        s = self.string(v, what)
        try:
            ipaddress.ip_network(s, strict=False)
        except ValueError:
            self.emit("RTN022", f"`{s}` is not an address prefix", v.span,
                      help='write a prefix like "10.2.0.0/16", or an endpoint name without quotes')
            raise _Bad
        return s

    def one_of(self, v: Value, prop, path, what: str) -> Any:
        branches = [self.reg.deref(b) for b in prop["oneOf"]]
        kinds = {}
        for b in branches:
            k = b.get("properties", {}).get("kind", {}).get("const")
            if k is not None:
                kinds[k] = b
        if isinstance(v, (RecV, SymV)):
            name = v.kind if isinstance(v, RecV) else v.name
            if name in kinds:
                return self.record(v, kinds[name], path, what)
            for b in branches:
                if b.get("x-symbol") and (b.get("const") == name or name in b.get("enum", [])):
                    return name
            if isinstance(v, SymV) and not kinds and not any(b.get("x-symbol") for b in branches):
                self.unknown_name(v, "a value", what)
            choices = list(kinds) + [b["const"] for b in branches if "const" in b]
            sugg = did_you_mean(name, choices)
            span = v.kind_span if isinstance(v, RecV) else v.span
            if isinstance(v, SymV) and v.scope is not None and symbol_suggestion(v, v.scope) and not sugg:
                self.unknown_name(v, "one of " + ", ".join(f"`{c}`" for c in choices), what)
            self.emit("RTN016", f"`{name}` is not a valid {what}", span,
                      help=(f"did you mean `{sugg}`? " if sugg else "") +
                      "choose one of " + ", ".join(f"`{c}`" for c in choices), fix=sugg)
            raise _Bad
        for b in branches:
            if b.get("type") in ("integer", "number") and isinstance(v, QtyV):
                return self.convert(v, b, path, what)
        expected = " or ".join([f"`{k} {{ ... }}`" for k in kinds] +
                               [f"`{b['const']}`" for b in branches if "const" in b] +
                               [f"a {b['type']}" for b in branches if b.get("type") in ("integer", "number")])
        self.wrong(v, expected or "another value", what)

    def record(self, v: Value, prop, path, what: str) -> dict:
        if isinstance(v, SymV):
            fields, kind, span = (), v.name, v.span
        elif isinstance(v, RecV):
            fields, kind, span = v.fields, v.kind, v.span
        else:
            self.wrong(v, f"a `{prop.get('title', 'record')} {{ ... }}` record", what)
        props = prop.get("properties", {})
        out: dict[str, Any] = {}
        expect_kind = props.get("kind", {}).get("const")
        if expect_kind is not None:
            if kind != expect_kind:
                self.emit("RTN016", f"{what} must be a `{expect_kind}` record, found `{kind}`",
                          v.kind_span if isinstance(v, RecV) else v.span, fix=expect_kind)
                raise _Bad
            out["kind"] = kind
        ok = True
        for name, nspan, fv in fields:
            if name == "kind" or name not in props:
                sugg = did_you_mean(name, [p for p in props if p != "kind"])
                self.emit("RTN013", f"`{kind}` has no field `{name}`", nspan,
                          help=(f"did you mean `{sugg}`?" if sugg else
                                "its fields are " + (", ".join(f"`{p}`" for p in props if p != "kind") or "none")),
                          fix=sugg)
                ok = False
                continue
            try:
                out[name] = self.convert(fv, props[name], path + (name,), f"`{kind}.{name}`")
            except _Bad:
                ok = False
        if not ok:
            raise _Bad
        for name, p in props.items():
            if name not in out and "default" in p:
                out[name] = p["default"]
        # a default that holds only when none of some other fields is set (a queue's 1000 packets)
        for name, d in (prop.get("x-rattan") or {}).get("default_unless", {}).items():
            if name not in out and not any(u in out for u in d["unless"]):
                out[name] = d["value"]
        missing = [r for r in prop.get("required", ()) if r not in out]
        if missing and getattr(v, "incomplete", False):
            raise _Bad  # the syntax error that dropped text in its braces is the error to fix
        if missing:
            self.emit("RTN014", f"`{kind}` needs " + ", ".join(f"`{m}`" for m in missing), span,
                      help="add " + ", ".join(f"`{m} = ...`" for m in missing))
            raise _Bad
        self.spans[path] = span
        return out

    def plain_json(self, v: Value, what: str) -> Any:
        if isinstance(v, QtyV):
            return v.q.to_plan()
        if isinstance(v, (BoolV, StrV)):
            return v.value
        if isinstance(v, SymV):
            return v.name
        if isinstance(v, ListV):
            return [self.plain_json(i, what) for i in v.items]
        if isinstance(v, RecV):
            return {"kind": v.kind, **{n: self.plain_json(x, what) for n, _, x in v.fields}}
        return None


def _fmt(x: Fraction) -> str:
    return format_quantity(Fraction(x), NUMBER)


def show(value: Any, prop: Mapping[str, Any]) -> str:
    """A plan value written back as the user would write it (`20ms`, `1%`)."""
    unit = prop.get("x-unit")
    if unit in UNIT_DIMS and isinstance(value, (int, float)):
        scale = {"time": Fraction(1, 10**9), "rate": Fraction(1), "size": Fraction(8)}[unit]
        return format_quantity(Fraction(value) * scale, UNIT_DIMS[unit])
    if unit == "probability" and isinstance(value, (int, float)):
        return f"{_fmt(Fraction(value) * 100)}%"
    return json.dumps(value)


_VALIDATORS: dict[tuple, Any] = {}
_VALID_CACHE: dict[tuple, list] = {}


def schema_errors(reg: Registry, cell_type: str, config: Mapping[str, Any]) -> list:
    """jsonschema errors of a config (memoized: identical configs validate identically)."""
    key = (id(reg), cell_type, json.dumps(config, sort_keys=True))
    hit = _VALID_CACHE.get(key)
    if hit is not None:
        return hit
    vkey = (id(reg), cell_type)
    validator = _VALIDATORS.get(vkey)
    if validator is None:
        from jsonschema import Draft202012Validator
        validator = Draft202012Validator(reg.inline_refs(reg.get(cell_type).schema))
        _VALIDATORS[vkey] = validator
    errs = list(validator.iter_errors(config))
    if len(_VALID_CACHE) < 100_000:
        _VALID_CACHE[key] = errs
    return errs


def validate_cell(cell: Cell, ctx: Context) -> Cell:
    """One cell's config, or the cell unchanged (config None) after diagnostics."""
    ct = ctx.registry.get(cell.type)
    if ct is None:
        return cell
    conv = Converter(ctx, cell)
    props = ct.properties
    config: dict[str, Any] = {}
    ok = True
    for p in cell.params:
        if isinstance(p.value, Bound):  # its value failed to evaluate: already reported
            ok = False
            continue
        if p.name not in props:
            sugg = did_you_mean(p.name, props)
            conv.emit("RTN013", f"cell type `{cell.type}` has no parameter `{p.name}`", p.name_span,
                      help=f"did you mean `{sugg}`?" if sugg else
                      ("its parameters are " + ", ".join(f"`{k}`" for k in props) if props
                       else f"`{cell.type}` takes no parameters"), fix=sugg)
            ok = False
            continue
        try:
            config[p.name] = conv.convert(p.value, props[p.name], (p.name,), f"`{p.name}`")
        except _Bad:
            ok = False
    if cell.incomplete:
        # A syntax error dropped text in its braces: what parsed is checked above, but a missing
        # parameter, or a combination the schema refuses, may be only that text (RTN001 says so).
        return cell
    missing = [r for r in ct.required if r not in config]
    if missing and ok:
        conv.emit("RTN014", f"`{cell.type}` needs " + ", ".join(f"`{m}`" for m in missing),
                  cell.type_span, help="add " + ", ".join(f"`{m} = ...`" for m in missing))
        ok = False
    if not ok:
        return cell
    for name, p in props.items():
        if name not in config and "default" in p and not _excluded_by_one_of(ct.schema, name, config):
            config[name] = p["default"]
    errs = schema_errors(ctx.registry, cell.type, config)
    if errs:
        _report_schema_errors(errs, conv, ct, cell, config)
        return cell
    if not _unique_routes(ct, config, conv):
        return cell
    return replace(cell, config=MappingProxyType(config))


def _route_key(prefix: str) -> str:
    """A route's prefix as the engine compares it: a CIDR prefix masked (`10.0.0.1/8` is `10.0.0.0/8`,
    as upstream's routing table truncates it), an endpoint's name as itself."""
    try:
        return str(ipaddress.ip_network(prefix, strict=False))
    except ValueError:
        return prefix


def _unique_routes(ct, config: Mapping[str, Any], conv: Converter) -> bool:
    """A routing cell's table (`x-rattan.routing`) has one route per prefix: a second is RTN025."""
    routing = ct.routing()
    if routing is None:
        return True
    table = routing.table(config)
    first: dict[str, int] = {}
    ok = True
    for i, r in enumerate(table):
        key = _route_key(str(r.get("prefix", "")))
        if key in first:
            j = first[key]
            span = conv.spans.get((routing.routes, i), conv.cell.type_span)
            a, b = table[j].get("prefix"), r.get("prefix")
            shown = f"`{a}`" if a == b else f"`{a}` and `{b}` are both `{key}`"
            conv.emit("RTN025", f"routes {j + 1} and {i + 1} of `{routing.routes}` have the same prefix: {shown}",
                      span,
                      labels=[Label(conv.spans[(routing.routes, j)], "first route for it")]
                      if (routing.routes, j) in conv.spans else [],
                      help="keep one route per prefix; the longest matching prefix decides, so a narrower "
                           "prefix can override part of a wider one")
            ok = False
        else:
            first[key] = i
    return ok


def _excluded_by_one_of(schema, name, config) -> bool:
    """A default must not be filled in when it would select a second `oneOf` branch."""
    groups = schema.get("oneOf") or ()
    return any(name in g.get("required", ()) for g in groups)


def _kind_branch_errors(e) -> list | None:
    """A `oneOf` of records tagged by `kind` (the queue kinds) fails as a whole: the errors of the
    branch of the value's own kind, to report them at their field (None if there is none)."""
    if e.validator != "oneOf" or not isinstance(e.instance, dict) or not e.context:
        return None
    for i, b in enumerate(e.validator_value):
        if isinstance(b, dict) and b.get("properties", {}).get("kind", {}).get("const") == e.instance.get("kind"):
            subs = [sub for sub in e.context if sub.relative_schema_path and sub.relative_schema_path[0] == i]
            return subs or None
    return None


def _report_schema_errors(errs, conv: Converter, ct, cell: Cell, config) -> None:
    from jsonschema.exceptions import best_match
    seen = set()
    errs = [sub for e in errs for sub in (_kind_branch_errors(e) or [e])]
    for e in sorted(errs, key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(e.absolute_path)
        span = None
        for i in range(len(path), -1, -1):
            span = conv.spans.get(path[:i])
            if span is not None:
                break
        span = span or cell.type_span
        if (path, e.validator) in seen:
            continue
        seen.add((path, e.validator))
        prop = e.schema if isinstance(e.schema, dict) else {}
        name = "`" + ".".join(map(str, path)) + "`" if path else f"`{cell.type}`"
        if e.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            limit = show(e.validator_value, prop)
            rel = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
                   "exclusiveMaximum": "less than"}[e.validator]
            conv.emit("RTN022", f"{name} must be {rel} {limit}, found {show(e.instance, prop)}", span)
        elif e.validator in ("minItems", "maxItems", "minLength"):
            conv.emit("RTN022", f"{name}: {e.message}", span)
        elif e.validator == "oneOf" and (sub := _tagged_branch_errors(e)):
            _report_schema_errors(sub, conv, ct, cell, config)  # `codel { target = -1ms }`: codel's own errors
        elif e.validator == "oneOf" and not path:
            groups = [g.get("required", []) for g in ct.schema.get("oneOf", [])]
            names = [g[0] for g in groups if g]
            given = [n for n in names if n in config]
            conv.emit("RTN025", f"`{cell.type}` takes exactly one of " + ", ".join(f"`{n}`" for n in names)
                      + (f"; found {', '.join(f'`{g}`' for g in given)}" if given else ""),
                      cell.type_span if not given else conv.spans.get((given[-1],), cell.type_span))
        elif e.validator == "dependentRequired":
            conv.emit("RTN025", f"{name}: {e.message}", span)
        elif e.validator == "required":
            conv.emit("RTN014", f"{name}: {e.message}", span)
        else:
            conv.emit("RTN023", f"{name}: {best_match([e]).message}", span)


def _tagged_branch_errors(e) -> list:
    """The errors of the `oneOf` branch a tagged record names by its `kind` (a queue kind, a model
    segment), so that a wrong field is reported as such rather than as "valid under none of the schemas"."""
    kind = e.instance.get("kind") if isinstance(e.instance, Mapping) else None
    branches = e.validator_value if isinstance(e.validator_value, list) else []
    for i, b in enumerate(branches):
        if isinstance(b, Mapping) and kind is not None and b.get("properties", {}).get("kind", {}).get("const") == kind:
            return [c for c in e.context if c.relative_schema_path and c.relative_schema_path[0] == i]
    return []


def validate_params(prog: Program, ctx: Context) -> Program:
    channels = []
    for ch in prog.channels:
        channels.append(replace(ch, cells=tuple(validate_cell(c, ctx) for c in ch.cells)))
    return replace(prog, channels=tuple(channels))

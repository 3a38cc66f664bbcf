"""Pass `expand_python_cells`: replace every Python cell instance by the C cells it drives.

Requires: `validate_params` (the Python cell's `config`, which its class reads).
Guarantees: no cell of the channel is a Python cell with a valid config. Each one becomes the inner
cells its class's `inner(config)` names, chained in that order and named `INSTANCE.INNER`
(`cellular.link`, as compound cells are), each with its schema defaults filled in and valid against
its type's schema, spans and `origin` pointing at the user's instance; links into the instance go
to the first, links out of it leave from the last. The channel gets a `Controller` per instance
(class, config, tick period, inner names). A class that cannot be imported is RTN012; a tick
period that is not a positive time, or `inner` failing or naming more than a chain of known
single-output C cells, is RTN022/RTN023/RTN025; an inner config its schema refuses gets that
schema's code; all at the instance's span.
"""
from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any, Mapping

from ..ir.nodes import Cell, Channel, Controller, Link, Program
from ..pycell import PythonCellError, tick_period
from .context import Context
from .validate_params import _excluded_by_one_of, schema_errors


def expand_python_cells(prog: Program, ctx: Context) -> Program:
    return replace(prog, channels=tuple(_expand_channel(ch, ctx) for ch in prog.channels))


def _expand_channel(ch: Channel, ctx: Context) -> Channel:
    cells, links, controllers = [], list(ch.links), list(ch.controllers)
    for cell in ch.cells:
        ct = ctx.registry.get(cell.type)
        if ct is None or not ct.is_python or cell.config is None:
            cells.append(cell)  # an invalid config has been reported; the cell stays for later checks
            continue
        made = _instantiate(cell, ct, ctx)
        if made is None:
            cells.append(cell)
            continue
        inner, controller = made
        cells.extend(inner)
        controllers.append(controller)
        links = _rewire(links, cell, inner)
    if len(controllers) == len(ch.controllers):
        return ch
    return replace(ch, cells=tuple(cells), links=tuple(links), controllers=tuple(controllers))


def _instantiate(cell: Cell, ct, ctx: Context) -> tuple[list[Cell], Controller] | None:
    """The inner cells and the controller of one Python cell instance, or None after diagnostics."""
    sink, where = ctx.sink, f"Python cell `{cell.name}` ({ct.meta['python']})"
    try:
        cls = ct.python_class()
    except PythonCellError as e:
        sink.emit("RTN012", f"cell type `{cell.type}` cannot be used: {e}", cell.type_span,
                  help="install the distribution that provides it, or fix its `x-rattan.python`")
        return None
    config = dict(cell.config)
    period = tick_period(ct.meta, config)
    if isinstance(period, bool) or not isinstance(period, int) or period <= 0:
        sink.emit("RTN022", f"{where}: its tick period must be a time longer than 0s, found {period!r}",
                  cell.type_span, help="the schema's `x-rattan.tick` names a time parameter, or "
                                       "`x-rattan.tick_ns` gives the period")
        return None
    try:
        listed = cls().inner(dict(config))
    except Exception as e:  # the model's own code: report it, never crash the compiler
        sink.emit("RTN025", f"{where} refuses this configuration: {type(e).__name__}: {e}", cell.span)
        return None
    shape = _check_shape(listed, ctx)
    if isinstance(shape, str):
        sink.emit("RTN023", f"{where}: `inner` must return a list of (name, type, config) with names "
                            f"unique and types known C cells; {shape}", cell.span)
        return None
    inner: list[Cell] = []
    ok = True
    for name, type_, cfg in shape:
        full = _with_defaults(ctx.registry.get(type_), cfg)
        errs = schema_errors(ctx.registry, type_, full)
        for e in errs[:3]:
            path = ".".join(map(str, e.absolute_path))
            sink.emit(_code(e.validator), f"{where}: inner cell `{name}` ({type_})"
                      + (f", `{path}`" if path else "") + f": {e.message}", cell.span)
        if errs:
            ok = False
            continue
        outputs = ctx.registry.get(type_).output_count(full)
        if outputs != 1:
            sink.emit("RTN023", f"{where}: inner cell `{name}` ({type_}) has {outputs} outputs; a Python "
                                "cell's inner cells form a chain of single-output cells", cell.span)
            ok = False
            continue
        inner.append(Cell(f"{cell.name}.{name}", type_, (), cell.span, cell.type_span,
                          anonymous=cell.anonymous, config=MappingProxyType(full),
                          origin=cell.origin or cell.name, origin_span=cell.origin_span or cell.span))
    if not ok:
        return None
    names = MappingProxyType({name: f"{cell.name}.{name}" for name, _, _ in shape})
    return inner, Controller(cell, str(ct.meta["python"]), period, names)


def _check_shape(listed: Any, ctx: Context) -> list[tuple[str, str, dict]] | str:
    """The inner list in a checked form, or what is wrong with it."""
    if not isinstance(listed, (list, tuple)) or not listed:
        return f"it returned {type(listed).__name__ if listed is not None else 'None'}" + (
            " (empty)" if isinstance(listed, (list, tuple)) else "")
    out, seen = [], set()
    for i, item in enumerate(listed):
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            return f"item {i + 1} is {item!r}"
        name, type_, cfg = item
        if not isinstance(name, str) or not name.isidentifier():
            return f"item {i + 1} has the name {name!r}, not an identifier"
        if name in seen:
            return f"the name `{name}` is given twice"
        seen.add(name)
        ct = ctx.registry.get(type_) if isinstance(type_, str) else None
        if ct is None or ct.is_python:
            return f"`{name}` has the type {type_!r}, which is " + (
                "a Python cell" if ct is not None else "not a registered cell type")
        if not isinstance(cfg, Mapping):
            return f"the config of `{name}` is {type(cfg).__name__}, not a dict"
        out.append((name, type_, dict(cfg)))
    return out


def _with_defaults(ct, cfg: dict) -> dict:
    """A config with its schema's defaults filled in, as `validate_params` does for written cells."""
    full = dict(cfg)
    for name, p in ct.properties.items():
        if name not in full and "default" in p and not _excluded_by_one_of(ct.schema, name, full):
            full[name] = p["default"]
    return full


def _code(validator: str) -> str:
    """The diagnostic code of a schema error, as `validate_params` reports the same errors."""
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
                     "minLength"):
        return "RTN022"
    if validator == "required":
        return "RTN014"
    if validator == "additionalProperties":
        return "RTN013"
    if validator in ("oneOf", "dependentRequired"):
        return "RTN025"
    return "RTN023"


def _rewire(links: list[Link], cell: Cell, inner: list[Cell]) -> list[Link]:
    """Links into the instance go to its first inner cell, links out of it leave from its last."""
    first, last = inner[0].name, inner[-1].name
    out = []
    for l in links:
        if l.dst == cell.name:
            l = replace(l, dst=first)
        if l.src == cell.name:
            l = replace(l, src=last)
        out.append(l)
    out.extend(Link(a.name, None, b.name, cell.span) for a, b in zip(inner, inner[1:]))
    return out

"""The abstract syntax tree of a `.rtn` file: small frozen nodes, each with its span.

The TOML and YAML front ends build the same nodes, so everything after parsing
(and the formatter, which prints these nodes) is shared by all three inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Union

from ..source import Span
from ..units import Dim, Reading


# ---- expressions -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Number:
    """A plain number (`1000`, `0.25`)."""
    value: Fraction
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number glued to its unit (`10ms`), magnitude already in base units. A unit Rattan refuses
    keeps its possible meanings in `readings` (value and dim are then the first's): the pass that
    knows the dimension a parameter wants gives the advice for that dimension."""
    value: Fraction
    dim: Dim
    text: str
    span: Span
    readings: tuple[Reading, ...] = ()


@dataclass(frozen=True, slots=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A possibly dotted name (`rtt`, `lib.link`, `up.rate`)."""
    parts: tuple[str, ...]
    span: Span

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Neg:
    operand: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Paren:
    inner: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Field:
    """`name = value` inside a record or a cell's parameter block."""
    name: str
    name_span: Span
    value: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Record:
    """A tagged record: `droptail { packets = 1000 }`. `incomplete`: a syntax error inside its
    braces made the parser skip text there, so fields may be missing (see `CellDecl`)."""
    tag: Name
    fields: tuple[Field, ...]
    span: Span
    multiline: bool = False
    incomplete: bool = False


@dataclass(frozen=True, slots=True)
class List:
    items: tuple["Expr", ...]
    span: Span
    multiline: bool = False


Expr = Union[Number, Quantity, String, Bool, Name, BinOp, Neg, Paren, Record, List]


# ---- statements ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Let:
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Import:
    path: String
    alias: str | None
    alias_span: Span | None
    span: Span


@dataclass(frozen=True, slots=True)
class ParamDecl:
    """A typed parameter of a compound cell type: `delay: time = 0ms`."""
    name: str
    name_span: Span
    type_name: str
    type_span: Span
    default: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class CellType:
    """`cell type NAME(params) { in -> ... -> out }`."""
    name: str
    name_span: Span
    params: tuple[ParamDecl, ...]
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    name_span: Span
    body: tuple["Stmt", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Endpoints:
    names: tuple[tuple[str, Span], ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CellDecl:
    """`cell NAME: TYPE { params }`. `incomplete`: the parser skipped text inside the braces after
    a syntax error, so a parameter may be missing only because it was in that text: no pass reports
    a missing parameter (RTN014) of an incomplete block, only the syntax error (RTN001)."""
    name: str
    name_span: Span
    type: Name
    params: tuple[Field, ...]
    span: Span
    multiline: bool = False
    has_block: bool = True
    incomplete: bool = False


@dataclass(frozen=True, slots=True)
class Ref:
    """A chain element naming an endpoint or a declared cell, with an optional port."""
    name: Name
    port: int | None
    span: Span


@dataclass(frozen=True, slots=True)
class Inline:
    """An anonymous cell written in a chain: `delay { delay = 10ms }`; `incomplete` as in `CellDecl`."""
    type: Name
    params: tuple[Field, ...]
    span: Span
    multiline: bool = False
    incomplete: bool = False


Element = Union[Ref, Inline]


@dataclass(frozen=True, slots=True)
class Chain:
    """`a -> b -> c`; `line_breaks[i]` is true when element i+1 began a new line."""
    elements: tuple[Element, ...]
    span: Span
    line_breaks: tuple[bool, ...] = ()


@dataclass(frozen=True, slots=True)
class Assign:
    """`up.rate = 5Mbps` in a timeline block."""
    target: Name
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class At:
    time: Expr
    assigns: tuple[Assign, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Every:
    period: Expr
    duration: Expr
    assigns: tuple[Assign, ...]
    span: Span


Stmt = Union[Let, Import, CellType, Channel, Endpoints, CellDecl, Chain, At, Every]


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class File:
    """One parsed source: its statements and, for the formatter, its comments."""
    source: int
    body: tuple[Stmt, ...]
    comments: tuple[Comment, ...]
    span: Span
    # Run settings that only the upstream TOML/YAML format can carry
    # ([env], [commands], [http], [general]); they pass into the plan's `run`.
    settings: tuple[tuple[str, object], ...] = ()
    # The format it was written in: "rtn", or "toml"/"yaml" for upstream Rattan's documents
    # (set by compiler.parse_source). Graph findings that upstream accepts are warnings there.
    format: str = "rtn"

"""Evaluated values: what a parameter expression folds to, before schema conversion."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..source import Span
from ..units import Quantity, dim_name, NUMBER


@dataclass(frozen=True, slots=True)
class QtyV:
    """A number or a quantity (dimension NUMBER for plain numbers and percentages)."""
    q: Quantity
    span: Span
    percent: bool = False  # written with `%`
    unknown_unit: str | None = None  # the literal as written, when its unit was refused (RTN004)

    def describe(self) -> str:
        return "a number" if self.q.dim == NUMBER else f"a {dim_name(self.q.dim)}"


@dataclass(frozen=True, slots=True)
class BoolV:
    value: bool
    span: Span

    def describe(self) -> str:
        return "a boolean"


@dataclass(frozen=True, slots=True)
class StrV:
    value: str
    span: Span
    base_dir: str | None = None  # folder of the file that wrote it, for relative paths

    def describe(self) -> str:
        return "a string"


@dataclass(frozen=True, slots=True)
class SymV:
    """A bare name that named nothing in scope: an enum member, a record kind or an endpoint."""
    name: str
    span: Span
    scope: object = field(default=None, compare=False, repr=False)  # for "did you mean" on typos

    def describe(self) -> str:
        return f"the name `{self.name}`"


@dataclass(frozen=True, slots=True)
class RecV:
    kind: str
    kind_span: Span
    fields: tuple[tuple[str, Span, "Value"], ...]
    span: Span
    incomplete: bool = False  # as ast.Record's: a missing field is no error

    def describe(self) -> str:
        return f"a `{self.kind}` record"


@dataclass(frozen=True, slots=True)
class ListV:
    items: tuple["Value", ...]
    span: Span

    def describe(self) -> str:
        return "a list"


Value = Union[QtyV, BoolV, StrV, SymV, RecV, ListV]

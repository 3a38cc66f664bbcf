"""IR nodes: a program is channels of cells and links, plus a timeline.

Every node is frozen; passes build new nodes with `dataclasses.replace`.
Parameters start as expressions bound to a scope (`Bound`), become folded
values (`Value`) after `evaluate`, and plan-ready JSON (`config`) after
`validate_params`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ..source import Span
from ..syntax import ast
from .values import Value


@dataclass(frozen=True, eq=False)
class Scope:
    """Lexical scope: names to bindings, with a parent. Built once by `resolve_names`."""
    names: Mapping[str, "Binding"]
    parent: "Scope | None" = None
    base_dir: str | None = None  # folder of the file, for relative paths

    def lookup(self, name: str) -> "Binding | None":
        s: Scope | None = self
        while s is not None:
            b = s.names.get(name)
            if b is not None:
                return b
            s = s.parent
        return None

    def names_of_kind(self, *kinds: str) -> list[str]:
        """Every visible name bound to one of these kinds ("let", "param", "type", "module")."""
        out = []
        for n in self.visible():
            b = self.lookup(n)
            if b is not None and b.kind in kinds:
                out.append(n)
        return out

    def visible(self) -> list[str]:
        out, s = [], self
        while s is not None:
            out.extend(s.names)
            s = s.parent
        return out


@dataclass(frozen=True, eq=False)
class Binding:
    """What a name means: a constant, a compound parameter, a cell type, or an import alias."""
    kind: str  # "let" | "param" | "type" | "module"
    span: Span
    expr: ast.Expr | None = None
    scope: Scope | None = None  # where `expr` is evaluated
    decl: ast.CellType | None = None
    module: Scope | None = None
    declared_type: str | None = None  # for "param": time, rate, ...
    declared_at: Span | None = None  # for "param": its name in the `cell type`'s parameter list


@dataclass(frozen=True)
class Bound:
    """An expression together with the scope it is evaluated in."""
    expr: ast.Expr
    scope: Scope


@dataclass(frozen=True)
class Param:
    """One parameter of a cell as the user wrote it."""
    name: str
    name_span: Span
    value: Bound | Value
    span: Span


@dataclass(frozen=True)
class Cell:
    """A cell instance. `type` is a registry name once compounds are expanded."""
    name: str
    type: str
    params: tuple[Param, ...]
    span: Span
    type_span: Span
    anonymous: bool = False
    compound: Binding | None = None  # set for an unexpanded compound instance
    config: Mapping[str, Any] | None = None  # plan-ready parameters, base units
    trace: Mapping[str, Any] | None = None  # parsed trace, for *_trace cells
    origin: str | None = None  # compound instance this cell was expanded from
    origin_span: Span | None = None  # that instance, in the user's text
    name_spans: tuple[Span, ...] = ()  # where each part of a declared cell's name (`up.bw`) is declared
    incomplete: bool = False  # a syntax error dropped text in its braces: a missing parameter is no error


@dataclass(frozen=True)
class Endpoint:
    name: str
    span: Span


@dataclass(frozen=True)
class Link:
    """An edge from a node's output port to a node's input (nodes: cells or endpoints)."""
    src: str
    src_port: int | None
    dst: str
    span: Span


@dataclass(frozen=True)
class Change:
    """A timeline change: set `cell.param` at `at`, or every `period` for `duration`."""
    cell: str
    param: str
    value: Bound | Value | Any
    target_span: Span
    span: Span
    at: Bound | int | None = None
    period: Bound | int | None = None
    duration: Bound | int | None = None


@dataclass(frozen=True)
class Controller:
    """A Python cell after expansion: its instance (`cell`, with its checked `config`), the class
    that models it, its tick period, and its inner cells (inner name -> channel cell name)."""
    cell: Cell
    python: str  # package.module:ClassName
    tick_ns: int
    cells: Mapping[str, str]


@dataclass(frozen=True)
class Channel:
    name: str
    name_span: Span
    endpoints: tuple[Endpoint, ...]
    cells: tuple[Cell, ...]
    links: tuple[Link, ...]
    timeline: tuple[Change, ...]
    span: Span
    controllers: tuple[Controller, ...] = ()  # Python cells, by `expand_python_cells`
    segmenting: tuple[str, ...] = ()  # endpoints that cut GSO super-frames, by `mark_segmenting`
    cuts: tuple[tuple[str, int, str], ...] = ()  # links (src, port, dst) between regions, by `mark_cuts`
    # cells and endpoints of a chain that named an unknown cell (RTN040): their links are partly missing
    in_broken_chains: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Unit:
    """One loaded file and the files it imports."""
    path: str | None
    file: ast.File
    imports: tuple[tuple[ast.Import, int], ...]  # (statement, index of the imported unit)


@dataclass(frozen=True)
class Program:
    """The whole compilation: loaded files, then channels."""
    units: tuple[Unit, ...] = ()
    channels: tuple[Channel, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

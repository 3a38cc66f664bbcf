"""The stable table of diagnostic codes. Codes are never reused or renumbered."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """One diagnostic code: its id, default severity and a one-line title."""

    id: str
    severity: str
    title: str


_TABLE = [
    # Reading input
    ("RTN001", "error", "syntax error"),
    ("RTN002", "error", "unterminated string"),
    ("RTN003", "error", "space between a number and its unit"),
    ("RTN004", "error", "unknown unit"),
    ("RTN005", "error", "invalid character"),
    ("RTN006", "error", "file cannot be read"),
    ("RTN007", "error", "input too deeply nested"),
    ("RTN008", "error", "number too large"),
    # Names and scopes
    ("RTN010", "error", "name defined twice in one scope"),
    ("RTN011", "error", "unknown name"),
    ("RTN012", "error", "unknown cell type"),
    ("RTN013", "error", "unknown parameter"),
    ("RTN014", "error", "missing required parameter"),
    ("RTN015", "error", "parameter given twice"),
    ("RTN016", "error", "unknown record kind or value"),
    # Values and units
    ("RTN020", "error", "dimension mismatch in arithmetic"),
    ("RTN021", "error", "value of the wrong dimension"),
    ("RTN022", "error", "value out of range"),
    ("RTN023", "error", "value of the wrong type"),
    ("RTN024", "error", "division by zero"),
    ("RTN025", "error", "invalid parameter combination"),
    # Imports and compound cells
    ("RTN030", "error", "imported file not found"),
    ("RTN031", "error", "import cycle"),
    ("RTN032", "error", "recursive cell type"),
    ("RTN033", "error", "misuse of `in` or `out`"),
    ("RTN034", "error", "unknown parameter type"),
    # Graph
    ("RTN040", "error", "unknown cell or endpoint in a chain"),
    ("RTN041", "error", "cycle in the cell graph"),
    ("RTN042", "error", "cell on no path between endpoints"),
    ("RTN043", "error", "fan-out from a cell with a single output"),
    ("RTN044", "error", "port out of range"),
    ("RTN045", "warning", "unused endpoint"),
    ("RTN046", "error", "endpoint that sends reaches no endpoint"),
    ("RTN047", "error", "channel defined twice"),
    ("RTN048", "error", "empty channel"),
    ("RTN049", "warning", "endpoint whose replies have no path back"),
    # Traces
    ("RTN050", "error", "trace file not found"),
    ("RTN051", "error", "malformed trace file"),
    # Timelines
    ("RTN060", "error", "timeline names an unknown cell or parameter"),
    ("RTN061", "error", "parameter cannot change at run time"),
    ("RTN062", "error", "invalid timeline period"),
    # TOML / YAML documents
    ("RTN070", "error", "malformed TOML or YAML document"),
    ("RTN071", "error", "unknown key"),
    ("RTN072", "error", "unknown upstream cell type"),
    ("RTN073", "error", "malformed value"),
    ("RTN074", "error", "unsupported upstream feature"),
    ("RTN075", "warning", "key or value upstream ignores"),
    ("RTN076", "warning", "upstream runs this differently from what it seems to say"),
    # Warnings
    ("RTN090", "warning", "unused definition"),
    ("RTN091", "error", "`--let` names no `let` of the file"),
]

CODES: dict[str, Code] = {c: Code(c, s, t) for c, s, t in _TABLE}

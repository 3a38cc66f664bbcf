"""The Diagnostic record that every pass produces, and the sink that collects them."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Literal

from ..source import Span
from .codes import CODES

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Label:
    """A secondary span with a short message ("first defined here")."""

    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    """One finding: stable code, severity, message, where, and how to fix it."""

    code: str
    message: str
    span: Span | None
    severity: Severity = "error"
    labels: tuple[Label, ...] = ()
    help: tuple[str, ...] = ()
    fix: str | None = None  # replacement text for `span`, when there is one obvious fix

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


class Sink:
    """Collects diagnostics in the order they were found; passes append, never raise."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._seen: set[tuple] = set()

    def emit(self, code: str, message: str, span: Span | None, *, labels: Iterable[Label] = (),
             help: Iterable[str] | str = (), fix: str | None = None,
             severity: Severity | None = None) -> Diagnostic:
        """Record a diagnostic; the code's default severity applies unless given."""
        if isinstance(help, str):
            help = (help,)
        d = Diagnostic(code, message, span, severity or CODES[code].severity,
                       tuple(labels), tuple(h for h in help if h), fix)
        key = (code, message, span)
        if key not in self._seen:  # the same finding reached twice is shown once
            self._seen.add(key)
            self.items.append(d)
        return d

    def revise(self, old: Diagnostic, new: Diagnostic) -> None:
        """Put `new` in the place of `old`: a later pass that knows more (the dimension a parameter
        wants) narrows an earlier finding instead of adding a second one."""
        self.items[self.items.index(old)] = new

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Diagnostics by source and position; stable for equal positions."""
        def key(d: Diagnostic):
            s = d.span
            return (s.source, s.start, s.end) if s else (-1, 0, 0)
        return sorted(self.items, key=key)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known name to a misspelt one, if any is close enough."""
    choices = list(choices)
    m = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not m:
        low = {c.lower(): c for c in choices}
        if word.lower() in low:
            return low[word.lower()]
        return None
    return m[0]

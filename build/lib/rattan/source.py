"""Source files and spans: where every node of the AST and IR came from."""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range of character offsets [start, end) in one source."""

    source: int
    start: int
    end: int

    def to(self, other: "Span | None") -> "Span":
        """The smallest span covering both (same source)."""
        if other is None or other.source != self.source:
            return self
        return Span(self.source, min(self.start, other.start), max(self.end, other.end))

    def __repr__(self) -> str:
        return f"@{self.source}:{self.start}-{self.end}"


@dataclass(eq=False)
class Source:
    """One text the compiler read: a file, an import, or a string."""

    id: int
    name: str  # as shown to the user
    text: str
    path: str | None = None  # absolute path on disk, if any
    _lines: list[int] = field(default_factory=list, repr=False)

    def line_starts(self) -> list[int]:
        """Offsets at which each line starts."""
        if not self._lines:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i != -1:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._lines = starts
        return self._lines

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column (in characters) of an offset."""
        starts = self.line_starts()
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        starts = self.line_starts()
        if line < 1 or line > len(starts):
            return ""
        s = starts[line - 1]
        e = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[s:e].rstrip("\r")


class SourceMap:
    """Every source of one compilation, by id."""

    def __init__(self) -> None:
        self._sources: list[Source] = []

    def add(self, name: str, text: str, path: str | None = None) -> Source:
        """Register a text and give it an id."""
        src = Source(len(self._sources), name, text, path)
        self._sources.append(src)
        return src

    def __getitem__(self, sid: int) -> Source:
        return self._sources[sid]

    def __iter__(self):
        return iter(self._sources)

    def by_path(self, path: str) -> Source | None:
        """The source already loaded from this absolute path."""
        for s in self._sources:
            if s.path == path:
                return s
        return None

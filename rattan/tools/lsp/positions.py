"""Offsets in a source and LSP positions (0-based line, character in the negotiated encoding).

The compiler's spans count Python characters (code points). Editors count UTF-16 code units
by default; Neovim and Helix offer UTF-8 bytes, which the server then uses (pygls negotiates
it at `initialize`). Either way, a `µs` or an emoji earlier on a line must not shift the
columns after it.
"""
from __future__ import annotations

from lsprotocol import types as lsp

from ...source import Source, Span

UTF16, UTF8, UTF32 = "utf-16", "utf-8", "utf-32"


def _units(ch: str, enc: str) -> int:
    o = ord(ch)
    if enc == UTF8:
        return 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4
    if enc == UTF32:
        return 1
    return 2 if o > 0xFFFF else 1


def _line_bounds(src: Source, line: int) -> tuple[int, int]:
    """Start and end offsets of a 0-based line, without its line break (`\\r\\n` or `\\n`)."""
    starts = src.line_starts()
    start = starts[line]
    end = starts[line + 1] - 1 if line + 1 < len(starts) else len(src.text)
    if end > start and src.text[end - 1] == "\r":
        end -= 1
    return start, end


def position(src: Source, offset: int, enc: str = UTF16) -> lsp.Position:
    """The LSP position of a character offset (one inside a line break: the end of its line)."""
    line, _ = src.line_col(offset)
    start, end = _line_bounds(src, line - 1)
    return lsp.Position(line=line - 1, character=width(src.text[start:min(offset, end)], enc))


def width(text: str, enc: str) -> int:
    """How many units of `enc` a piece of a line takes (counted by the codecs, in C)."""
    if enc == UTF32 or text.isascii():
        return len(text)
    if enc == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def span_range(src: Source, span: Span, enc: str = UTF16) -> lsp.Range:
    return lsp.Range(start=position(src, span.start, enc), end=position(src, span.end, enc))


def offset(src: Source, pos: lsp.Position, enc: str = UTF16) -> int:
    """The character offset of an LSP position (clamped to the line and the text)."""
    if pos.line >= len(src.line_starts()):
        return len(src.text)
    i, end = _line_bounds(src, pos.line)
    if enc == UTF32 or src.text[i:end].isascii():
        return min(i + pos.character, end)
    units = 0
    while i < end and units < pos.character:
        units += _units(src.text[i], enc)
        i += 1
    return i


def whole_range(src: Source, enc: str = UTF16) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=0, character=0), end=position(src, len(src.text), enc))


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (halving: each comparison is one memcmp)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class Moved:
    """How offsets moved from an analysed text to the document's current text.

    The two texts are taken to differ in one region (what typing since the analysis changed):
    offsets before it stay, offsets after it shift by the change in length, offsets inside it go
    to its start. Positions are converted through the analysed source's line table, and only
    the lines the edit touches are measured in the current text, so that a request on a large
    file does not index the whole new text.
    """

    def __init__(self, old: Source, new: str) -> None:
        self.old, self.new_text = old, new
        p = _common_prefix(old.text, new)
        s = _common_suffix(old.text, new, p)
        self.prefix, self.old_end, self.new_end = p, len(old.text) - s, len(new) - s
        self.delta = len(new) - len(old.text)
        self.first_line = old.line_col(p)[0] - 1  # 0-based line where the edit starts (both texts)
        self.old_lines = old.text.count("\n", p, self.old_end)  # line breaks inside the region
        self.new_lines = new.count("\n", p, self.new_end)
        self._new_source: Source | None = None

    @property
    def new_source(self) -> Source:
        """The current text as a Source (its line table built on first use)."""
        if self._new_source is None:
            self._new_source = Source(0, "", self.new_text)
        return self._new_source

    def back(self, off: int) -> int:
        """A current offset as an offset in the analysed text."""
        if off <= self.prefix:
            return off
        if off >= self.new_end:
            return off - self.delta
        return self.prefix

    def forward(self, off: int) -> int:
        """An analysed offset as an offset in the current text."""
        if off <= self.prefix:
            return off
        if off >= self.old_end:
            return off + self.delta
        return self.prefix

    def new_offset(self, pos: lsp.Position, enc: str = UTF16) -> int:
        """The offset in the current text of a position in it."""
        if pos.line < self.first_line:  # a line before the edit: the same in both texts
            return offset(self.old, pos, enc)
        if pos.line > self.first_line + self.new_lines:  # after it: shifted by whole lines
            line = pos.line - self.new_lines + self.old_lines
            return offset(self.old, lsp.Position(line=line, character=pos.character), enc) + self.delta
        # a line the edit touches: measured in the current text, from the edit's first line
        text = self.new_text
        start = self.old.line_starts()[self.first_line]
        for _ in range(pos.line - self.first_line):
            start = text.index("\n", start) + 1
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if end > start and text[end - 1] == "\r":
            end -= 1
        i, units = start, 0
        while i < end and units < pos.character:
            units += _units(text[i], enc)
            i += 1
        return i

    def new_position(self, off: int, enc: str = UTF16) -> lsp.Position:
        """The position in the current text of an offset in it."""
        if off <= self.prefix:
            return position(self.old, off, enc)
        if off >= self.new_end:
            old = position(self.old, off - self.delta, enc)
            if old.line > self.first_line + self.old_lines:
                return lsp.Position(line=old.line - self.old_lines + self.new_lines, character=old.character)
        return position(self.new_source, off, enc)


def _common_suffix(a: str, b: str, floor: int) -> int:
    """Length of the longest common suffix of a[floor:] and b[floor:] (halving, as the prefix)."""
    lo, hi = 0, min(len(a), len(b)) - floor
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:len(a) - lo] == b[len(b) - mid:len(b) - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo

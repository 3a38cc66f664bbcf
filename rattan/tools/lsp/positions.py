"""Offsets in a source and LSP positions (0-based line, character in UTF-16 code units).

The compiler's spans count Python characters; editors count UTF-16 code units by default,
so a `µs` or an emoji in a comment must not shift every later column of its line.
"""
from __future__ import annotations

from lsprotocol import types as lsp

from ...source import Source, Span


def _utf16_len(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def position(src: Source, offset: int) -> lsp.Position:
    """The LSP position of a character offset."""
    line, col = src.line_col(offset)
    start = src.line_starts()[line - 1]
    return lsp.Position(line=line - 1, character=_utf16_len(src.text[start:start + col - 1]))


def span_range(src: Source, span: Span) -> lsp.Range:
    return lsp.Range(start=position(src, span.start), end=position(src, span.end))


def offset(src: Source, pos: lsp.Position) -> int:
    """The character offset of an LSP position (clamped to the line and the text)."""
    starts = src.line_starts()
    if pos.line >= len(starts):
        return len(src.text)
    i = starts[pos.line]
    end = starts[pos.line + 1] - 1 if pos.line + 1 < len(starts) else len(src.text)
    units = 0
    while i < end and units < pos.character:
        units += 2 if ord(src.text[i]) > 0xFFFF else 1
        i += 1
    return i


def whole_range(src: Source) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=0, character=0), end=position(src, len(src.text)))

"""Reading source files from disk into the SourceMap, with diagnostics instead of exceptions."""
from __future__ import annotations

import os

from ..source import Source, Span
from .context import Context

MAX_BYTES = 64 * 1024 * 1024


class InputError(Exception):
    """The entry file itself cannot be read: a usage/I/O problem (exit status 2)."""


def decode(data: bytes) -> tuple[str, int | None]:
    """Text of a file; the offset of the first byte that is not UTF-8, if any."""
    try:
        text = data.decode("utf-8")
        bad = None
    except UnicodeDecodeError as e:
        text = data.decode("utf-8", errors="replace")
        bad = len(data[: e.start].decode("utf-8", errors="replace"))
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, bad


def read_text(path: str) -> tuple[str, int | None]:
    """Read a file as text or raise InputError with a message a user understands."""
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a file")
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise InputError(f"{path}: {size} bytes is larger than the {MAX_BYTES // 2**20} MiB limit")
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    return decode(data)


def read_source(ctx: Context, path: str, shown: str, at: Span | None) -> Source | None:
    """Load an imported file; problems become RTN006 at `at`."""
    try:
        text, bad = read_text(path)
    except InputError as e:
        ctx.sink.emit("RTN006", f"cannot read `{shown}`: {str(e).split(': ', 1)[-1]}", at)
        return None
    src = ctx.sources.add(shown, text, path)
    report_encoding(ctx, src, bad)
    return src


def report_encoding(ctx: Context, src: Source, bad: int | None) -> None:
    """RTN005 at the first byte that is not UTF-8."""
    if bad is not None:
        ctx.sink.emit("RTN005", "the file is not valid UTF-8", Span(src.id, bad, bad + 1),
                      help="save the file as UTF-8")

"""Read the upstream Rattan configuration format (TOML or YAML) into the `.rtn` AST.

Upstream Rattan (github.com/stack-rs/rattan) describes a path as `[env]`,
`[cells.<id>]` tables tagged by `type`, `[links]` (`src = "dst"`) and run
settings (`[http]`, `[general]`, `[resource]`, `[commands]`). This module maps
such a document onto the AST the `.rtn` parser builds: one channel named after
the file, its endpoints, one `cell` per upstream cell (mapped onto the built-in
cell types) and maximal chains rebuilt from the links. Every node carries a span
into the TOML/YAML text, so later diagnostics land on the user's line.

The rule, followed serde struct by serde struct (rattan-core/src/config/,
rattan-core/src/cells/, rattan-env/src/env.rs at upstream a18829c): a file
upstream runs maps to the same meaning; a file upstream refuses gets an error;
what upstream silently ignores (an unknown key, a misspelt field) is a warning
(RTN075, with "did you mean") and the file maps as upstream runs it. Nothing
here raises: every problem becomes a diagnostic. docs/upstream-format.md gives
the mapping field by field.
"""
from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..diagnostics import Label, Sink, did_you_mean
from ..source import Source, Span
from ..syntax import ast
from ..units import RATE, SIZE, TIME, TIME_WORDS, Dim, format_quantity, unit_advice

__all__ = ["load_document"]


# ---- the located tree: parsed values with the spans they were written at ---
@dataclass
class Node:
    """One value of the document: a dict of Nodes, a list of Nodes, or a scalar."""

    value: Any
    span: Span          # where the value is written (a table: its header or braces)
    key_span: Span      # where its key is written (list items and the root: the value)
    text: str | None = None  # a scalar's source text, so numbers keep their spelling


class _Malformed(Exception):
    """The document cannot be read at all; carries its diagnostic (RTN070, or RTN007 for nesting)."""

    def __init__(self, message: str, span: Span, code: str = "RTN070") -> None:
        super().__init__(message)
        self.span = span
        self.code = code


MAX_DEPTH = 100          # deeper nesting than any real configuration (RTN007)
MAX_YAML_NODES = 200_000  # aliases can multiply a small text ("billion laughs")


def load_document(source: Source, sink: Sink, fmt: str) -> ast.File:
    """The AST of an upstream Rattan TOML (`fmt="toml"`) or YAML (`fmt="yaml"`) document.

    Problems are reported to `sink`; the returned file holds everything that could
    be mapped. Never raises.
    """
    whole = Span(source.id, 0, len(source.text))
    try:
        root = _read_tree(source, fmt)
        return _Mapper(source, sink, fmt).file(root)
    except _Malformed as e:
        sink.emit(e.code, str(e), e.span)
    except RecursionError:
        sink.emit("RTN007", f"the document is nested more than {MAX_DEPTH} levels deep", whole)
    except Exception as e:  # a bug here must not take the compiler down with it
        sink.emit("RTN070", f"cannot read this document (internal error: {type(e).__name__}: {e})",
                  whole, help="please report this with the document attached")
    return _empty_file(source)


def _read_tree(source: Source, fmt: str) -> Node:
    if fmt == "toml":
        return _read_toml(source)
    if fmt == "yaml":
        return _read_yaml(source)
    raise _Malformed(f"unknown document format `{fmt}` (expected toml or yaml)",
                     Span(source.id, 0, 0))


def _empty_file(source: Source) -> ast.File:
    return ast.File(source.id, (), (), Span(source.id, 0, len(source.text)))


# ---- TOML ------------------------------------------------------------------
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _read_toml(source: Source) -> Node:
    try:
        data = tomllib.loads(source.text)
    except tomllib.TOMLDecodeError as e:
        raise _toml_error(source, e) from None
    spans = _TomlLocator(source.id, source.text).locate()
    return _toml_node(data, (), spans, source, Span(source.id, 0, len(source.text)), 0)


def _toml_error(source: Source, e: Exception) -> _Malformed:
    """RTN070 at the line and column tomllib reports (in its message before Python 3.14)."""
    msg = str(e)
    line, col = getattr(e, "lineno", None), getattr(e, "colno", None)
    m = _TOML_AT.search(msg)
    if m:
        line, col = int(m.group(1)), int(m.group(2))
        msg = msg[:m.start()]
    msg = msg.replace(" (at end of document)", "")
    if line is None:
        pos = len(source.text)
    else:
        starts = source.line_starts()
        pos = starts[min(line, len(starts)) - 1] + max(0, (col or 1) - 1)
    pos = min(pos, len(source.text))
    end = min(pos + 1, len(source.text))
    return _Malformed(f"malformed TOML: {msg[:1].lower() + msg[1:]}", Span(source.id, pos, end))


def _toml_node(value: Any, path: tuple, spans: dict, source: Source, parent: Span, depth: int) -> Node:
    """Attach to each value of tomllib's result the spans the locator found for its path."""
    if depth > MAX_DEPTH:
        raise _Malformed(f"the document is nested more than {MAX_DEPTH} levels deep", parent, "RTN007")
    key_span, span = spans.get(path, (parent, parent))
    if isinstance(value, dict):
        kids = {k: _toml_node(v, path + (k,), spans, source, span, depth + 1) for k, v in value.items()}
        return Node(kids, span, key_span)
    if isinstance(value, list):
        items = [_toml_node(v, path + (i,), spans, source, span, depth + 1) for i, v in enumerate(value)]
        return Node(items, span, key_span)
    text = source.text[span.start:span.end] if path in spans else None
    return Node(value, span, key_span, text)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BARE_VALUE = re.compile(r"[^,\]}#\r\n]*")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\", "e": "\x1b"}


class _TomlLocator:
    """Finds where each key and value of an already valid TOML text is written.

    tomllib gives values but no positions, so this walks the text once more and
    records, per key path (`("cells", "up_bw", "bandwidth")`, with list indices
    for array items and arrays of tables), the span of the key and of the value.
    A table defined by a header gets the header's span.
    """

    def __init__(self, sid: int, text: str) -> None:
        self.sid = sid
        self.text = text
        self.pos = 0
        self.spans: dict[tuple, tuple[Span, Span]] = {}
        self.array_tables: dict[tuple, int] = {}  # path -> elements defined so far

    def locate(self) -> dict[tuple, tuple[Span, Span]]:
        """Spans by key path; paths it could not place fall back to their table's span."""
        try:
            self._document()
        except (IndexError, ValueError, RecursionError):
            pass  # tomllib accepted the text, so this is a gap here: keep what was found
        return self.spans

    def _span(self, start: int, end: int) -> Span:
        return Span(self.sid, start, end)

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip_ws(self) -> None:
        while self._peek() in (" ", "\t"):
            self.pos += 1

    def _skip_blank(self) -> None:
        """Whitespace, newlines and comments."""
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r\n":
                self.pos += 1
            elif c == "#":
                nl = self.text.find("\n", self.pos)
                self.pos = len(self.text) if nl < 0 else nl
            else:
                return

    def _expect(self, c: str) -> None:
        if self._peek() != c:
            raise ValueError(f"expected {c!r} at {self.pos}")
        self.pos += 1

    def _document(self) -> None:
        table: tuple = ()
        while True:
            self._skip_blank()
            if self.pos >= len(self.text):
                return
            if self.text.startswith("[[", self.pos):
                table = self._array_table_header()
            elif self._peek() == "[":
                table = self._table_header()
            else:
                self._keyval(table)

    def _resolve(self, parts: list[tuple[str, Span]]) -> list[tuple[tuple, Span]]:
        """Each prefix of a header's key as a full path (through arrays of tables)."""
        path: tuple = ()
        out = []
        for name, span in parts:
            path += (name,)
            if path in self.array_tables:
                path += (self.array_tables[path] - 1,)
            out.append((path, span))
        return out

    def _table_header(self) -> tuple:
        start = self.pos
        self.pos += 1
        parts = self._key()
        self._expect("]")
        header = self._span(start, self.pos)
        prefixes = self._resolve(parts)
        for path, span in prefixes[:-1]:
            self.spans.setdefault(path, (span, header))
        path, span = prefixes[-1]
        self.spans[path] = (span, header)
        return path

    def _array_table_header(self) -> tuple:
        start = self.pos
        self.pos += 2
        parts = self._key()
        self._expect("]")
        self._expect("]")
        header = self._span(start, self.pos)
        prefixes = self._resolve(parts[:-1])
        for path, span in prefixes:
            self.spans.setdefault(path, (span, header))
        name, span = parts[-1]
        key = (prefixes[-1][0] if prefixes else ()) + (name,)
        index = self.array_tables.get(key, 0)
        self.array_tables[key] = index + 1
        self.spans.setdefault(key, (span, header))
        self.spans[key + (index,)] = (span, header)
        return key + (index,)

    def _keyval(self, table: tuple) -> None:
        parts = self._key()
        self._expect("=")
        self._skip_ws()
        path = table
        for name, span in parts[:-1]:
            path += (name,)
            self.spans.setdefault(path, (span, span))  # a dotted key's implicit table
        path += (parts[-1][0],)
        value = self._value(path)
        self.spans[path] = (parts[-1][1], value)

    def _key(self) -> list[tuple[str, Span]]:
        parts = []
        while True:
            self._skip_ws()
            start = self.pos
            c = self._peek()
            if c == '"':
                name = self._basic_string()
            elif c == "'":
                name = self._literal_string()
            else:
                m = _BARE_KEY.match(self.text, self.pos)
                if not m:
                    raise ValueError(f"key expected at {self.pos}")
                name, self.pos = m.group(), m.end()
            parts.append((name, self._span(start, self.pos)))
            self._skip_ws()
            if self._peek() != ".":
                return parts
            self.pos += 1

    def _value(self, path: tuple) -> Span:
        start = self.pos
        c = self._peek()
        if self.text.startswith(('"""', "'''"), self.pos):
            self._multiline_string()
        elif c == '"':
            self._basic_string()
        elif c == "'":
            self._literal_string()
        elif c == "[":
            self._array(path)
        elif c == "{":
            self._inline_table(path)
        else:
            m = _BARE_VALUE.match(self.text, self.pos)
            end = m.end()
            while end > self.pos and self.text[end - 1] in " \t":
                end -= 1
            if end == self.pos:
                raise ValueError(f"value expected at {self.pos}")
            self.pos = end
        return self._span(start, self.pos)

    def _basic_string(self) -> str:
        """A `"..."` string (the cursor on its quote); returns its decoded text."""
        self.pos += 1
        out = []
        while True:
            c = self.text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == "\\":
                out.append(self._escape())
            else:
                out.append(c)
                self.pos += 1

    def _escape(self) -> str:
        kind = self.text[self.pos + 1]
        if kind in _ESCAPES:
            self.pos += 2
            return _ESCAPES[kind]
        digits = {"x": 2, "u": 4, "U": 8}[kind]
        code = int(self.text[self.pos + 2:self.pos + 2 + digits], 16)
        self.pos += 2 + digits
        return chr(code)

    def _literal_string(self) -> str:
        end = self.text.index("'", self.pos + 1)
        s = self.text[self.pos + 1:end]
        self.pos = end + 1
        return s

    def _multiline_string(self) -> None:
        delim = self.text[self.pos:self.pos + 3]
        i = self.pos + 3
        while True:
            if delim == '"""' and self.text[i] == "\\":
                i += 2
            elif self.text.startswith(delim, i):
                j = i + 3
                # up to two quotes may end the content right before the delimiter
                while j < len(self.text) and self.text[j] == delim[0] and j - i < 5:
                    j += 1
                self.pos = j
                return
            else:
                i += 1

    def _array(self, path: tuple) -> None:
        self.pos += 1
        index = 0
        while True:
            self._skip_blank()
            if self._peek() == "]":
                self.pos += 1
                return
            item = self._value(path + (index,))
            self.spans[path + (index,)] = (item, item)
            index += 1
            self._skip_blank()
            if self._peek() == ",":
                self.pos += 1

    def _inline_table(self, path: tuple) -> None:
        self.pos += 1
        while True:
            self._skip_blank()
            if self._peek() == "}":
                self.pos += 1
                return
            self._keyval(path)
            self._skip_blank()
            if self._peek() == ",":
                self.pos += 1


# ---- YAML ------------------------------------------------------------------
# Plain scalars are typed as in YAML 1.2's core schema (what serde_yaml does),
# not PyYAML's YAML 1.1: `no` stays a string and `1e-3` is a number.
_Y12_NULL = re.compile(r"~|null|Null|NULL|")
_Y12_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_Y12_INT = re.compile(r"[-+]?[0-9]+")
_Y12_OCT = re.compile(r"0o([0-7]+)")
_Y12_HEX = re.compile(r"0x([0-9a-fA-F]+)")
_Y12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_Y12_INF = re.compile(r"([-+]?)\.(inf|Inf|INF)")
_Y12_NAN = re.compile(r"\.(nan|NaN|NAN)")
_STR_TAG = "tag:yaml.org,2002:str"


def _read_yaml(source: Source) -> Node:
    whole = Span(source.id, 0, len(source.text))
    try:
        root = yaml.compose(source.text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        raise _yaml_error(source, e) from None
    except yaml.YAMLError as e:
        raise _Malformed(f"malformed YAML: {e}", whole) from None
    if root is None:  # an empty document: no sections
        return Node({}, whole, whole)
    return _YamlTree(source).node(root, None, 0)


def _yaml_error(source: Source, e: yaml.MarkedYAMLError) -> _Malformed:
    mark = e.problem_mark or e.context_mark
    pos = min(mark.index, len(source.text)) if mark is not None else 0
    what = " ".join(p for p in (e.context, e.problem) if p) or "cannot parse"
    return _Malformed(f"malformed YAML: {what}", Span(source.id, pos, min(pos + 1, len(source.text))))


class _YamlTree:
    """Turns composed YAML nodes (which carry marks) into located Nodes."""

    def __init__(self, source: Source) -> None:
        self.sid = source.id
        self.constructor = yaml.constructor.SafeConstructor()
        self.budget = MAX_YAML_NODES
        self.active: set[int] = set()  # mappings and sequences being expanded (alias cycles)

    def _span(self, n: yaml.Node) -> Span:
        return Span(self.sid, n.start_mark.index, n.end_mark.index)

    def node(self, n: yaml.Node, key_span: Span | None, depth: int) -> Node:
        span = self._span(n)
        self.budget -= 1
        if self.budget < 0:
            raise _Malformed(f"the document expands to more than {MAX_YAML_NODES} values "
                             "(aliases repeating aliases?)", span)
        if depth > MAX_DEPTH:
            raise _Malformed(f"the document is nested more than {MAX_DEPTH} levels deep", span, "RTN007")
        if isinstance(n, yaml.ScalarNode):
            return Node(self._scalar(n), span, key_span or span, n.value)
        if id(n) in self.active:
            raise _Malformed("an alias refers to a value that contains it", span)
        self.active.add(id(n))
        try:
            if isinstance(n, yaml.MappingNode):
                return Node(self._mapping(n, depth), span, key_span or span)
            return Node([self.node(item, None, depth + 1) for item in n.value], span, key_span or span)
        finally:
            self.active.discard(id(n))

    def _mapping(self, n: yaml.MappingNode, depth: int) -> dict[str, Node]:
        try:
            self.constructor.flatten_mapping(n)  # merge keys (`<<: *base`) as PyYAML does
        except yaml.constructor.ConstructorError as e:
            mark = e.problem_mark
            at = Span(self.sid, mark.index, mark.index + 1) if mark else self._span(n)
            raise _Malformed(f"malformed YAML: {e.problem}", at) from None
        out: dict[str, Node] = {}
        for k, v in n.value:
            kspan = self._span(k)
            if not isinstance(k, yaml.ScalarNode):
                raise _Malformed("malformed YAML: a key must be a plain string", kspan)
            if k.value in out:
                raise _Malformed(f"malformed YAML: duplicate key `{k.value}`", kspan)
            out[k.value] = self.node(v, kspan, depth + 1)
        return out

    def _scalar(self, n: yaml.ScalarNode) -> Any:
        if n.style is None:  # plain: resolve by YAML 1.2 core rules
            return _yaml12_plain(n.value)
        if n.tag == _STR_TAG:
            return n.value
        try:  # an explicit tag (`!!int "5"`)
            return self.constructor.construct_object(n)
        except yaml.YAMLError:
            return n.value


def _yaml12_plain(s: str) -> Any:
    if _Y12_NULL.fullmatch(s):
        return None
    if s in _Y12_BOOL:
        return _Y12_BOOL[s]
    if _Y12_INT.fullmatch(s):
        return int(s)
    for pattern, base in ((_Y12_OCT, 8), (_Y12_HEX, 16)):
        m = pattern.fullmatch(s)
        if m:
            return int(m.group(1), base)
    if _Y12_FLOAT.fullmatch(s):
        return float(s)
    m = _Y12_INF.fullmatch(s)
    if m:
        return -math.inf if m.group(1) == "-" else math.inf
    if _Y12_NAN.fullmatch(s):
        return math.nan
    return s


# ---- human-readable quantities ----------------------------------------------
# Each kind is read by a port of the crate upstream deserializes it with:
# rates by human-bandwidth (`parse_bandwidth`), times in cells by jiff (`Span`'s
# FromStr, then `std::time::Duration::try_from`, as rattan-core's
# utils/serde/duration.rs does), sizes by bytesize. Times in netem-trace model
# files are humantime's (`parse_time`, used by netem_trace.py).

# human-bandwidth's `Parser::parse_unit`: case-sensitive, either case of each prefix, always bits
_RATE_UNITS: dict[str, int] = {"bps": 0, "bit/s": 0, "b/s": 0}
for _digits, _letters in ((3, "kK"), (6, "Mm"), (9, "Gg"), (12, "Tt")):
    for _p in _letters:
        for _form in ("bps", "bit/s", "b/s"):
            _RATE_UNITS[_p + _form] = _digits
_RATE_FRACTION_DIGITS = 12  # FRACTION_PART_LIMIT: later fraction digits are skipped


class _RateError(ValueError):
    pass


def parse_rate(text: str) -> int | None:
    """bit/s from a human-bandwidth string, None when human-bandwidth refuses it.

    A port of human-bandwidth 0.2's `parse_bandwidth`: parts `NUMBER UNIT` summed
    (`"1Gbps 200Mbps"`, also without a space: `"1Gbps200Mbps"`); whitespace and `_`
    may appear anywhere in a number (`"1_000 kbps"`, `"12 Mbps"`); a decimal part
    is cut to the unit's precision (fractions of 1 bit/s are dropped).
    """
    try:
        return _parse_bandwidth(text)
    except _RateError:
        return None


def _parse_bandwidth(s: str) -> int:
    n = len(s)

    def first_digit(i: int) -> tuple[int | None, int]:
        while i < n and s[i].isspace():
            i += 1
        if i == n:
            return None, i
        if "0" <= s[i] <= "9":
            return ord(s[i]) - 48, i + 1
        raise _RateError("number expected")

    def unit_value(unit: str, num: int, frac: int, cnt: int) -> int:
        if unit not in _RATE_UNITS:
            raise _RateError(f"unknown unit {unit!r}")
        digits = _RATE_UNITS[unit]
        scaled = frac * 10 ** (digits - cnt) if digits >= cnt else frac // 10 ** (cnt - digits)
        return num * 10 ** digits + scaled

    d, i = first_digit(0)
    if d is None:
        raise _RateError("empty")
    total = 0
    while True:
        num, decimal, frac, cnt = d, False, 0, 0
        while i < n:  # the number
            c = s[i]
            if "0" <= c <= "9":
                if not decimal:
                    num = num * 10 + ord(c) - 48
                elif cnt < _RATE_FRACTION_DIGITS:
                    frac, cnt = frac * 10 + ord(c) - 48, cnt + 1
            elif c.isspace() or c == "_":
                pass
            elif c == ".":
                if decimal:
                    raise _RateError("second decimal point")
                decimal = True
            elif c.isascii() and (c.isalpha() or c == "/"):
                break
            else:
                raise _RateError(f"invalid character {c!r}")
            i += 1
        start = i
        j = min(i + 1, n)
        while j < n:  # the unit
            c = s[j]
            if "0" <= c <= "9":
                break
            if c.isspace():
                break
            if not (c.isascii() and (c.isalpha() or c == "/")):
                raise _RateError(f"invalid character {c!r}")
            j += 1
        total += unit_value(s[start:j], num, frac, cnt)
        if total >= 2**64 * 10**9:
            raise _RateError("too large")
        if j < n and "0" <= s[j] <= "9":  # the next part starts right after the unit
            d, i = ord(s[j]) - 48, j + 1
            continue
        d, i = first_digit(j)
        if d is None:
            return total


# jiff's friendly duration format (jiff/src/fmt/friendly/mod.rs), largest unit first
_JIFF_UNITS: tuple[tuple[str, tuple[str, ...], Fraction | None], ...] = (
    ("years", ("years", "year", "yrs", "yr", "y"), None),
    ("months", ("months", "month", "mos", "mo"), None),
    ("weeks", ("weeks", "week", "wks", "wk", "w"), None),
    ("days", ("days", "day", "d"), None),
    ("hours", ("hours", "hour", "hrs", "hr", "h"), Fraction(3600)),
    ("minutes", ("minutes", "minute", "mins", "min", "m"), Fraction(60)),
    ("seconds", ("seconds", "second", "secs", "sec", "s"), Fraction(1)),
    ("milliseconds", ("milliseconds", "millisecond", "millis", "milli", "msecs", "msec", "ms"),
     Fraction(1, 10**3)),
    ("microseconds", ("microseconds", "microsecond", "micros", "micro", "usecs", "usec", "\u00b5secs",
                      "\u00b5sec", "us", "\u00b5s"), Fraction(1, 10**6)),
    ("nanoseconds", ("nanoseconds", "nanosecond", "nanos", "nano", "nsecs", "nsec", "ns"), Fraction(1, 10**9)),
)
_JIFF_LABELS = sorted(((label, rank) for rank, (_, labels, _) in enumerate(_JIFF_UNITS) for label in labels),
                      key=lambda x: -len(x[0]))
_JIFF_HMS = re.compile(r"([0-9]+):([0-9]+):([0-9]+)(?:[.,]([0-9]{1,9}))?")
_JIFF_VALUE = re.compile(r"([0-9]+)(?:[.,]([0-9]{1,9}))?[ \t\n\f\r]*")  # SpanParser::parse_duration_units
_JIFF_WS = re.compile(r"[ \t\n\f\r]*")
_ISO_DURATION = re.compile(
    r"([+-]?)[Pp](?:([0-9]+)[Yy])?(?:([0-9]+)[Mm])?(?:([0-9]+)[Ww])?(?:([0-9]+)[Dd])?"
    r"(?:[Tt](?:([0-9]+)(?:[.,]([0-9]{1,9}))?[Hh])?(?:([0-9]+)(?:[.,]([0-9]{1,9}))?[Mm])?"
    r"(?:([0-9]+)(?:[.,]([0-9]{1,9}))?[Ss])?)?")


class TimeRefused(ValueError):
    """jiff parsed the text, but it is not a `std::time::Duration` (negative, or days and longer)."""


def parse_time_jiff(text: str) -> int | None:
    """Nanoseconds from a time in a cell, as upstream reads it: a jiff `Span` (ISO 8601 `PT0.05S`
    or the friendly format `50ms`, `1h 30m`, `01:02:03`) converted to a `Duration`.

    None when jiff refuses the text; raises TimeRefused when jiff reads it but the
    conversion to `Duration` fails (a negative span, or non-zero days, weeks,
    months or years, which jiff does not take as fixed lengths).
    """
    parts = _iso_span(text) if text[:1] in "Pp" or text[1:2] in ("P", "p") and text[:1] in "+-" \
        else _friendly_span(text)
    if parts is None:
        return None
    negative, calendar, seconds = parts
    if calendar:
        raise TimeRefused(f"{calendar} are not a fixed length of time")
    if negative and seconds:
        raise TimeRefused("a negative time")
    return math.floor(seconds * 10**9)


def _fraction(digits: str | None) -> Fraction:
    return Fraction(int(digits), 10 ** len(digits)) if digits else Fraction(0)


def _iso_span(text: str) -> tuple[bool, str, Fraction] | None:
    m = _ISO_DURATION.fullmatch(text)
    if not m or not any(m.group(i) for i in (2, 3, 4, 5, 6, 8, 10)):
        return None
    if "T" in text.upper() and not any(m.group(i) for i in (6, 8, 10)):
        return None  # `PT` needs a time unit
    fracs = [(m.group(7), (8, 10)), (m.group(9), (10,))]
    if any(f and any(m.group(i) for i in later) for f, later in fracs):
        return None  # only the smallest unit written may have a fraction
    calendar = [n for n, i in (("years", 2), ("months", 3), ("weeks", 4), ("days", 5))
                if m.group(i) and int(m.group(i))]
    secs = Fraction(0)
    for value, frac, scale in ((6, 7, 3600), (8, 9, 60), (10, 11, 1)):
        if m.group(value):
            secs += (int(m.group(value)) + _fraction(m.group(frac))) * scale
    return m.group(1) == "-", ", ".join(calendar), secs


_JIFF_AGO = re.compile(r"[ \t\n\f\r]*ago")


def _friendly_span(text: str) -> tuple[bool, str, Fraction] | None:
    pos, n = 0, len(text)
    signed = text[:1] in "+-"
    negative = text[:1] == "-"
    pos = 1 if signed else 0
    calendar: list[str] = []
    secs = Fraction(0)
    last_rank, units = -1, 0
    while pos < n:
        if units and not signed and _JIFF_AGO.fullmatch(text, pos):  # `1h ago`: a negative span
            negative, pos = True, n
            break
        hms = _JIFF_HMS.match(text, pos)
        if hms and last_rank < 4:  # HH:MM:SS[.f], alone or after days and larger units
            secs += int(hms.group(1)) * 3600 + int(hms.group(2)) * 60 + int(hms.group(3))
            secs += _fraction(hms.group(4))
            pos, units = hms.end(), units + 1
            break
        m = _JIFF_VALUE.match(text, pos)
        if not m:
            return None
        pos = m.end()
        label = next(((lab, rank) for lab, rank in _JIFF_LABELS if text.startswith(lab, pos)), None)
        if label is None:
            return None
        lab, rank = label
        pos += len(lab)
        if pos < n and text[pos].isascii() and text[pos].isalpha():
            return None  # `5mx`: not a unit jiff knows
        if rank <= last_rank or (m.group(2) and rank < 4):
            return None  # units largest first, each once; no fractional days or longer
        name, _, scale = _JIFF_UNITS[rank]
        value = int(m.group(1)) + _fraction(m.group(2))
        if scale is None:
            if value:
                calendar.append(name)
        else:
            secs += value * scale
        last_rank, units = rank, units + 1
        if text.startswith(",", pos):  # `comma = ',' ws`
            if not text[pos + 1:pos + 2].isspace():
                return None
            pos += 1
        if m.group(2):  # a fractional unit is the last one
            pos = n if not text[pos:] or (not signed and _JIFF_AGO.fullmatch(text, pos)) else pos
            negative = negative or (not signed and bool(_JIFF_AGO.fullmatch(text, m.end())))
            break
        ws = _JIFF_WS.match(text, pos).end()
        if ws == n and ws > pos:
            return None  # trailing whitespace is unparsed input
        pos = ws
    if pos < n or units == 0:
        return None
    return negative, ", ".join(calendar), secs


# humantime's units (netem-trace model files read their times with humantime)
_TIME_UNITS: dict[str, Fraction] = {n: secs for names, secs, _ in TIME_WORDS for n in names}

_SIZE_UNITS: dict[str, int] = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtp", start=1):
    _SIZE_UNITS[_p] = _SIZE_UNITS[_p + "b"] = 1000 ** _i
    _SIZE_UNITS[_p + "i"] = _SIZE_UNITS[_p + "ib"] = 1024 ** _i

_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([A-Za-z\u00b5\u03bc/]+)\s*,?")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*")


def _sum_parts(text: str, units: dict) -> Fraction | None:
    """`1s 500ms`: the sum of number-unit parts, in the table's unit."""
    pos, total, parts = 0, Fraction(0), 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or m.group(2) not in units:
            return None
        total += Fraction(m.group(1)) * units[m.group(2)]
        pos, parts = m.end(), parts + 1
    return total if parts else None


def parse_time(text: str) -> int | None:
    """Nanoseconds from a humantime string (`50ms`, `1s 500ms`), as netem-trace model files give them."""
    v = _sum_parts(text, _TIME_UNITS)
    return None if v is None else math.floor(v * 10**9)


def parse_cell_time(text: str) -> int | None:
    """Nanoseconds from a time in a cell (jiff); None also when jiff reads it but upstream refuses it."""
    try:
        return parse_time_jiff(text)
    except TimeRefused:
        return None


def parse_size(text: str) -> int | None:
    """Bytes from a bytesize string (`1500B`, `683.6 KiB`, `1MB`, `1500`), truncated like bytesize."""
    m = _SIZE.fullmatch(text)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        return None
    return math.floor(Fraction(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class _Kind:
    """A dimensioned value written as a string: how to parse it and how to show it."""
    name: str
    dim: Dim
    parse: Callable[[str], int | None]
    to_base: Fraction  # parse() unit -> the AST's base unit (bit/s, s, bit)
    example: str


RATE_KIND = _Kind("rate", RATE, parse_rate, Fraction(1), "12Mbps")
TIME_KIND = _Kind("time", TIME, parse_cell_time, Fraction(1, 10**9), "50ms")
SIZE_KIND = _Kind("size", SIZE, parse_size, Fraction(8), "1500B")


def _unit_hint(text: str, kind: _Kind) -> str | None:
    """Help for one `NUMBER UNIT` whose unit this kind refuses, from the `.rtn` unit readings: a spelling
    slip gets its fix (`"12Mbsp"` -> `"12Mbps"`), a byte rate its bit rate (`"10MBps"` -> `"80Mbps"`),
    an ambiguous unit its readings; never a value of another magnitude."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z\u00b5\u03bc/]+)\s*", text)
    if not m:
        return None
    advice = unit_advice(m.group(1), m.group(2), kind.dim)
    return advice.help('"') if advice.readings else None


# ---- mapping onto the AST -----------------------------------------------------
_KEYWORDS = {"let", "cell", "type", "channel", "endpoints", "import", "as", "at", "every", "for",
             "true", "false"}

# RattanConfig (rattan-core/src/config/mod.rs): every section is `serde(default)`,
# and no struct upstream deserializes a document into uses `deny_unknown_fields`,
# so an unknown key anywhere is ignored upstream (RTN075 here, a warning).
_SECTIONS = ("env", "http", "cells", "links", "resource", "general", "commands")
_RENAMED = {"devices": "cells", "cores": "cpu", "peakrate": "peak_rate", "minburst": "min_burst",
            "Trace": "trace", "Config": "config"}  # names older upstream releases and examples used
_SETTINGS_ORDER = ("env", "resource", "general", "http", "commands")
_SETTING_DEFAULTS = {  # upstream's defaults (StdNetEnvConfig, HttpConfig)
    "env": {"mode": "Compatible", "left_veth_count": 1, "right_veth_count": 1},
    "http": {"enable": False, "port": 8086},
}
VETH_COUNT_MAX = 254  # rattan-env/src/env.rs: `a` in 10.1.a.b is the veth pair id (1..=254)

_CELL_KEYS: dict[str, tuple[str, ...]] = {
    "Bw": ("bandwidth", "queue", "queue_config", "bw_type"),
    "BwReplay": ("trace", "queue", "queue_config", "bw_type"),
    "Delay": ("delay", "ingress_round_up"),
    "DelayReplay": ("trace", "ingress_round_up"),
    "DelayPerPacket": ("config", "trace"),
    "Loss": ("pattern",),
    "LossReplay": ("trace", "seed"),
    "TokenBucket": ("limit", "rate", "burst", "peak_rate", "min_burst"),
    "Router": ("egress_connections", "routing_table"),
    "Shadow": (),
    "Spy": ("path",),
    "Custom": (),
}

# Queue configs (rattan-core/src/cells/bandwidth/queue/*.rs): every field optional
# (`serde(default)`); `packet_limit`/`byte_limit` absent mean unlimited.
_LIMITS = ("packet_limit", "byte_limit", "bw_type")
_QUEUE_KEYS: dict[str, tuple[str, ...]] = {
    "Infinite": (),
    "DropTail": _LIMITS,
    "DropHead": _LIMITS,
    "CoDel": _LIMITS + ("interval", "target", "mtu"),
    "Red": _LIMITS + ("w_q", "min_th", "max_th", "max_p", "pkt_tx_time", "adaptive", "seed"),
    "Pie": _LIMITS + ("ref_del", "max_burst", "t_update", "seed"),
}
_QUEUE_TAGS = {"DropTail": "droptail", "DropHead": "drophead", "CoDel": "codel", "Red": "red", "Pie": "pie"}
_QUEUE_FIELDS = {"packet_limit": "packets", "byte_limit": "bytes", "target": "target", "interval": "interval",
                 "mtu": "mtu"}
# Red and Pie (red.rs, pie.rs): upstream key -> (`.rtn` parameter, how upstream writes it).
# RedQueueConfig and PieQueueConfig take plain numbers: thresholds in bytes, `ref_del` in
# seconds, `max_burst` in ms, `pkt_tx_time` in µs; PIE's `t_update` is a `Duration` without
# a serde adapter, `{ secs, nanos }`.
_AQM_FIELDS: dict[str, tuple[str, str]] = {
    "w_q": ("weight", "fraction"),
    "min_th": ("min", "bytes"),
    "max_th": ("max", "bytes"),
    "max_p": ("probability", "fraction"),
    "adaptive": ("adaptive", "bool"),
    "pkt_tx_time": ("packet_time", "microseconds"),
    "seed": ("seed", "integer"),
    "ref_del": ("target", "seconds"),
    "max_burst": ("max_burst", "milliseconds"),
    "t_update": ("tupdate", "duration"),
}
# RedQueueConfig::default() / PieQueueConfig::default() where `.rtn`'s default differs: written out
_AQM_DEFAULTS = {"Red": {"min_th": 7500, "max_th": 22500, "max_p": 0.02, "pkt_tx_time": 120.0, "seed": 42},
                 "Pie": {"seed": 42}}

_BW_TYPES = ("NetworkLayer", "LinkLayer")
LINK_LAYER_OVERHEAD = 38  # bytes: preamble+SFD 8, Ethernet header 14, FCS 4, interframe gap 12

_NETEM_TRACE_EXTENSIONS = (".json", ".toml")
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SHELLS = ("sh", "bash", "zsh", "fish", "dash", "ksh")  # programs that expand `$VAR` themselves
_SHELL_VAR = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_PER_PACKET_KINDS = ("trace", "config")  # DelayPerPacketCellBuildConfig, `rename_all = "snake_case"`
_PER_PACKET_HELP = ("the cell holds one of `trace` (a model file) or `config` (the model inline), "
                    "spelt in snake_case (`Trace` and `Config` are the names older upstream versions used)")


def identifier(raw: str) -> str:
    """An upstream id as a `.rtn` name: invalid characters become `_`, a leading digit or keyword gets `_`."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", raw)
    if not s or s[0].isdigit():
        s = "_" + s
    return s + "_" if s in _KEYWORDS else s


def channel_name(source: Source) -> str:
    """The file's stem as an identifier (`broadband.toml` -> `broadband`), else `main`."""
    stem = os.path.splitext(os.path.basename(source.path or source.name))[0]
    s = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_")
    if not s or s in _KEYWORDS:
        return "main"
    return "_" + s if s[0].isdigit() else s


def _plain(node: Node) -> Any:
    """A located value as the plain dicts, lists and scalars it holds."""
    if isinstance(node.value, dict):
        return {k: _plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v) for v in node.value]
    return node.value


def _describe(value: Any) -> str:
    """How a found value is named in a message."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f'"{value[:40]}{"..." if len(value) > 40 else ""}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    return f"a {type(value).__name__}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


_RTN_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")  # a `.rtn` number literal


def _number_text(node: Node) -> str:
    """The number as written when `.rtn` can write it so too, else Python's spelling."""
    text = (node.text or "").strip().replace("_", "")
    try:
        if _RTN_NUMBER.fullmatch(text) and float(Fraction(text)) == float(node.value):
            return text
    except (ValueError, ZeroDivisionError, OverflowError):
        pass
    return repr(node.value)


@dataclass
class _Link:
    """One directed edge: `src` (or `src[port]`) feeds `dst`."""
    src: str
    src_span: Span
    port: int | None
    dst: str
    dst_span: Span


@dataclass
class _Cell:
    """An upstream cell being mapped: its id, its node and its checked keys."""
    id: str
    kind: str
    name: str
    node: Node
    fields: dict[str, Node]
    type_span: Span


class _Mapper:
    """Maps the located tree onto `ast` nodes, reporting what does not fit."""

    def __init__(self, source: Source, sink: Sink, fmt: str = "toml") -> None:
        self.fmt = fmt
        self.source = source
        self.sid = source.id
        self.sink = sink
        self.names: dict[str, str] = {}        # upstream cell id -> `.rtn` name
        self.routers: dict[str, list] = {}  # id -> egress connection per port (None: unused)
        self.veths = {"left": 1, "right": 1}   # from [env]: how many endpoints on each side
        self.router_ids: set[str] = set()      # every cell of type Router, mapped or not
        self.linked: set[str] = set()          # every name a [links] line mentions
        self.skipped: set[str] = set()         # unlinked Custom cells, left out as upstream does

    # -- diagnostics and generic checks
    def section(self, name: str) -> str:
        """A top-level section as the document writes it: `[env]` in TOML, `env` in YAML."""
        return f"[{name}]" if self.fmt == "toml" else f"`{name}`"

    def error(self, code: str, message: str, span: Span, help: Iterable[str] | str = (),
              fix: str | None = None, labels: Iterable[Label] = ()) -> None:
        self.sink.emit(code, message, span, help=help, fix=fix, labels=labels)

    def wrong(self, node: Node, key: str, expected: str, help: Iterable[str] | str = ()) -> None:
        """RTN073: `key` holds something other than `expected`."""
        self.error("RTN073", f"`{key}` must be {expected}, found {_describe(node.value)}",
                   node.span, help=help)

    def table(self, node: Node | None, allowed: Iterable[str], where: str,
              help: str | None = None, refused: bool = False) -> dict[str, Node] | None:
        """The known entries of a table; None (and RTN073) if it is not a table.

        Upstream ignores keys it does not know (no struct it reads uses
        `deny_unknown_fields`): each is RTN075, a warning, and the table maps as
        upstream runs it. With `refused`, upstream refuses the table instead (a
        serde enum that takes exactly one key): RTN071, an error.
        """
        if node is None or node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.error("RTN073", f"{where} must be a table, found {_describe(node.value)}", node.span)
            return None
        allowed = tuple(allowed)
        for key, child in node.value.items():
            if key not in allowed:
                self.unknown_key(key, child, allowed, where, help, refused)
        return {k: v for k, v in node.value.items() if k in allowed}

    def unknown_key(self, key: str, child: Node, allowed: tuple[str, ...], where: str,
                    help: str | None, refused: bool = False) -> None:
        guess = _RENAMED.get(key) if _RENAMED.get(key) in allowed else did_you_mean(key, allowed)
        helps = [f"did you mean `{guess}`?"] if guess else (
            [f"{where} takes " + ", ".join(f"`{a}`" for a in allowed)] if allowed else
            [f"{where} takes no keys"])
        if help:
            helps.append(help)
        if refused:
            self.error("RTN071", f"unknown key `{key}` in {where}: upstream refuses it", child.key_span,
                       help=helps, fix=guess)
            return
        helps.append("upstream ignores this key, and so does this run")
        self.sink.emit("RTN075", f"unknown key `{key}` in {where} (upstream ignores it)", child.key_span,
                       help=helps, fix=guess)

    def warn(self, message: str, span: Span, help: Iterable[str] | str = (), code: str = "RTN076") -> None:
        """A warning: what upstream does with something that looks like it means more (or less)."""
        self.sink.emit(code, message, span, help=help)

    def present(self, fields: dict[str, Node], key: str) -> Node | None:
        """A key's node unless it is absent or explicitly empty (YAML `~`), like serde's Option."""
        node = fields.get(key)
        return None if node is None or node.value is None else node

    def missing(self, cell: _Cell, key: str, example: str, why: str = "") -> None:
        self.error("RTN014", f"{cell.kind} cell `{cell.id}` needs `{key}`", cell.node.key_span,
                   help=[f"add `{key} = {example}`", why])

    def field(self, name: str, key_node: Node, value: ast.Expr) -> ast.Field:
        return ast.Field(name, key_node.key_span, value, key_node.key_span.to(value.span))

    # -- values
    def quantity(self, node: Node, key: str, kind: _Kind) -> ast.Quantity | None:
        """A human string such as "20Mbps" as a Quantity in base units; RTN073 otherwise."""
        v = node.value
        expected = f'a {kind.name} like "{kind.example}"'
        if _is_number(v):
            unit = kind.example.lstrip("0123456789.")
            help = f'write "{v}{unit}" or another unit'
            if kind is RATE_KIND and _is_int(v) and v >= 1000:
                # a big bare number is bits per second (the base unit), not megabits
                shown = next(f"{v // f}{u}" for f, u in ((10**9, "Gbps"), (10**6, "Mbps"), (10**3, "Kbps"),
                                                          (1, "bps")) if v % f == 0)
                help = f'if it is bits per second, write "{shown}" (a string with a unit)'
            self.wrong(node, key, expected + " (a string with a unit)", help=help)
            return None
        if not isinstance(v, str):
            self.wrong(node, key, expected)
            return None
        if kind is TIME_KIND:
            try:
                parse_time_jiff(v)
            except TimeRefused as e:
                self.wrong(node, key, expected + f" (upstream reads times with jiff, and {e} for it)",
                           help='write it in hours or smaller units, such as "24h"')
                return None
        base = kind.parse(v)
        if base is None:
            hint = _unit_hint(v, kind)
            self.wrong(node, key, expected, help=hint or ())
            return None
        value = base * kind.to_base
        return ast.Quantity(value, kind.dim, format_quantity(value, kind.dim), node.span)

    def integer(self, node: Node, key: str, low: int = 0, high: int | None = None,
                bytes_: bool = False) -> ast.Number | None:
        """A whole number. With `bytes_` it is a byte count (upstream's `usize` limits): a size string
        such as "150KB", which serde refuses there, gets the number to write as help."""
        v = node.value
        if not _is_int(v) or v < low or (high is not None and v > high):
            rng = f"from {low} to {high}" if high is not None else f"of at least {low}"
            if isinstance(v, str) and v.strip().isdigit() and int(v) >= low and (high is None or int(v) <= high):
                self.error("RTN073", f"`{key}` must be a whole number, found the string {_describe(v)}",
                           node.span, fix=v.strip(), help=f"write `{key} = {v.strip()}`, without quotes")
                return None
            n = parse_size(v.strip()) if bytes_ and isinstance(v, str) else None
            if n is not None:
                self.error("RTN073", f"`{key}` must be a whole number of bytes, found {_describe(v)}",
                           node.span, fix=str(n),
                           help=f"write `{key} = {n}`: upstream reads `{key}` as a plain integer "
                                "(bytes), not a size string")
                return None
            self.wrong(node, key, f"a whole number {rng}")
            return None
        return ast.Number(Fraction(v), str(v), node.span)

    def probability(self, node: Node, key: str) -> ast.Number | None:
        v = node.value
        if not _is_number(v) or not 0 <= v <= 1:
            self.wrong(node, key, "a probability from 0 to 1")
            return None
        text = _number_text(node)
        return ast.Number(Fraction(text), text, node.span)

    def string(self, node: Node, key: str, what: str = "a string") -> str | None:
        if not isinstance(node.value, str):
            self.wrong(node, key, what)
            return None
        return node.value

    def symbol(self, node: Node, key: str, choices: Iterable[str]) -> str | None:
        """One of upstream's enum names (`"DropTail"`); RTN073 with the choices otherwise."""
        choices = tuple(choices)
        v = node.value
        if isinstance(v, str) and v in choices:
            return v
        guess = did_you_mean(v, choices) if isinstance(v, str) else None
        self.wrong(node, key, "one of " + ", ".join(f'"{c}"' for c in choices),
                   help=f'did you mean "{guess}"?' if guess else ())
        return None

    def string_list(self, node: Node, key: str) -> list[tuple[str, Node]] | None:
        if not isinstance(node.value, list) or not all(isinstance(i.value, str) for i in node.value):
            self.wrong(node, key, "a list of strings")
            return None
        return [(i.value, i) for i in node.value]

    def int_list(self, node: Node, key: str) -> list[int] | None:
        if not isinstance(node.value, list) or not all(_is_int(i.value) and i.value >= 0 for i in node.value):
            self.wrong(node, key, "a list of whole numbers")
            return None
        return [i.value for i in node.value]

    # -- the document
    def file(self, root: Node) -> ast.File:
        whole = Span(self.sid, 0, len(self.source.text))
        if not isinstance(root.value, dict):
            raise _Malformed("the document must be a table of sections ([env], [cells], [links], ...), "
                             f"found {_describe(root.value)}", root.span)
        sections = self.table(root, _SECTIONS, "the document") or {}
        links = sections.get("links")
        if links is not None and isinstance(links.value, dict):
            self.linked = {k for k in links.value} | {v.value for v in links.value.values()
                                                       if isinstance(v.value, str)}
        settings = self.settings(sections)
        ends = self.endpoints(sections.get("env"))
        body: list[ast.Stmt] = [ends]
        body += self.cells(sections.get("cells"))
        body += self.chains(sections.get("links"), {name for name, _ in ends.names})
        name = channel_name(self.source)
        channel = ast.Channel(name, Span(self.sid, 0, 0), tuple(body), whole)
        return ast.File(self.sid, (channel,), (), whole, settings=settings)

    # -- run settings
    def settings(self, sections: dict[str, Node]) -> tuple[tuple[str, object], ...]:
        """The run settings as plain JSON values, section by section in a fixed order.

        `env` and `http` always appear with upstream's defaults filled in, so two
        documents that mean the same run have the same settings; the other
        sections appear when they hold something.
        """
        readers = {"env": self.env, "resource": self.resource, "general": self.general,
                   "http": self.http, "commands": self.commands}
        out = []
        for key in _SETTINGS_ORDER:
            value = dict(_SETTING_DEFAULTS.get(key, {}))
            node = sections.get(key)
            if node is not None:
                value.update(readers[key](node) or {})
            if value or key in _SETTING_DEFAULTS:
                out.append((key, value))
        return tuple(out)

    def env(self, node: Node) -> dict | None:
        keys = ("mode", "left_veth_count", "right_veth_count", "left_external", "right_external",
                "client_cores", "server_cores")
        fields = self.table(node, keys, self.section("env"))
        if fields is None:
            return None
        out: dict[str, object] = {}
        for key, child in fields.items():
            if key == "mode":
                mode = self.symbol(child, key, ("Compatible", "Isolated", "Container"))
                if mode == "Container":
                    self.error("RTN074", "`mode = \"Container\"` is not supported (upstream does not "
                               "support it either)", child.span, help='use "Isolated" or "Compatible"')
                elif mode:
                    out[key] = mode
            elif key.endswith("_veth_count"):
                n = self.integer(child, key, 1, VETH_COUNT_MAX)
                if n is not None:
                    out[key] = int(n.value)
                    self.veths[key.split("_")[0]] = int(n.value)
            elif key.endswith("_external"):
                # `Option<NetDevice>`, whose only variant is `Veth`: an extra veth pair (index 0)
                # that upstream builds on that side and wires to no cell
                if child.value is not None:
                    device = self.symbol(child, key, ("Veth",))
                    if device:
                        out[key] = device
            else:
                cores = self.int_list(child, key)
                if cores is not None:
                    out[key] = cores
        return out

    def resource(self, node: Node) -> dict | None:
        # RattanResourceConfig: `memory` and `cpu`; `cores` (in upstream's example file) is
        # not a field, so upstream ignores it (RTN075, with "did you mean `cpu`")
        fields = self.table(node, ("cpu", "memory"), self.section("resource"))
        if fields is None:
            return None
        out: dict[str, object] = {}
        for key, child in fields.items():
            if child.value is None:
                continue
            if key == "memory":
                n = self.integer(child, key)
                if n is not None:
                    out[key] = int(n.value)
            else:
                cores = self.int_list(child, key)
                if cores is not None:
                    out["cpu"] = cores
        return out

    def general(self, node: Node) -> dict | None:
        fields = self.table(node, ("packet_log", "packet_log_mode"), self.section("general"))
        if fields is None:
            return None
        out: dict[str, object] = {}
        if (log := self.present(fields, "packet_log")) is not None:
            path = self.string(log, "packet_log", "a file path")
            if path is not None:
                out["packet_log"] = path
        if (mode := self.present(fields, "packet_log_mode")) is not None:
            m = self.symbol(mode, "packet_log_mode", ("CompactTCP", "RawIP", "RawTCP"))
            if m:
                out["packet_log_mode"] = m
        return out

    def http(self, node: Node) -> dict | None:
        fields = self.table(node, ("enable", "port"), self.section("http"))
        if fields is None:
            return None
        out: dict[str, object] = {}
        if (enable := fields.get("enable")) is not None:
            if isinstance(enable.value, bool):
                out["enable"] = enable.value
            else:
                self.wrong(enable, "enable", "`true` or `false`")
        if (port := fields.get("port")) is not None:
            n = self.integer(port, "port", 0, 65535)
            if n is not None:
                out["port"] = int(n.value)
        return out

    def commands(self, node: Node) -> dict | None:
        fields = self.table(node, ("left", "right", "shell"), self.section("commands"))
        if fields is None:
            return None
        out: dict[str, object] = {}
        for side in ("left", "right"):
            if (cmd := self.present(fields, side)) is not None:
                if isinstance(cmd.value, str):
                    self.command_string(cmd, side)
                    continue
                argv = self.string_list(cmd, side)
                if argv is not None:
                    out[side] = [a for a, _ in argv]
                    self.unexpanded_variables(side, argv)
        if (shell := self.present(fields, "shell")) is not None:
            s = self.symbol(shell, "shell", ("Default", "Sh", "Bash", "Zsh", "Fish"))
            if s:
                out["shell"] = s
        return out

    def unexpanded_variables(self, side: str, argv: list[tuple[str, Node]]) -> None:
        """`left = ["iperf3", "-c", "$RATTAN_BASE"]`: upstream hands the list to /usr/bin/env, so no
        shell replaces `$RATTAN_BASE` and the program gets the text itself (RTN076). A shell's own
        script (`["bash", "-c", "... $RATTAN_BASE"]`) is expanded by that shell."""
        if not argv or os.path.basename(argv[0][0]) in _SHELLS:
            return
        for arg, node in argv[1:]:
            m = _SHELL_VAR.search(arg)
            if m is None or any(c.isspace() for c in arg):  # a script (`perl -e '... $x'`) is its program's
                continue
            script = " ".join(a if not any(c.isspace() for c in a) else json.dumps(a) for a, _ in argv)
            fix = json.dumps(["sh", "-c", script])
            self.sink.emit("RTN076", f"`{m.group(0)}` reaches `{argv[0][0]}` as it is written: upstream runs "
                           "[commands] with /usr/bin/env, without a shell, so nothing replaces the variable",
                           node.span, fix=fix, help=[f"to expand it, write `{side} = {fix}`"])
            return

    def command_string(self, node: Node, side: str) -> None:
        """`left = "iperf3 -c $RATTAN_BASE"`: upstream's TaskCommands wants an argument list, which it
        hands to /usr/bin/env without a shell, so a variable or pipe needs `sh -c`."""
        text = node.value
        if any(c in text for c in "$|;&<>*?`'\"()~"):
            fix = json.dumps(["sh", "-c", text])
            why = "upstream runs the list with /usr/bin/env, without a shell, so `sh -c` expands the variables"
        else:
            fix = json.dumps(text.split())
            why = "upstream runs the list with /usr/bin/env, one string per argument"
        self.error("RTN073", f"`{side}` must be a list of strings (the command and its arguments), found "
                   f"{_describe(text)}", node.span, fix=fix, help=[f"write `{side} = {fix}`", why])

    # -- endpoints
    def endpoints(self, env: Node | None) -> ast.Endpoints:
        """`left`/`right`, or `left1`..`leftN` when a side has N > 1 veths, as upstream names them."""
        names = []
        env_fields = env.value if env is not None and isinstance(env.value, dict) else {}
        for side in ("left", "right"):
            key = env_fields.get(f"{side}_veth_count")
            span = key.span if key is not None else (env.key_span if env is not None else Span(self.sid, 0, 0))
            n = self.veths[side]
            names += [(side, span)] if n == 1 else [(f"{side}{i}", span) for i in range(1, n + 1)]
        span = env.span if env is not None else Span(self.sid, 0, 0)
        return ast.Endpoints(tuple(names), span)

    # -- cells
    def cells(self, node: Node | None) -> list[ast.CellDecl]:
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, dict):
            self.error("RTN073", f"`cells` must be a table of cells, found {_describe(node.value)}", node.span)
            return []
        taken: set[str] = set()
        # names first, so links and routers can refer to any cell; an id that is already a `.rtn` name
        # keeps it (`up_1` stays `up_1` when `up-1` is there too), so the control API's ids find it
        for cid in sorted(node.value, key=lambda c: identifier(c) != c):
            name = identifier(cid)
            while name in taken:
                name += "_"
            taken.add(name)
            self.names[cid] = name
        return [d for cid, cnode in node.value.items() if (d := self.cell(cid, cnode)) is not None]

    def cell(self, cid: str, node: Node) -> ast.CellDecl | None:
        where = f"cell `{cid}`"
        if not isinstance(node.value, dict):
            self.error("RTN073", f"{where} must be a table with a `type`, found {_describe(node.value)}",
                       node.span)
            return self.placeholder(cid, node)
        type_node = node.value.get("type")
        if type_node is None:
            self.error("RTN014", f"{where} needs a `type`", node.key_span,
                       help="one of " + ", ".join(f'"{t}"' for t in _CELL_TYPES if t != "Custom"))
            return self.placeholder(cid, node)
        kind = self.cell_type(type_node)
        if kind is None:
            return self.placeholder(cid, node)
        if kind == "Custom":
            return self.custom(cid, node, type_node)
        if kind == "Router":
            self.router_ids.add(cid)
        # DelayPerPacket's body is a serde enum (`trace` or `config`): upstream refuses any other key
        per_packet = kind == "DelayPerPacket"
        fields = self.table(node, ("type",) + _CELL_KEYS[kind], f"{kind} cell `{cid}`",
                            help=_PER_PACKET_HELP if per_packet else None, refused=per_packet) or {}
        cell = _Cell(cid, kind, self.names[cid], node, fields, type_node.span)
        mapped = _CELL_MAPPERS[kind](self, cell)
        if mapped is None:
            return self.placeholder(cid, node)
        rtn_type, params = mapped
        return self.decl(cell.name, node, rtn_type, cell.type_span, params)

    def cell_type(self, node: Node) -> str | None:
        v = node.value
        if isinstance(v, str) and v in _CELL_KEYS:
            return v
        if not isinstance(v, str):
            self.wrong(node, "type", "the name of a cell type")
            return None
        guess = did_you_mean(v, [t for t in _CELL_KEYS if t != "Custom"])
        self.error("RTN072", f"unknown cell type \"{v}\"", node.span,
                   help=f'did you mean "{guess}"?' if guess else
                   "the types are " + ", ".join(t for t in _CELL_KEYS if t != "Custom"),
                   fix=f'"{guess}"' if guess else None)
        return None

    def custom(self, cid: str, node: Node, type_node: Node) -> ast.CellDecl | None:
        """A `Custom` cell is built by a program that links rattan-core. `rattan run -c` skips one
        that no link names (RTN076) and fails on a link to it (RTN074)."""
        if cid in self.linked:
            self.error("RTN074", f"`Custom` cell `{cid}` is linked, but a document cannot describe it: "
                       "it is built by a program that links rattan-core", type_node.span,
                       help="describe the cell with one of the built-in types")
            return self.placeholder(cid, node)
        self.skipped.add(cid)
        self.warn(f"`Custom` cell `{cid}` is left out: upstream skips a Custom cell no link names",
                  type_node.span, help="remove it, or describe it with one of the built-in types")
        return None

    def decl(self, name: str, node: Node, rtn_type: str, type_span: Span,
             params: list[ast.Field]) -> ast.CellDecl:
        span = node.key_span.to(node.span)
        for p in params:
            span = span.to(p.span)
        return ast.CellDecl(name, node.key_span, ast.Name((rtn_type,), type_span), tuple(params), span)

    def placeholder(self, cid: str, node: Node) -> ast.CellDecl | None:
        """A cell that could not be mapped stays as `pass`, so links to it add no further errors."""
        if cid not in self.names:
            return None
        return self.decl(self.names[cid], node, "pass", node.key_span, [])

    # -- bandwidth
    # BwCellBuildConfig / BwReplayCellBuildConfig (rattan-core/src/config/bandwidth.rs) are
    # enums tagged by `queue`, so `queue` is required; BwCellConfig's `bandwidth` has no
    # serde default, so it is required too.
    def map_bw(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        extra = self.queue_and_overhead(cell)
        bandwidth = cell.fields.get("bandwidth")
        if bandwidth is None:
            self.missing(cell, "bandwidth", '"10Mbps"', "upstream refuses a Bw cell without it")
            return None
        if bandwidth.value is None:  # YAML `~`: `Option<Bandwidth>` None, an unlimited link
            return None if extra is None else ("pass", [])
        rate = self.quantity(bandwidth, "bandwidth", RATE_KIND)
        if rate is None or extra is None:
            return None
        return "bw", [self.field("rate", bandwidth, rate)] + extra

    def map_bw_replay(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        extra = self.queue_and_overhead(cell)
        trace = self.present(cell.fields, "trace")
        if trace is None:
            self.missing(cell, "trace", '"traces/link.up"')
            return None
        path = self.trace_path(trace)
        if path is None or extra is None:
            return None
        return "bw_trace", [path] + extra + self.loop_once(trace, path) + [self.first_packet(trace)]

    def queue_and_overhead(self, cell: _Cell) -> list[ast.Field] | None:
        """The `queue` and `overhead` fields that Bw and BwReplay share; None after an error."""
        queue, overhead = self.queue(cell), self.overhead(cell.fields)
        if queue is False or overhead is False:
            return None
        return [f for f in (queue, overhead) if f is not None]

    def overhead(self, fields: dict[str, Node]) -> ast.Field | None | bool:
        """`bw_type = "LinkLayer"` counts 38 more bytes per packet: `overhead = 38B`. False on error."""
        node = self.present(fields, "bw_type")
        if node is None:
            return None
        kind = self.symbol(node, "bw_type", _BW_TYPES)
        if kind is None:
            return False
        if kind == "NetworkLayer":
            return None
        return self.field("overhead", node, self.size_bytes(LINK_LAYER_OVERHEAD, node.span))

    def size_bytes(self, nbytes: int, span: Span) -> ast.Quantity:
        size = Fraction(nbytes * 8)
        return ast.Quantity(size, SIZE, format_quantity(size, SIZE), span)

    def queue(self, cell: _Cell) -> ast.Field | None | bool:
        """`queue` + `queue_config` as a queue record; None for `Infinite`; False on error."""
        qnode = self.present(cell.fields, "queue")
        cnode = self.present(cell.fields, "queue_config")
        if qnode is None:
            self.missing(cell, "queue", '"DropTail"', "upstream refuses the cell without it: `queue` "
                         "is the tag that picks the queue (Infinite, DropTail, DropHead, CoDel, Red, Pie)")
            return False
        kind = self.symbol(qnode, "queue", _QUEUE_KEYS)
        if kind is None:
            return False
        hint = 'set `queue = "DropTail"` to limit the queue' if kind == "Infinite" else None
        config = self.table(cnode, _QUEUE_KEYS[kind], f"the `queue_config` of {'an' if kind[0] in 'AEIOU' else 'a'} {kind} queue", hint)
        if config is None:
            return False
        fields = self.queue_fields(kind, config)
        if fields is None:
            return False
        span = qnode.span.to(cnode.span if cnode is not None else None)
        limited = any(f.name in ("packets", "bytes") for f in fields)
        if kind == "Infinite" or (kind in ("DropTail", "DropHead") and not limited):
            if kind == "Infinite":
                return None  # the default: nothing is ever dropped
            value: ast.Expr = ast.Name(("infinite",), qnode.span)  # no limit: nothing is ever dropped
        else:
            if not limited:  # CoDel, Red and Pie without limits are unbounded upstream
                fields.append(ast.Field("packets", qnode.key_span, ast.Name(("unlimited",), qnode.span),
                                        qnode.key_span))
            value = ast.Record(ast.Name((_QUEUE_TAGS[kind],), qnode.span), tuple(fields), span)
        return ast.Field("queue", qnode.key_span, value, qnode.key_span.to(span))

    def queue_fields(self, kind: str, config: dict[str, Node]) -> list[ast.Field] | None:
        fields: list[ast.Field] = []
        ok = True
        for key, default in _AQM_DEFAULTS.get(kind, {}).items():  # upstream's defaults, written out
            if self.present(config, key) is None:
                at = self.anchor_of(config)
                fields.append(self.aqm_field(key, Node(default, at, at)))
        for key, node in config.items():
            if node.value is None:
                continue
            value: Any = None
            if key in ("packet_limit", "byte_limit"):
                value = self.queue_limit(node, key)
                if value is not None:
                    fields.append(self.field(_QUEUE_FIELDS[key], node, value))
            elif key in ("target", "interval"):
                value = self.quantity(node, key, TIME_KIND)
                if value is not None:
                    fields.append(self.field(key, node, value))
            elif key == "mtu":  # CoDel's minimal backlog in bytes (a u32)
                n = self.integer(node, key, 0, 2**32 - 1)
                value = None if n is None else self.size_bytes(int(n.value), node.span)
                if value is not None:
                    fields.append(self.field("mtu", node, value))
            elif key in _AQM_FIELDS:
                value = self.aqm_field(key, node)
                if value is not None:
                    fields.append(value)
            else:  # bw_type: how the queue counts bytes against its limits
                value = self.symbol(node, key, _BW_TYPES)
                if value == "LinkLayer":
                    fields.append(self.field("overhead", node, self.size_bytes(LINK_LAYER_OVERHEAD, node.span)))
            ok = ok and value is not None
        return fields if ok else None

    def anchor_of(self, config: dict[str, Node]) -> Span:
        return next(iter(config.values())).key_span if config else Span(self.sid, 0, 0)

    def aqm_field(self, key: str, node: Node) -> ast.Field | None:
        """One RedQueueConfig / PieQueueConfig field as its `.rtn` parameter."""
        name, form = _AQM_FIELDS[key]
        v = node.value
        if form == "bool":
            if not isinstance(v, bool):
                self.wrong(node, key, "`true` or `false`")
                return None
            return self.field(name, node, ast.Bool(v, node.span))
        if form == "integer":
            n = self.integer(node, key, 0, 2**64 - 1)
            return None if n is None else self.field(name, node, n)
        if form == "duration":  # a std Duration without a serde adapter: { secs, nanos }
            ns = self.serde_duration(node, key)
            if ns is None:
                return None
            secs = Fraction(ns, 10**9)
            return self.field(name, node, ast.Quantity(secs, TIME, format_quantity(secs, TIME), node.span))
        if not _is_number(v) or v < 0 or (form == "bytes" and not _is_int(v)):
            what = "a whole number of bytes" if form == "bytes" else f"a number ({form})"
            self.wrong(node, key, what)
            return None
        value = Fraction(_number_text(node)) if node.text is not None else Fraction(v)
        if form == "bytes":
            return self.field(name, node, self.size_bytes(int(v), node.span))
        if form in ("seconds", "milliseconds", "microseconds"):
            secs = value / {"seconds": 1, "milliseconds": 1000, "microseconds": 10**6}[form]
            return self.field(name, node, ast.Quantity(secs, TIME, format_quantity(secs, TIME), node.span))
        if v > 1:
            self.wrong(node, key, "a number from 0 to 1")
            return None
        return self.field(name, node, ast.Number(value, _number_text(node) if node.text else str(v), node.span))

    def serde_duration(self, node: Node, key: str) -> int | None:
        """ns from serde's form of a `std::time::Duration`: `{ secs = 0, nanos = 15000000 }`."""
        v = node.value
        if isinstance(v, dict) and set(v) <= {"secs", "nanos"} and "secs" in v and "nanos" in v:
            secs, nanos = v["secs"].value, v["nanos"].value
            if _is_int(secs) and _is_int(nanos) and secs >= 0 and 0 <= nanos < 10**9:
                return secs * 10**9 + nanos
        self.wrong(node, key, "a duration as serde writes it, `{ secs = 0, nanos = 15000000 }`")
        return None

    def queue_limit(self, node: Node, key: str) -> ast.Expr | None:
        """A limit; 0 is a queue that holds nothing (a packet passes only when the link is idle)."""
        n = self.integer(node, key, bytes_=key == "byte_limit")
        if n is None or key == "packet_limit":
            return n
        return self.size_bytes(int(n.value), node.span)  # byte_limit is a byte count

    # -- traces
    def trace_path(self, node: Node, model_only: str | None = None) -> ast.Field | None:
        """A trace path, with `${VAR}` replaced from the environment as upstream does for traces.

        With `model_only` (the cell type), the file must be a netem-trace model: upstream's
        DelayReplay and LossReplay read `.json`/`.toml` only and refuse any other file
        (config/delay.rs, config/loss.rs `get_trace`: "Unknown trace file format")."""
        path = self.path(node, "trace")
        if path is None:
            return None
        expanded = _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), ""), path.value.value)
        if model_only and os.path.splitext(expanded)[1] not in _NETEM_TRACE_EXTENSIONS:
            self.error("RTN051", f"a {model_only} trace must be a netem-trace model in a .json or .toml "
                       f"file, not `{expanded}`", node.span,
                       help=["upstream refuses any other file (\"Unknown trace file format\"); only "
                             "BwReplay also reads Mahimahi traces"])
            return None
        self.check_relative(node, expanded)
        return self.field("trace", node, ast.String(expanded, node.span))

    def check_relative(self, node: Node, path: str) -> None:
        """A relative path: Rattan reads it from the document's folder, upstream from the working
        directory. Say so when the two are not the same file (RTN076)."""
        if os.path.isabs(path) or not self.source.path:
            return
        ours = os.path.join(os.path.dirname(os.path.abspath(self.source.path)), path)
        theirs = os.path.abspath(path)
        if os.path.abspath(ours) == theirs:
            return
        same = os.path.exists(theirs) and os.path.exists(ours) and os.path.samefile(ours, theirs)
        if same:
            return
        helps = ["upstream resolves relative paths against the working directory; "
                 "Rattan against the document's folder, so the file runs the same from anywhere"]
        fix = None
        if not os.path.exists(theirs):
            where = f"upstream would read `{theirs}`, which does not exist"
            helps.append("give an absolute path to mean one file in both")
        else:
            where = f"upstream would read `{theirs}`, another file"
            if not os.path.exists(ours):
                where = f"upstream reads `{theirs}`, which exists"
                # the file the user meant is upstream's: name it from the document's folder
                mine = os.path.relpath(theirs, os.path.dirname(os.path.abspath(self.source.path)))
                fix = f'"{mine}"'
                helps.append(f"to read the file upstream reads, write {fix} (from the document's "
                             "folder) or its absolute path")
            else:
                helps.append("give an absolute path to mean one file in both")
        self.sink.emit("RTN076", f"relative path `{path}` is read from the document's folder (`{ours}`); "
                       f"{where}", node.span, help=helps, fix=fix)

    def check_relative_output(self, node: Node, path: str) -> None:
        """A relative path Rattan writes (a Spy's pcap): in the document's folder here, in the working
        directory upstream. Say so when they are not the same place (RTN076)."""
        if os.path.isabs(path) or not self.source.path:
            return
        ours = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(self.source.path)), path))
        theirs = os.path.abspath(path)
        if ours == theirs:
            return
        self.warn(f"relative path `{path}` is written in the document's folder (`{ours}`); upstream writes "
                  f"`{theirs}`", node.span,
                  help=["upstream resolves relative paths against the working directory; Rattan against "
                        "the document's folder, so the file runs the same from anywhere",
                        "give an absolute path to mean one file in both"])

    def first_packet(self, node: Node) -> ast.Field:
        """Upstream's replay cells (default feature `first-packet`) start their trace at the first packet."""
        return ast.Field("start", node.key_span, ast.Name(("first_packet",), node.key_span), node.key_span)

    def path(self, node: Node, name: str) -> ast.Field | None:
        if not isinstance(node.value, str) or not node.value:
            self.wrong(node, name, "a file path")
            return None
        return self.field(name, node, ast.String(node.value, node.span))

    def loop_once(self, node: Node, path: ast.Field) -> list[ast.Field]:
        """A netem-trace model (JSON/TOML) says itself how often it repeats: Rattan must not loop it."""
        if os.path.splitext(path.value.value)[1].lower() not in _NETEM_TRACE_EXTENSIONS:
            return []
        return [ast.Field("loop", node.key_span, ast.Bool(False, node.span), node.key_span)]

    def round_up(self, cell: _Cell) -> list[ast.Field] | None:
        """`ingress_round_up` (DelayCellConfig / DelayReplayCellConfig, `duration::option`): each
        packet's arrival is rounded up to a multiple of it before the delay, to mimic Mahimahi's
        1 ms opportunities: `round_up`. [] when absent, None after an error."""
        node = self.present(cell.fields, "ingress_round_up")
        if node is None:
            return []
        value = self.quantity(node, "ingress_round_up", TIME_KIND)
        return None if value is None else [self.field("round_up", node, value)]

    def map_delay_replay(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        round_up = self.round_up(cell)
        trace = self.present(cell.fields, "trace")
        if trace is None:
            self.missing(cell, "trace", '"traces/delay.json"')
            return None
        path = self.trace_path(trace, "DelayReplay")
        if path is None or round_up is None:
            return None
        return "delay_trace", [path] + self.loop_once(trace, path) + [self.first_packet(trace)] + round_up

    def map_loss_replay(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        trace = self.present(cell.fields, "trace")
        seed = self.present(cell.fields, "seed")
        if seed is not None and self.integer(seed, "seed") is None:
            return None
        if trace is None:
            self.missing(cell, "trace", '"traces/loss.json"')
            return None
        path = self.trace_path(trace, "LossReplay")
        return None if path is None else ("loss_trace", [path] + self.loop_once(trace, path)
                                          + [self.first_packet(trace)])

    # -- delay
    def map_delay(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        f = cell.fields
        round_up = self.round_up(cell)
        delay = self.present(f, "delay")
        if delay is None:
            self.missing(cell, "delay", '"20ms"')
            return None
        value = self.quantity(delay, "delay", TIME_KIND)
        if value is None or round_up is None:
            return None
        return "delay", [self.field("delay", delay, value)] + round_up

    # DelayPerPacketCellBuildConfig (rattan-core/src/config/per_packet.rs) is an enum with
    # `rename_all = "snake_case"`: the cell holds exactly one of `trace` (a model file,
    # .json or .toml) or `config` (a DelayPerPacketCellConfig, whose `delay` is a
    # netem-trace DelayPerPacketTraceConfig model tagged by its name).
    def map_delay_per_packet(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        f = cell.fields
        trace, config = self.present(f, "trace"), self.present(f, "config")
        if trace is not None and config is not None:
            self.error("RTN073", "give either `trace` or `config`, not both", trace.key_span,
                       help="upstream refuses a DelayPerPacket cell with both")
            return None
        refused = set(cell.node.value) - {"type", *_PER_PACKET_KINDS}
        if trace is None and config is None:
            if refused:  # already an error (RTN071): upstream reports only the unknown variant
                return None
            self.missing(cell, "config", '{ delay = { StaticDelayPerPacketConfig = { delay = "10ms" } } }',
                         'or `trace = "delays.json"`, a model file')
            return None
        if trace is not None:
            model = self.model_file(trace)
            at = trace
        else:
            body = self.table(config, ("delay",), "`config` of a DelayPerPacket cell")
            if body is None:
                return None
            node = self.present(body, "delay")
            if node is None:
                self.missing(cell, "config.delay", '{ StaticDelayPerPacketConfig = { delay = "10ms" } }')
                return None
            model, at = _plain(node), node
        if model is None:
            return None
        return self.per_packet(model, at)

    def model_file(self, node: Node) -> Any:
        """The model in a `trace` file (read with netem_trace.read_model_file); None after a diagnostic."""
        path = self.path(node, "trace")
        if path is None:
            return None
        name = path.value.value
        ext = os.path.splitext(name)[1].lower()
        if ext not in _NETEM_TRACE_EXTENSIONS:
            self.error("RTN051", f"a per-packet delay trace must be a .json or .toml model, not `{name}`",
                       node.span, help="upstream refuses other files (\"Unknown trace file format\")")
            return None
        self.check_relative(node, name)
        full = name if os.path.isabs(name) or not self.source.path else \
            os.path.join(os.path.dirname(os.path.abspath(self.source.path)), name)
        if not os.path.exists(full):
            self.error("RTN050", f"per-packet delay trace `{name}` not found", node.span,
                       help=f"looked for `{full}`")
            return None
        try:
            from .netem_trace import ModelError, read_model_file
        except ImportError:
            self.error("RTN074", "per-packet delay models are not available in this build", node.span)
            return None
        try:
            return read_model_file(full)
        except ModelError as e:
            self.error("RTN051", f"per-packet delay trace `{name}`: {e}", node.span)
            return None

    def per_packet(self, model: Any, at: Node) -> tuple[str, list[ast.Field]] | None:
        """A DelayPerPacketTraceConfig model as `delay_per_packet { model, repeat }`."""
        try:
            from .netem_trace import ModelError, per_packet_model
        except ImportError:  # a netem_trace.py without per-packet models (before h-models' branch)
            self.error("RTN074", "per-packet delay models are not available in this build", at.span)
            return None
        notes: list[str] = []
        try:
            segments, repeat = per_packet_model(model, warnings=notes)
        except ModelError as e:
            self.error("RTN051", f"per-packet delay model: {e}", at.span)
            return None
        for note in notes:  # keys netem-trace ignores
            self.sink.emit("RTN075", f"per-packet delay model: {note}", at.key_span,
                           help="upstream ignores this key, and so does this run")
        span = at.span
        records = [self.segment_record(seg, span) for seg in segments]
        return "delay_per_packet", [
            ast.Field("model", at.key_span, ast.List(tuple(records), span), at.key_span.to(span)),
            ast.Field("repeat", at.key_span, ast.Number(Fraction(repeat), str(repeat), span), at.key_span)]

    def segment_record(self, seg: dict, span: Span) -> ast.Record:
        """One segment as `static { delay, count }` or `normal|lognormal { mean, ..., count, seed }`."""
        def time(name: str, ns: int) -> ast.Field:
            secs = Fraction(ns, 10**9)
            return ast.Field(name, span, ast.Quantity(secs, TIME, format_quantity(secs, TIME), span), span)

        def number(name: str, n: int) -> ast.Field:
            return ast.Field(name, span, ast.Number(Fraction(n), str(n), span), span)
        kind = seg["kind"]
        if kind == "static":
            fields = [time("delay", seg["delay"])]
        else:
            fields = [time("mean", seg["mean"]), time("std_dev", seg.get("std_dev") or 0),
                      time("lower_bound", seg.get("lower_bound") or 0)]
            if seg.get("upper_bound") is not None:
                fields.append(time("upper_bound", seg["upper_bound"]))
        fields.append(number("count", int(seg.get("count") or 0)))
        if kind != "static" and seg.get("seed") is not None:  # each segment keeps its own seed upstream
            fields.append(number("seed", int(seg["seed"])))
        return ast.Record(ast.Name((kind,), span), tuple(fields), span)

    # -- loss
    def map_loss(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        node = self.present(cell.fields, "pattern")
        if node is None:
            self.missing(cell, "pattern", "[0.01]")
            return None
        if not isinstance(node.value, list):
            self.wrong(node, "pattern", "a list of probabilities, such as [0.01]")
            return None
        items = [self.loss_probability(i, "pattern") for i in node.value]
        if any(i is None for i in items):
            return None
        if len(items) <= 1:  # one entry is independent (Bernoulli) loss; none is no loss
            rate = items[0] if items else ast.Number(Fraction(0), "0", node.span)
            return "loss", [self.field("rate", node, rate)]
        return "loss", [self.field("pattern", node, ast.List(tuple(items), node.span))]

    def loss_probability(self, node: Node, key: str) -> ast.Number | None:
        """A probability; upstream's loss cell drops when a uniform draw in [0, 1) is below it, so
        above 1 always drops and at or below 0 never does: clamped, with RTN076."""
        v = node.value
        if not _is_number(v):
            self.wrong(node, key, "a probability from 0 to 1")
            return None
        if 0 <= v <= 1:
            text = _number_text(node)
            return ast.Number(Fraction(text), text, node.span)
        clamped = 1 if v > 1 else 0
        self.warn(f"loss probability {v} is {'above 1' if v > 1 else 'below 0'}: upstream "
                  f"{'drops every packet' if v > 1 else 'never drops'} there, so this is {clamped}",
                  node.span, help=f"write {clamped}")
        return ast.Number(Fraction(clamped), str(clamped), node.span)

    # -- token bucket
    # TokenBucketCellConfig (rattan-core/src/cells/token_bucket): every field optional. A bucket
    # exists only when both of its values are given (`rate` + `burst`, `peak_rate` + `min_burst`);
    # a lone value is ignored, and with no bucket every packet passes. `limit` (bytes) absent is
    # an unbounded queue.
    def map_token_bucket(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        f = cell.fields
        values: dict[str, ast.Quantity] = {}
        for key, kind in (("rate", RATE_KIND), ("burst", SIZE_KIND), ("peak_rate", RATE_KIND),
                          ("min_burst", SIZE_KIND)):
            node = self.present(f, key)
            if node is not None:
                q = self.quantity(node, key, kind)
                if q is None:
                    return None
                values[key] = q
        buckets = []
        for a, b, what in (("rate", "burst", "the token bucket"), ("peak_rate", "min_burst", "the peak bucket")):
            if (a in values) != (b in values):
                lone, other = (a, b) if a in values else (b, a)
                self.warn(f"`{lone}` without `{other}`: upstream builds no {what[4:]} and ignores `{lone}`",
                          f[lone].key_span, help=f"add `{other}`, or remove `{lone}`")
            elif a in values:
                buckets.append((a, b))
        limit = self.token_bucket_limit(cell)
        if limit is None:
            return None
        if not buckets:
            self.warn(f"TokenBucket cell `{cell.id}` has no bucket (`rate` with `burst`, or `peak_rate` with "
                      "`min_burst`): upstream passes every packet through it, and so does this run "
                      "(the cell is `pass`)",
                      cell.node.key_span, help='add `rate = "10Mbps"` and `burst = "16KiB"` to shape')
            return "pass", []
        if buckets == [("peak_rate", "min_burst")]:  # only the peak bucket: it is the bucket
            params = [self.field("rate", f["peak_rate"], values["peak_rate"]),
                      self.field("burst", f["min_burst"], values["min_burst"])]
        else:
            params = [self.field(k, f[k], values[k]) for pair in buckets for k in pair]
        return "token_bucket", params + [limit]

    def token_bucket_limit(self, cell: _Cell) -> ast.Field | None:
        """`limit` is a byte count; absent means an unbounded shaping queue upstream."""
        node = self.present(cell.fields, "limit")
        if node is None:
            span = cell.node.key_span
            return ast.Field("limit", span, ast.Name(("unlimited",), span), span)
        n = self.integer(node, "limit", bytes_=True)
        if n is None:
            return None
        return self.field("limit", node, self.size_bytes(int(n.value), node.span))

    # -- router, shadow, spy
    # RouterCellConfig (rattan-core/src/cells/router): `egress_connections` are the outputs, by
    # index; `routing_table` entries are `{ prefix, interface_id }`, without `interface_id` a drop
    # route; the longest matching prefix wins (SimpleRoutingTable::match_ip); two entries with the
    # same (truncated) prefix are refused; only IPv4 packets are routed, the rest dropped.
    def map_router(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        f = cell.fields
        conns_node, table = self.present(f, "egress_connections"), self.present(f, "routing_table")
        if conns_node is None or table is None:
            self.missing(cell, "egress_connections" if conns_node is None else "routing_table",
                         '["left1", "left2"]' if conns_node is None else '[{ prefix = "10.0.0.0/8", '
                         'interface_id = 0 }]')
            return None
        conns = self.string_list(conns_node, "egress_connections")
        if conns is None:
            return None
        if not isinstance(table.value, list):
            self.wrong(table, "routing_table", "a list of routes")
            return None
        # a bad entry is an error (upstream refuses the table); the router is still built from the
        # others, so its egress links stay and no graph warning follows from the error
        seen: dict[Any, Node] = {}
        items = []
        for entry in table.value:
            route = self.route(entry, len(conns))
            if route is None:
                continue
            network, rec = route
            if network in seen:
                self.error("RTN073", f"two routes for the prefix {network}", entry.span,
                           labels=[Label(seen[network].span, "first route for it")],
                           help="upstream refuses a routing table with a duplicate prefix (DuplicateEntry)")
                continue
            seen[network] = entry
            items.append(rec)
        items = tuple(items)
        used = {int(r.fields[1].value.value) for r in items if len(r.fields) > 1}
        # an egress connection no route leads to never carries a packet; Rattan's
        # router has no output for it, so it gets no link
        self.routers[cell.id] = [(dst, node) if i in used else None for i, (dst, node) in enumerate(conns)]
        span = cell.node.key_span
        return "router", [self.field("routes", table, ast.List(items, table.span)),
                          ast.Field("only_ipv4", span, ast.Bool(True, span), span)]  # default = drop

    def route(self, entry: Node, ports: int) -> tuple[Any, ast.Record] | None:
        """One routing entry as (its network, `route { prefix[, port] }`); no `port`: a drop route."""
        fields = self.table(entry, ("prefix", "interface_id"), "a routing entry")
        if fields is None:
            return None
        prefix = self.present(fields, "prefix")
        if prefix is None:
            self.error("RTN014", "a routing entry needs a `prefix`", entry.span,
                       help='add `prefix = "10.0.0.0/8"`')
            return None
        network = self.network(prefix)
        if network is None:
            return None
        rec = [ast.Field("prefix", prefix.key_span, ast.String(str(network), prefix.span),
                         prefix.key_span.to(prefix.span))]
        iid = self.present(fields, "interface_id")
        if iid is not None:
            port = None
            if _is_int(iid.value) and 0 <= iid.value < ports:
                port = self.integer(iid, "interface_id", 0, ports - 1)
            elif ports == 0:
                self.wrong(iid, "interface_id", "an index into `egress_connections`, which is empty")
            else:
                last = f"{ports - 1}: it has {ports} entries" if ports > 1 else "0: it has one entry"
                self.wrong(iid, "interface_id", f"an index into `egress_connections` (0 to {last}, "
                           "counted from 0)")
            if port is None:
                return None
            rec.append(self.field("port", iid, port))
        return network, ast.Record(ast.Name(("route",), entry.span), tuple(rec), entry.span)

    def network(self, node: Node) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        v = node.value
        try:
            if isinstance(v, str) and "/" in v:
                return ipaddress.ip_network(v, strict=False)
        except ValueError:
            pass
        try:  # a bare address: upstream's IpNet needs the length too
            addr = ipaddress.ip_address(v) if isinstance(v, str) else None
        except ValueError:
            addr = None
        if addr is not None:
            fix = f'"{v}/{addr.max_prefixlen}"'
            self.error("RTN073", f"`prefix` must be an address prefix like \"10.0.0.0/8\", found {_describe(v)}",
                       node.span, fix=fix, help=f"did you mean {fix}? upstream's prefix needs its length "
                                                "(IpNet), even for one address")
            return None
        self.wrong(node, "prefix", 'an address prefix like "10.0.0.0/8"')
        return None

    def map_shadow(self, cell: _Cell) -> tuple[str, list[ast.Field]]:
        return "pass", []

    def map_spy(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        node = self.present(cell.fields, "path")
        if node is None:
            self.missing(cell, "path", '"capture.pcap"')
            return None
        path = self.path(node, "path")
        if path is not None:
            self.check_relative_output(node, path.value.value)
        return None if path is None else ("spy", [path])

    # -- links and chains
    def chains(self, node: Node | None, endpoints: set[str]) -> list[ast.Chain]:
        """[links] and the routers' egress connections (`router[i] -> dst`) as maximal chains."""
        links = self.links(node, endpoints)
        for rid, conns in self.routers.items():
            for port, conn in enumerate(conns):
                if conn is not None:
                    dst, item = conn
                    links.append(_Link(self.rtn_name(rid), item.span, port, self.rtn_name(dst), item.span))
        return build_chains(links, endpoints, {self.rtn_name(rid) for rid in self.routers})

    def rtn_name(self, upstream: str) -> str:
        return self.names.get(upstream) or identifier(upstream)

    def veth_name(self, name: str, node: Node, span: Span, endpoints: set[str]) -> str:
        """A link end named `left`/`right` when that side has several veths (upstream names them
        `left1`, `left2`, ...), or `left1` when it has one (then it is `left`): upstream's
        spawn_rattan refuses the unknown id. RTN040 naming the veths, recovered as the first one."""
        if name in endpoints or name in self.names:
            return name
        m = re.fullmatch(r"(left|right)(\d*)", name)
        if m is None:
            return name
        side = m.group(1)
        veths = sorted((e for e in endpoints if re.fullmatch(side + r"\d*", e)), key=lambda e: (len(e), e))
        if not veths:
            return name
        count = len(veths)
        if count == 1:
            why = f"with one {side} veth upstream names it `{veths[0]}`"
        else:
            why = (f"with `{side}_veth_count = {count}` upstream names the {side} veths "
                   + ", ".join(f"`{v}`" for v in veths))
        written = self.source.text[span.start:span.end]  # a value's span holds its quotes: keep them
        quote = written[0] if len(written) >= 2 and written[0] == written[-1] and written[0] in "\"'" else ""
        self.error("RTN040", f"unknown cell or endpoint `{name}`: {why}", span,
                   help=f"did you mean `{veths[0]}`?", fix=quote + veths[0] + quote)
        return veths[0]

    def links(self, node: Node | None, endpoints: set[str] = frozenset()) -> list[_Link]:
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, dict):
            self.error("RTN073", f"`links` must be a table of `src = \"dst\"` pairs, found "
                       f"{_describe(node.value)}", node.span)
            return []
        out = []
        for src, dst in node.value.items():
            if not isinstance(dst.value, str):
                self.wrong(dst, src, "the name of a cell or endpoint")
                continue
            if src in self.routers or src in self.router_ids:
                self.warn(f"`{src} = \"{dst.value}\"`: a Router's outputs are its `egress_connections`; "
                          "upstream accepts this link and never sends a packet along it, and neither does "
                          "this run", dst.key_span, help=f"remove `{src} = \"{dst.value}\"` from [links]")
                continue
            if src in self.skipped or dst.value in self.skipped:
                continue
            src_name = self.veth_name(src, dst, dst.key_span, endpoints)
            dst_name = self.veth_name(dst.value, dst, dst.span, endpoints)
            out.append(_Link(self.rtn_name(src_name), dst.key_span, None, self.rtn_name(dst_name), dst.span))
        return out


_CELL_TYPES = tuple(_CELL_KEYS)
_CELL_MAPPERS: dict[str, Callable[[_Mapper, _Cell], Any]] = {
    "Bw": _Mapper.map_bw,
    "BwReplay": _Mapper.map_bw_replay,
    "Delay": _Mapper.map_delay,
    "DelayReplay": _Mapper.map_delay_replay,
    "DelayPerPacket": _Mapper.map_delay_per_packet,
    "Loss": _Mapper.map_loss,
    "LossReplay": _Mapper.map_loss_replay,
    "TokenBucket": _Mapper.map_token_bucket,
    "Router": _Mapper.map_router,
    "Shadow": _Mapper.map_shadow,
    "Spy": _Mapper.map_spy,
}


def build_chains(links: list[_Link], endpoints: set[str], routers: set[str]) -> list[ast.Chain]:
    """Maximal chains: a chain runs on through each cell that has exactly one way in and one out.

    Endpoints and routers (whose outputs are ports) always end a chain, and a cell
    fed by several links starts its own; what remains (a cycle of such cells) is
    cut at its first link in the text, so every link appears in exactly one chain.
    """
    out_of = {l.src: l for l in links if l.port is None}
    fan_in = Counter(l.dst for l in links)

    def through(name: str) -> bool:
        return fan_in[name] == 1 and name in out_of and name not in routers and name not in endpoints

    ordered = sorted(links, key=lambda l: (l.src_span.start, l.port or 0))
    starts = [l for l in ordered if l.port is not None or not through(l.src)]
    used: set[int] = set()
    chains = []
    for first in starts + ordered:  # `ordered` last: only cycles are left by then
        if id(first) in used:
            continue
        elems = [ast.Ref(ast.Name((first.src,), first.src_span), first.port, first.src_span)]
        link = first
        while True:
            used.add(id(link))
            elems.append(ast.Ref(ast.Name((link.dst,), link.dst_span), None, link.dst_span))
            nxt = out_of.get(link.dst)
            if nxt is None or id(nxt) in used or not through(link.dst):
                break
            link = nxt
        span = elems[0].span
        for e in elems[1:]:
            span = span.to(e.span)
        chains.append(ast.Chain(tuple(elems), span, (False,) * (len(elems) - 1)))
    return chains

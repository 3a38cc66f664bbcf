"""Read the upstream Rattan configuration format (TOML or YAML) into the `.rtn` AST.

Upstream Rattan (github.com/stack-rs/rattan) describes a path as `[env]`,
`[cells.<id>]` tables tagged by `type`, `[links]` (`src = "dst"`) and run
settings (`[http]`, `[general]`, `[resource]`, `[commands]`). This module maps
such a document onto the AST the `.rtn` parser builds: one channel named after
the file, its endpoints, one `cell` per upstream cell (mapped onto the built-in
cell types) and maximal chains rebuilt from the links. Every node carries a span
into the TOML/YAML text, so later diagnostics land on the user's line.

Unlike upstream, unknown keys are errors (RTN071, with "did you mean"). Nothing
here raises: every problem becomes a diagnostic. docs/upstream-format.md gives
the mapping field by field and what is not supported.
"""
from __future__ import annotations

import ipaddress
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

from ..diagnostics import Sink, did_you_mean
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
        return _Mapper(source, sink).file(root)
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
# The units upstream's parsers accept: human-bandwidth for rates, humantime/jiff
# for times, bytesize for sizes (case-insensitive, a bare number is bytes).
# human-bandwidth is case-sensitive but takes either case of each prefix (`kbps`, `Kbps`; `mbps`,
# `Mbps`: lowercase m is mega, not milli), always in bits; byte rates (`MBps`) it refuses.
_RATE_UNITS: dict[str, int] = {}
for _prefix, _scale in (("", 1), ("k", 10**3), ("K", 10**3), ("m", 10**6), ("M", 10**6), ("g", 10**9),
                        ("G", 10**9), ("t", 10**12), ("T", 10**12)):
    for _form in ("bps", "bit/s", "b/s"):
        _RATE_UNITS[_prefix + _form] = _scale

_TIME_UNITS: dict[str, Fraction] = {n: secs for names, secs, _ in TIME_WORDS for n in names}

_SIZE_UNITS: dict[str, int] = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtp", start=1):
    _SIZE_UNITS[_p] = _SIZE_UNITS[_p + "b"] = 1000 ** _i
    _SIZE_UNITS[_p + "i"] = _SIZE_UNITS[_p + "ib"] = 1024 ** _i

_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([A-Za-z\u00b5\u03bc/]+)\s*,?")
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*")


def _sum_parts(text: str, units: dict) -> Fraction | None:
    """`1Gbps 200Mbps` or `1s 500ms`: the sum of number-unit parts, in the table's unit."""
    pos, total, parts = 0, Fraction(0), 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or m.group(2) not in units:
            return None
        total += Fraction(m.group(1)) * units[m.group(2)]
        pos, parts = m.end(), parts + 1
    return total if parts else None


def parse_rate(text: str) -> int | None:
    """bit/s from a human-bandwidth string (`12Mbps`, `1Gbps 200Mbps`), fractions of 1 bps dropped."""
    v = _sum_parts(text, _RATE_UNITS)
    return None if v is None else math.floor(v)


def parse_time(text: str) -> int | None:
    """Nanoseconds from a humantime/jiff string (`50ms`, `1.5s`, `1s 500ms`)."""
    v = _sum_parts(text, _TIME_UNITS)
    return None if v is None else math.floor(v * 10**9)


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
TIME_KIND = _Kind("time", TIME, parse_time, Fraction(1, 10**9), "50ms")
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

_SECTIONS = ("env", "http", "cells", "links", "resource", "general", "commands")
_RENAMED = {"devices": "cells"}  # older upstream releases called cells devices
_SETTINGS_ORDER = ("env", "resource", "general", "http", "commands")
_SETTING_DEFAULTS = {  # upstream's defaults (StdNetEnvConfig, HttpConfig)
    "env": {"mode": "Compatible", "left_veth_count": 1, "right_veth_count": 1},
    "http": {"enable": False, "port": 8086},
}

_CELL_KEYS: dict[str, tuple[str, ...]] = {
    "Bw": ("bandwidth", "queue", "queue_config", "bw_type"),
    "BwReplay": ("trace", "queue", "queue_config", "bw_type"),
    "Delay": ("delay", "ingress_round_up"),
    "DelayReplay": ("trace",),
    "DelayPerPacket": ("Config", "Trace"),
    "Loss": ("pattern",),
    "LossReplay": ("trace", "seed"),
    "TokenBucket": ("limit", "rate", "burst", "peakrate", "minburst"),
    "Router": ("egress_connections", "routing_table"),
    "Shadow": (),
    "Spy": ("path",),
    "Custom": (),
}

_QUEUE_KEYS: dict[str, tuple[str, ...]] = {
    "Infinite": (),
    "DropTail": ("packet_limit", "byte_limit", "bw_type"),
    "DropHead": ("packet_limit", "byte_limit", "bw_type"),
    "CoDel": ("packet_limit", "byte_limit", "interval", "target", "mtu", "bw_type"),
}
_QUEUE_TAGS = {"DropTail": "droptail", "DropHead": "drophead", "CoDel": "codel"}
_QUEUE_FIELDS = {"packet_limit": "packets", "byte_limit": "bytes", "target": "target", "interval": "interval"}

_BW_TYPES = ("NetworkLayer", "LinkLayer")
LINK_LAYER_OVERHEAD = 38  # bytes: preamble+SFD 8, Ethernet header 14, FCS 4, interframe gap 12

# Upstream's token bucket queue is unbounded when `limit` is absent; Rattan's
# `limit` is a byte count (0 = police), so "unbounded" becomes this many bytes.
UNBOUNDED_QUEUE_BYTES = 2**30

_NETEM_TRACE_EXTENSIONS = (".json", ".toml")
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

_DELAY_MODELS = ("StaticDelayPerPacketConfig", "NormalizedDelayPerPacketConfig",
                 "LogNormalizedDelayPerPacketConfig", "RepeatedDelayPerPacketPatternConfig")


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

    def __init__(self, source: Source, sink: Sink) -> None:
        self.source = source
        self.sid = source.id
        self.sink = sink
        self.names: dict[str, str] = {}        # upstream cell id -> `.rtn` name
        self.routers: dict[str, list] = {}  # id -> egress connection per port (None: unused)
        self.veths = {"left": 1, "right": 1}   # from [env]: how many endpoints on each side

    # -- diagnostics and generic checks
    def error(self, code: str, message: str, span: Span, help: Iterable[str] | str = (),
              fix: str | None = None) -> None:
        self.sink.emit(code, message, span, help=help, fix=fix)

    def wrong(self, node: Node, key: str, expected: str, help: Iterable[str] | str = ()) -> None:
        """RTN073: `key` holds something other than `expected`."""
        self.error("RTN073", f"`{key}` must be {expected}, found {_describe(node.value)}",
                   node.span, help=help)

    def table(self, node: Node | None, allowed: Iterable[str], where: str,
              help: str | None = None) -> dict[str, Node] | None:
        """The entries of a table, with RTN071 on each unknown key; None (and RTN073) if not a table."""
        if node is None or node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.error("RTN073", f"{where} must be a table, found {_describe(node.value)}", node.span)
            return None
        allowed = tuple(allowed)
        for key, child in node.value.items():
            if key not in allowed:
                self.unknown_key(key, child, allowed, where, help)
        return {k: v for k, v in node.value.items() if k in allowed}

    def unknown_key(self, key: str, child: Node, allowed: tuple[str, ...], where: str,
                    help: str | None) -> None:
        guess = _RENAMED.get(key) if _RENAMED.get(key) in allowed else did_you_mean(key, allowed)
        helps = [f"did you mean `{guess}`?"] if guess else (
            [f"{where} takes " + ", ".join(f"`{a}`" for a in allowed)] if allowed else
            [f"{where} takes no keys"])
        if help:
            helps.append(help)
        self.error("RTN071", f"unknown key `{key}` in {where}", child.key_span, help=helps, fix=guess)

    def present(self, fields: dict[str, Node], key: str) -> Node | None:
        """A key's node unless it is absent or explicitly empty (YAML `~`), like serde's Option."""
        node = fields.get(key)
        return None if node is None or node.value is None else node

    def missing(self, cell: _Cell, key: str, example: str) -> None:
        self.error("RTN014", f"{cell.kind} cell `{cell.id}` needs `{key}`", cell.node.key_span,
                   help=f"add `{key} = {example}`")

    def field(self, name: str, key_node: Node, value: ast.Expr) -> ast.Field:
        return ast.Field(name, key_node.key_span, value, key_node.key_span.to(value.span))

    # -- values
    def quantity(self, node: Node, key: str, kind: _Kind) -> ast.Quantity | None:
        """A human string such as "20Mbps" as a Quantity in base units; RTN073 otherwise."""
        v = node.value
        expected = f'a {kind.name} like "{kind.example}"'
        if _is_number(v):
            unit = kind.example.lstrip("0123456789.")
            self.wrong(node, key, expected + " (a string with a unit)",
                       help=f'write "{v}{unit}" or another unit')
            return None
        if not isinstance(v, str):
            self.wrong(node, key, expected)
            return None
        base = kind.parse(v)
        if base is None:
            hint = _unit_hint(v, kind)
            self.wrong(node, key, expected, help=hint or ())
            return None
        value = base * kind.to_base
        return ast.Quantity(value, kind.dim, format_quantity(value, kind.dim), node.span)

    def integer(self, node: Node, key: str, low: int = 0, high: int | None = None) -> ast.Number | None:
        v = node.value
        if not _is_int(v) or v < low or (high is not None and v > high):
            rng = f"from {low} to {high}" if high is not None else f"of at least {low}"
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
        fields = self.table(node, keys, "[env]")
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
                n = self.integer(child, key, 1, 255)
                if n is not None:
                    out[key] = int(n.value)
                    self.veths[key.split("_")[0]] = int(n.value)
            elif key.endswith("_external"):
                if child.value is not None:
                    self.error("RTN074", f"`{key}` (an external device on that side) is not supported",
                               child.key_span, help=f"remove `{key}`")
            else:
                cores = self.int_list(child, key)
                if cores is not None:
                    out[key] = cores
        return out

    def resource(self, node: Node) -> dict | None:
        fields = self.table(node, ("cpu", "memory", "cores"), "[resource]")
        if fields is None:
            return None
        out: dict[str, object] = {}
        for key, child in fields.items():
            if key == "memory":
                n = self.integer(child, key)
                if n is not None:
                    out[key] = int(n.value)
            else:
                cores = self.int_list(child, key)
                # `cores` is what upstream's example file and guide call `cpu`; `cpu` wins
                if cores is not None and (key == "cpu" or "cpu" not in fields):
                    out["cpu"] = cores
        return out

    def general(self, node: Node) -> dict | None:
        fields = self.table(node, ("packet_log", "packet_log_mode"), "[general]")
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
        fields = self.table(node, ("enable", "port"), "[http]")
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
        fields = self.table(node, ("left", "right", "shell"), "[commands]")
        if fields is None:
            return None
        out: dict[str, object] = {}
        for side in ("left", "right"):
            if (cmd := self.present(fields, side)) is not None:
                argv = self.string_list(cmd, side)
                if argv is not None:
                    out[side] = [a for a, _ in argv]
        if (shell := self.present(fields, "shell")) is not None:
            s = self.symbol(shell, "shell", ("Default", "Sh", "Bash", "Zsh", "Fish"))
            if s:
                out["shell"] = s
        return out

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
        for cid in node.value:  # names first, so links and routers can refer to any cell
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
        fields = self.table(node, ("type",) + _CELL_KEYS[kind], f"{kind} cell `{cid}`") or {}
        cell = _Cell(cid, kind, self.names[cid], node, fields, type_node.span)
        mapped = _CELL_MAPPERS[kind](self, cell)
        if mapped is None:
            return self.placeholder(cid, node)
        rtn_type, params = mapped
        return self.decl(cell.name, node, rtn_type, cell.type_span, params)

    def cell_type(self, node: Node) -> str | None:
        v = node.value
        if isinstance(v, str) and v in _CELL_KEYS:
            if v == "Custom":
                self.error("RTN074", "`Custom` cells (built by a program linking rattan-core) "
                           "cannot be described in a document", node.span,
                           help="describe the cell with one of the built-in types")
                return None
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
    def map_bw(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        extra = self.queue_and_overhead(cell)
        bandwidth = self.present(cell.fields, "bandwidth")
        if bandwidth is None:  # unlimited upstream: the cell forwards every packet at once
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
        return "bw_trace", [path] + extra + self.loop_once(trace, path)

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
        size = Fraction(LINK_LAYER_OVERHEAD * 8)
        return self.field("overhead", node, ast.Quantity(size, SIZE, format_quantity(size, SIZE), node.span))

    def queue(self, cell: _Cell) -> ast.Field | None | bool:
        """`queue` + `queue_config` as a queue record; None for the default; False on error."""
        qnode = self.present(cell.fields, "queue")
        cnode = self.present(cell.fields, "queue_config")
        kind = "Infinite"
        if qnode is not None:
            kind = self.symbol(qnode, "queue", _QUEUE_KEYS)
            if kind is None:  # still report unknown keys in queue_config
                self.table(cnode, sorted({k for keys in _QUEUE_KEYS.values() for k in keys}), "`queue_config`")
                return False
        hint = 'set `queue = "DropTail"` to limit the queue' if kind == "Infinite" else None
        config = self.table(cnode, _QUEUE_KEYS[kind], f"the `queue_config` of a {kind} queue", hint)
        if config is None:
            return False
        fields = self.queue_fields(kind, config)
        if fields is None:
            return False
        if qnode is None and not config:
            return None
        anchor = qnode or cnode
        span = anchor.span.to(cnode.span if cnode is not None else None)
        limited = any(f.name in ("packets", "bytes") for f in fields)
        if kind == "Infinite" or (kind in ("DropTail", "DropHead") and not limited):
            value: ast.Expr = ast.Name(("infinite",), anchor.span)  # no limit: nothing is ever dropped
        else:
            value = ast.Record(ast.Name((_QUEUE_TAGS[kind],), anchor.span), tuple(fields), span)
        return ast.Field("queue", anchor.key_span, value, anchor.key_span.to(span))

    def queue_fields(self, kind: str, config: dict[str, Node]) -> list[ast.Field] | None:
        fields: list[ast.Field] = []
        ok = True
        for key, node in config.items():
            if node.value is None:
                continue
            if key in ("packet_limit", "byte_limit"):
                value = self.queue_limit(node, key)
                if value is not None:
                    fields.append(self.field(_QUEUE_FIELDS[key], node, value))
            elif key in ("target", "interval"):
                value = self.quantity(node, key, TIME_KIND)
                if value is not None:
                    fields.append(self.field(key, node, value))
            elif key == "mtu":
                value = self.integer(node, key, 1)
                if value is not None and value.value != 1500:
                    self.error("RTN074", "a CoDel `mtu` other than 1500 is not supported", node.span,
                               help="remove `mtu`; Rattan's CoDel uses 1500 bytes")
                    ok = False
            else:  # bw_type: how the queue counts bytes
                value = self.symbol(node, key, _BW_TYPES)
                if value == "LinkLayer" and "byte_limit" in config:
                    self.error("RTN074", "a `byte_limit` counted in link-layer bytes is not supported",
                               node.span, help="remove `bw_type`: Rattan's queues count IP bytes")
                    ok = False
            ok = ok and value is not None
        return fields if ok else None

    def queue_limit(self, node: Node, key: str) -> ast.Expr | None:
        n = self.integer(node, key)
        if n is not None and n.value == 0:
            self.error("RTN074", f"a zero `{key}` (a queue that holds nothing) is not supported",
                       node.span, help="give a limit of at least 1")
            return None
        if n is None or key == "packet_limit":
            return n
        size = n.value * 8  # byte_limit is a byte count
        return ast.Quantity(size, SIZE, format_quantity(size, SIZE), node.span)

    # -- traces
    def trace_path(self, node: Node) -> ast.Field | None:
        """A trace path, with `${VAR}` replaced from the environment as upstream does for traces."""
        path = self.path(node, "trace")
        if path is None:
            return None
        expanded = _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), ""), path.value.value)
        return self.field("trace", node, ast.String(expanded, node.span))

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

    def map_delay_replay(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        trace = self.present(cell.fields, "trace")
        if trace is None:
            self.missing(cell, "trace", '"traces/delay.json"')
            return None
        path = self.trace_path(trace)
        return None if path is None else ("delay_trace", [path] + self.loop_once(trace, path))

    def map_loss_replay(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        trace = self.present(cell.fields, "trace")
        seed = self.present(cell.fields, "seed")
        if seed is not None and self.integer(seed, "seed") is None:
            return None
        if trace is None:
            self.missing(cell, "trace", '"traces/loss.json"')
            return None
        path = self.trace_path(trace)
        return None if path is None else ("loss_trace", [path] + self.loop_once(trace, path))

    # -- delay
    def map_delay(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        f = cell.fields
        if (round_up := self.present(f, "ingress_round_up")) is not None:
            self.error("RTN074", "`ingress_round_up` (rounding arrival times up) is not supported",
                       round_up.key_span, help="remove `ingress_round_up`")
            return None
        delay = self.present(f, "delay")
        if delay is None:
            self.missing(cell, "delay", '"20ms"')
            return None
        value = self.quantity(delay, "delay", TIME_KIND)
        return None if value is None else ("delay", [self.field("delay", delay, value)])

    def map_delay_per_packet(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        f = cell.fields
        trace, config = self.present(f, "Trace"), self.present(f, "Config")
        if trace is not None and config is not None:
            self.error("RTN073", "give either `Trace` or `Config`, not both", trace.key_span)
            return None
        if trace is not None:
            self.error("RTN074", "per-packet delay traces (`Trace`) are not supported", trace.key_span,
                       help="describe the delay inline with `Config`, e.g. a NormalizedDelayPerPacketConfig")
            return None
        if config is None:
            self.missing(cell, "Config", '{ delay = { StaticDelayPerPacketConfig = { delay = "10ms" } } }')
            return None
        body = self.table(config, ("delay",), "`Config` of a DelayPerPacket cell")
        model = self.present(body or {}, "delay")
        if body is None or model is None:
            if body is not None:
                self.missing(cell, "Config.delay", '{ StaticDelayPerPacketConfig = { delay = "10ms" } }')
            return None
        return self.delay_model(model)

    def delay_model(self, node: Node) -> tuple[str, list[ast.Field]] | None:
        """The typetag-tagged model `{ ModelName = { ... } }` of a DelayPerPacket cell."""
        if not isinstance(node.value, dict) or len(node.value) != 1:
            self.wrong(node, "delay", "a table with one model, such as "
                       '`{ NormalizedDelayPerPacketConfig = { mean = "10ms", std_dev = "2ms" } }`')
            return None
        (name, body), = node.value.items()
        if name == "StaticDelayPerPacketConfig":
            return self.static_delay(body)
        if name == "NormalizedDelayPerPacketConfig":
            return self.normal_delay(body)
        if name in _DELAY_MODELS:
            self.error("RTN074", f"the per-packet delay model `{name}` is not supported", body.key_span,
                       help="use StaticDelayPerPacketConfig or NormalizedDelayPerPacketConfig")
            return None
        self.unknown_key(name, body, _DELAY_MODELS, "the per-packet delay models", None)
        return None

    def static_delay(self, body: Node) -> tuple[str, list[ast.Field]] | None:
        fields = self.table(body, ("delay", "count"), "StaticDelayPerPacketConfig")
        if fields is None or not self.forever(fields):
            return None
        delay = self.present(fields, "delay")
        if delay is None:  # netem-trace's default
            return "delay", [self.default_time("delay", body, Fraction(1, 100))]
        value = self.quantity(delay, "delay", TIME_KIND)
        return None if value is None else ("delay", [self.field("delay", delay, value)])

    def normal_delay(self, body: Node) -> tuple[str, list[ast.Field]] | None:
        """N(mean, std_dev) clamped at 0 and reordering: Rattan's `delay` with a normal jitter."""
        keys = ("mean", "std_dev", "upper_bound", "lower_bound", "count", "seed")
        fields = self.table(body, keys, "NormalizedDelayPerPacketConfig")
        if fields is None or not self.forever(fields):
            return None
        if (upper := self.present(fields, "upper_bound")) is not None:
            self.error("RTN074", "an `upper_bound` on a normal per-packet delay is not supported",
                       upper.key_span, help="remove `upper_bound`")
            return None
        lower = self.present(fields, "lower_bound")
        if lower is not None:
            low = self.quantity(lower, "lower_bound", TIME_KIND)
            if low is None:
                return None
            if low.value != 0:
                self.error("RTN074", "a `lower_bound` above 0 on a normal per-packet delay is not "
                           "supported", lower.span, help="remove `lower_bound` (delays never go below 0)")
                return None
        if (seed := self.present(fields, "seed")) is not None and self.integer(seed, "seed") is None:
            return None
        params = []
        for key, name in (("mean", "delay"), ("std_dev", "jitter")):
            node = self.present(fields, key)
            if node is None:
                if key == "mean":  # netem-trace's default mean; std_dev defaults to 0
                    params.append(self.default_time("delay", body, Fraction(1, 100)))
                continue
            value = self.quantity(node, key, TIME_KIND)
            if value is None:
                return None
            params.append(self.field(name, node, value))
        params.append(ast.Field("distribution", body.key_span, ast.Name(("normal",), body.key_span),
                                body.key_span))
        # upstream keeps per-packet delays in a queue ordered by departure time
        params.append(ast.Field("reorder", body.key_span, ast.Bool(True, body.key_span), body.key_span))
        return "delay", params

    def forever(self, fields: dict[str, Node]) -> bool:
        """A per-packet model must run forever (`count = 0`): upstream drops packets after it ends."""
        count = self.present(fields, "count")
        if count is None:
            return True
        n = self.integer(count, "count")
        if n is not None and n.value != 0:
            self.error("RTN074", "a per-packet delay model that ends after `count` packets is not supported",
                       count.span, help="remove `count` (0: forever)")
            return False
        return n is not None

    def default_time(self, name: str, at: Node, seconds: Fraction) -> ast.Field:
        q = ast.Quantity(seconds, TIME, format_quantity(seconds, TIME), at.key_span)
        return ast.Field(name, at.key_span, q, at.key_span)

    # -- loss
    def map_loss(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        node = self.present(cell.fields, "pattern")
        if node is None:
            self.missing(cell, "pattern", "[0.01]")
            return None
        if not isinstance(node.value, list):
            self.wrong(node, "pattern", "a list of probabilities, such as [0.01]")
            return None
        items = [self.probability(i, "pattern") for i in node.value]
        if any(i is None for i in items):
            return None
        if len(items) <= 1:  # one entry is independent (Bernoulli) loss; none is no loss
            rate = items[0] if items else ast.Number(Fraction(0), "0", node.span)
            return "loss", [self.field("rate", node, rate)]
        return "loss", [self.field("pattern", node, ast.List(tuple(items), node.span))]

    # -- token bucket
    def map_token_bucket(self, cell: _Cell) -> tuple[str, list[ast.Field]] | None:
        f = cell.fields
        rate, burst = self.present(f, "rate"), self.present(f, "burst")
        peak, minburst = self.present(f, "peakrate"), self.present(f, "minburst")
        if (rate is None) != (burst is None) or (peak is None) != (minburst is None):
            lone = rate or burst if (rate is None) != (burst is None) else peak or minburst
            self.error("RTN073", "`rate` and `burst`, and `peakrate` and `minburst`, go together",
                       lone.key_span)
            return None
        if rate is None:
            self.missing(cell, "rate", '"10Mbps"` and `burst = "16KiB"')
            return None
        params = []
        for key, name, kind in (("rate", "rate", RATE_KIND), ("burst", "burst", SIZE_KIND),
                                ("peakrate", "peak_rate", RATE_KIND), ("minburst", "min_burst", SIZE_KIND)):
            node = self.present(f, key)
            if node is None:
                continue
            value = self.quantity(node, key, kind)
            if value is None:
                return None
            params.append(self.field(name, node, value))
        limit = self.token_bucket_limit(cell)
        return None if limit is None else ("token_bucket", params + [limit])

    def token_bucket_limit(self, cell: _Cell) -> ast.Field | None:
        """`limit` is a byte count; absent means an unbounded shaping queue upstream."""
        node = self.present(cell.fields, "limit")
        if node is None:
            size = Fraction(UNBOUNDED_QUEUE_BYTES * 8)
            q = ast.Quantity(size, SIZE, format_quantity(size, SIZE), cell.node.key_span)
            return ast.Field("limit", cell.node.key_span, q, cell.node.key_span)
        n = self.integer(node, "limit")
        if n is None:
            return None
        size = n.value * 8
        return self.field("limit", node, ast.Quantity(size, SIZE, format_quantity(size, SIZE), node.span))

    # -- router, shadow, spy
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
        routes = [self.route(entry, len(conns)) for entry in table.value]
        if any(r is False for r in routes):
            return None
        items = tuple(r for r in routes if r is not None)
        used = {int(r.fields[1].value.value) for r in items}
        # an egress connection no route leads to never carries a packet; Rattan's
        # router has no output for it, so it gets no link
        self.routers[cell.id] = [(dst, node) if i in used else None for i, (dst, node) in enumerate(conns)]
        return "router", [self.field("routes", table, ast.List(items, table.span))]

    def route(self, entry: Node, ports: int) -> ast.Record | None | bool:
        """One routing entry as `route { prefix, port }`; None for a catch-all drop; False on error."""
        fields = self.table(entry, ("prefix", "interface_id"), "a routing entry")
        if fields is None:
            return False
        prefix = self.present(fields, "prefix")
        if prefix is None:
            self.error("RTN014", "a routing entry needs a `prefix`", entry.span,
                       help='add `prefix = "10.0.0.0/8"`')
            return False
        network = self.network(prefix)
        if network is None:
            return False
        iid = self.present(fields, "interface_id")
        if iid is None:  # no interface: drop what matches
            if network.prefixlen == 0:
                return None  # the same as Rattan's `default = drop`
            self.error("RTN074", "a route that drops its prefix is not supported", prefix.span,
                       help="give it an `interface_id`, or leave the prefix out")
            return False
        port = self.integer(iid, "interface_id", 0, ports - 1) if ports else None
        if port is None:
            if ports == 0:
                self.wrong(iid, "interface_id", "an index into `egress_connections`, which is empty")
            return False
        rec = (ast.Field("prefix", prefix.key_span, ast.String(prefix.value, prefix.span),
                         prefix.key_span.to(prefix.span)),
               self.field("port", iid, port))
        return ast.Record(ast.Name(("route",), entry.span), rec, entry.span)

    def network(self, node: Node) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        v = node.value
        try:
            if isinstance(v, str) and "/" in v:
                return ipaddress.ip_network(v, strict=False)
        except ValueError:
            pass
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
        return None if path is None else ("spy", [path])

    # -- links and chains
    def chains(self, node: Node | None, endpoints: set[str]) -> list[ast.Chain]:
        """[links] and the routers' egress connections (`router[i] -> dst`) as maximal chains."""
        links = self.links(node)
        for rid, conns in self.routers.items():
            for port, conn in enumerate(conns):
                if conn is not None:
                    dst, item = conn
                    links.append(_Link(self.rtn_name(rid), item.span, port, self.rtn_name(dst), item.span))
        return build_chains(links, endpoints, {self.rtn_name(rid) for rid in self.routers})

    def rtn_name(self, upstream: str) -> str:
        return self.names.get(upstream) or identifier(upstream)

    def links(self, node: Node | None) -> list[_Link]:
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
            if src in self.routers:
                self.error("RTN074", "a Router's outputs are its `egress_connections`, not a link",
                           dst.key_span, help=f"remove `{src} = \"{dst.value}\"` from [links]")
                continue
            out.append(_Link(self.rtn_name(src), dst.key_span, None, self.rtn_name(dst.value), dst.span))
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

"""Units as types: dimensions, the suffix table, and exact quantities in base units.

A dimension is a pair of exponents over (bit, second): time is s, size is bit
(shown in bytes), rate is bit/s. Magnitudes are exact fractions of those base
units, so `rtt / 2` and `10Mbps * 20ms` are computed without rounding; the plan
converts them to integers (ns, bit/s, bytes) at the end.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

Dim = tuple[int, int]  # (bit exponent, second exponent)

NUMBER: Dim = (0, 0)
TIME: Dim = (0, 1)
SIZE: Dim = (1, 0)
RATE: Dim = (1, -1)

DIM_NAMES: dict[Dim, str] = {NUMBER: "number", TIME: "time", SIZE: "size", RATE: "rate"}
NAMED_DIMS: dict[str, Dim] = {"time": TIME, "size": SIZE, "rate": RATE}


def dim_name(d: Dim) -> str:
    """A human name for a dimension ("time", "rate", or "bit^2/s")."""
    if d in DIM_NAMES:
        return DIM_NAMES[d]
    b, s = d
    num = "bit" + (f"^{b}" if b not in (0, 1) else "") if b > 0 else ""
    den = []
    if b < 0:
        den.append("bit" + (f"^{-b}" if b != -1 else ""))
    if s < 0:
        den.append("s" + (f"^{-s}" if s != -1 else ""))
    if s > 0:
        num = (num + "·" if num else "") + "s" + (f"^{s}" if s != 1 else "")
    return (num or "1") + ("/" + "·".join(den) if den else "")


# suffix -> (dimension, scale to base units)
UNITS: dict[str, tuple[Dim, Fraction]] = {
    "ns": (TIME, Fraction(1, 10**9)),
    "us": (TIME, Fraction(1, 10**6)),
    "ms": (TIME, Fraction(1, 10**3)),
    "s": (TIME, Fraction(1)),
    "bps": (RATE, Fraction(1)),
    "Kbps": (RATE, Fraction(10**3)),
    "Mbps": (RATE, Fraction(10**6)),
    "Gbps": (RATE, Fraction(10**9)),
    "Tbps": (RATE, Fraction(10**12)),
    "B": (SIZE, Fraction(8)),
    "KB": (SIZE, Fraction(8 * 10**3)),
    "MB": (SIZE, Fraction(8 * 10**6)),
    "GB": (SIZE, Fraction(8 * 10**9)),
    "KiB": (SIZE, Fraction(8 * 2**10)),
    "MiB": (SIZE, Fraction(8 * 2**20)),
    "GiB": (SIZE, Fraction(8 * 2**30)),
    "%": (NUMBER, Fraction(1, 100)),
}

# What people often write instead, for "did you mean".
UNIT_ALIASES: dict[str, str] = {
    "sec": "s", "secs": "s", "µs": "us", "msec": "ms", "min": "s",
    "kbps": "Kbps", "mbps": "Mbps", "gbps": "Gbps", "Mbit": "Mbps", "Mbits": "Mbps",
    "Kbit": "Kbps", "Gbit": "Gbps", "bit": "bps", "kB": "KB", "kb": "KB", "b": "B",
    "KIB": "KiB", "MIB": "MiB", "k": "Kbps", "M": "Mbps",
}

_QTY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z%µ]+)\s*$")


@dataclass(frozen=True, slots=True)
class Quantity:
    """An exact magnitude in base units with its dimension."""

    value: Fraction
    dim: Dim

    def __add__(self, o: "Quantity") -> "Quantity":
        return Quantity(self.value + o.value, self.dim)

    def __sub__(self, o: "Quantity") -> "Quantity":
        return Quantity(self.value - o.value, self.dim)

    def __mul__(self, o: "Quantity") -> "Quantity":
        return Quantity(self.value * o.value, (self.dim[0] + o.dim[0], self.dim[1] + o.dim[1]))

    def __truediv__(self, o: "Quantity") -> "Quantity":
        return Quantity(self.value / o.value, (self.dim[0] - o.dim[0], self.dim[1] - o.dim[1]))

    def __neg__(self) -> "Quantity":
        return Quantity(-self.value, self.dim)

    def to_plan(self) -> int | float:
        """The plan's base unit: integer ns, bit/s or bytes; a float for numbers."""
        if self.dim == TIME:
            return round(self.value * 10**9)
        if self.dim == RATE:
            return round(self.value)
        if self.dim == SIZE:
            return round(self.value / 8)
        if self.value.denominator == 1:
            return int(self.value)
        return float(self.value)

    def pretty(self) -> str:
        """Shortest exact `.rtn` literal for this quantity (`20ms`, `1.5Mbps`, `64KiB`)."""
        return format_quantity(self.value, self.dim)


def number_text(x: Fraction) -> str | None:
    """A finite decimal literal for x, or None if x has no short decimal form."""
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return None
    digits = max(twos, fives)
    if digits > 9:
        return None
    s = f"{x.numerator * 10**digits // x.denominator}"
    neg = s.startswith("-")
    s = s.lstrip("-").rjust(digits + 1, "0")
    s = s[:-digits] + "." + s[-digits:]
    return ("-" if neg else "") + s.rstrip("0").rstrip(".")


_PREFERRED = {
    TIME: ["s", "ms", "us", "ns"],
    RATE: ["Tbps", "Gbps", "Mbps", "Kbps", "bps"],
    SIZE: ["GiB", "MiB", "KiB", "GB", "MB", "KB", "B"],
}


def format_quantity(value: Fraction, dim: Dim) -> str:
    """Write a magnitude with the largest unit that keeps it a short exact literal."""
    if dim == NUMBER:
        return number_text(value) or str(float(value))
    names = _PREFERRED.get(dim)
    if not names:
        raise ValueError(f"no unit for dimension {dim_name(dim)}")
    best = None
    for u in names:
        t = number_text(value / UNITS[u][1])
        if t is not None and abs(value / UNITS[u][1]) >= 1 or (t is not None and value == 0):
            cand = t + u
            if best is None or len(cand) < len(best):
                best = cand
    if best is None:  # not a short decimal in any unit: fall back to the smallest
        u = names[-1]
        best = (number_text(round(value / UNITS[u][1])) or "0") + u
    return best


MAX_EXPONENT = 300  # 1e300 is far beyond any rate, size or time; 1e999999999 would take minutes to build


class NumberTooLarge(ValueError):
    """A decimal literal whose exponent is beyond MAX_EXPONENT."""


_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)\s*$")


def parse_number(text: str) -> Fraction:
    """An exact fraction from a decimal literal (`1.5`, `2e3`); NumberTooLarge past 1e±300."""
    m = _EXPONENT.search(text)
    if m and abs(int(m.group(1)[:12])) > MAX_EXPONENT:
        raise NumberTooLarge(f"`{text}`: the exponent is beyond ±{MAX_EXPONENT}")
    return Fraction(text)


class QuantityError(ValueError):
    """Text that is not a quantity of the wanted dimension; the message says why, with an example."""


_DIM_EXAMPLES: dict[Dim, tuple[str, str]] = {TIME: ("time", "10s"), RATE: ("rate", "20Mbps"),
                                             SIZE: ("size", "1200B"), NUMBER: ("probability", "1%")}


def parse_quantity(text: str, dim: Dim) -> Fraction:
    """The exact magnitude, in base units, of a quantity written as in .rtn (`10s`, `20Mbps`, `1500B`,
    `1%`): what command-line flags and the control API take. QuantityError otherwise."""
    name, sample = _DIM_EXAMPLES[dim]
    q = split_quantity(text)
    if q is None:
        raise QuantityError(f"`{text}` is not a {name} (not a quantity with a unit); write e.g. `{sample}`")
    if q[1] not in UNITS or UNITS[q[1]][0] != dim:
        raise QuantityError(f"`{text}` has the wrong unit: it is not a {name}; write e.g. `{sample}`")
    try:
        return parse_number(q[0]) * UNITS[q[1]][1]
    except NumberTooLarge:
        raise QuantityError(f"`{text}` is too large a number: exponents go up to ±{MAX_EXPONENT}") from None


def split_quantity(text: str) -> tuple[str, str] | None:
    """Split `10ms` or `683.6 KiB` into number and unit text."""
    m = _QTY.match(text)
    return (m.group(1), m.group(2)) if m else None


def unit_suggestion(unit: str) -> str | None:
    """The unit a misspelt suffix most likely meant."""
    if unit in UNIT_ALIASES:
        return UNIT_ALIASES[unit]
    import difflib
    m = difflib.get_close_matches(unit, UNITS.keys(), n=1, cutoff=0.5)
    return m[0] if m else None

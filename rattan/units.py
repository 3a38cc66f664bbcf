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


# suffix -> (dimension, scale to base units): every spelling `.rtn`, flags and the control API accept.
# Rates are bits per second; byte rates are refused (see READINGS) because `MBps` and `Mbps`
# differ by eight and one slipped capital would silently change a run.
UNITS: dict[str, tuple[Dim, Fraction]] = {
    "ns": (TIME, Fraction(1, 10**9)),
    "us": (TIME, Fraction(1, 10**6)),
    "\u00b5s": (TIME, Fraction(1, 10**6)),  # µs, MICRO SIGN
    "\u03bcs": (TIME, Fraction(1, 10**6)),  # μs, GREEK SMALL LETTER MU: both are typed for micro
    "ms": (TIME, Fraction(1, 10**3)),
    "s": (TIME, Fraction(1)),
    "bps": (RATE, Fraction(1)),
    "kbps": (RATE, Fraction(10**3)),  # SI's lowercase kilo
    "Kbps": (RATE, Fraction(10**3)),
    "Mbps": (RATE, Fraction(10**6)),
    "Gbps": (RATE, Fraction(10**9)),
    "Tbps": (RATE, Fraction(10**12)),
    "bit/s": (RATE, Fraction(1)),
    "kbit/s": (RATE, Fraction(10**3)),
    "Kbit/s": (RATE, Fraction(10**3)),
    "Mbit/s": (RATE, Fraction(10**6)),
    "Gbit/s": (RATE, Fraction(10**9)),
    "Tbit/s": (RATE, Fraction(10**12)),
    "kbit": (RATE, Fraction(10**3)),  # tc's rate units: kilo-, mega-, gigabits per second
    "mbit": (RATE, Fraction(10**6)),
    "gbit": (RATE, Fraction(10**9)),
    "B": (SIZE, Fraction(8)),
    "KB": (SIZE, Fraction(8 * 10**3)),
    "MB": (SIZE, Fraction(8 * 10**6)),
    "GB": (SIZE, Fraction(8 * 10**9)),
    "KiB": (SIZE, Fraction(8 * 2**10)),
    "MiB": (SIZE, Fraction(8 * 2**20)),
    "GiB": (SIZE, Fraction(8 * 2**30)),
    "%": (NUMBER, Fraction(1, 100)),
}


@dataclass(frozen=True, slots=True)
class Reading:
    """One meaning a unit people write has: its dimension, scale to base units, and words for it."""

    dim: Dim
    scale: Fraction
    words: str


# humantime's time words (what upstream Rattan reads in a TOML or YAML time), the seconds each is and
# its name: the upstream front end reads times with it, and `.rtn` suggests the time each word means.
TIME_WORDS: tuple[tuple[tuple[str, ...], Fraction, str], ...] = (
    (("ns", "nsec", "nanos", "nanosecond", "nanoseconds"), Fraction(1, 10**9), "nanoseconds"),
    (("us", "\u00b5s", "\u03bcs", "usec", "micros", "microsecond", "microseconds"), Fraction(1, 10**6),
     "microseconds"),
    (("ms", "msec", "millis", "millisecond", "milliseconds"), Fraction(1, 10**3), "milliseconds"),
    (("s", "sec", "secs", "second", "seconds"), Fraction(1), "seconds"),
    (("m", "min", "mins", "minute", "minutes"), Fraction(60), "minutes"),
    (("h", "hr", "hrs", "hour", "hours"), Fraction(3600), "hours"),
    (("d", "day", "days"), Fraction(86400), "days"),
    (("w", "week", "weeks"), Fraction(7 * 86400), "weeks"),
)
# Plurals people write that humantime refuses: `.rtn` still says what they mean.
_TIME_WORDS_ALSO = {"nanoseconds": ("nsecs",), "microseconds": ("usecs", "\u00b5sec", "\u03bcsec"),
                    "milliseconds": ("msecs",)}


def _readings() -> dict[str, tuple[Reading, ...]]:
    """What people write for units Rattan refuses, with every meaning each has in the tools they come
    from (tc, iperf, SI, bytesize, humantime). A fix is offered only where all meanings agree."""
    out: dict[str, list[Reading]] = {}

    def add(names, dim: Dim, scale, words: str) -> None:
        for n in names:
            out.setdefault(n, []).append(Reading(dim, Fraction(scale), words))

    si = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    si_words = {"": "", "k": "kilo", "K": "kilo", "M": "mega", "G": "giga", "T": "tera"}
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    bin_words = {"Ki": "kibi", "Mi": "mebi", "Gi": "gibi", "Ti": "tebi"}
    lower = {"m": 10**6, "g": 10**9, "t": 10**12}  # a lowercase mega/giga/tera prefix
    low_words = {"m": "mega", "g": "giga", "t": "tera"}
    for p, f in si.items():
        w = si_words[p]
        add([p + s for s in ("bit/sec", "bits/s", "bits/sec", "b/s", "b/sec", "bitps")], RATE, f,
            f"{w}bits per second")
        add([p + s for s in ("Bps", "B/s", "B/sec", "Byte/s", "Bytes/s", "byte/s", "bytes/s")], RATE, 8 * f,
            f"{w}bytes per second")
        if p:
            add([p + "bit", p + "bits"], RATE, f, f"{w}bits per second (tc)")
            add([p + "bit", p + "bits", p + "b"], SIZE, f, f"{w}bits")
            add([p + s for s in ("Byte", "Bytes", "byte", "bytes")], SIZE, 8 * f, f"{w}bytes")
    for p, f in lower.items():
        w = low_words[p]
        add([p + s for s in ("bit/s", "bit/sec", "bits/s", "bits/sec", "b/s")], RATE, f, f"{w}bits per second")
        add([p + "bps"], RATE, f, f"{w}bits per second")
        add([p + "bps"], RATE, 8 * f, f"{w}bytes per second (tc)")
        add([p + "bits"], RATE, f, f"{w}bits per second (tc)")
        add([p + "bits", p + "b"], SIZE, f, f"{w}bits")
        add([p + "b"], SIZE, 8 * f, f"{w}bytes")
    add(["bit", "bits", "b"], SIZE, 1, "bits")
    add(["bit"], RATE, 1, "bits per second (tc)")
    add(["b"], SIZE, 8, "bytes")
    add(["tbit"], RATE, 10**12, "terabits per second (tc)")
    add(["kb"], SIZE, 8 * 10**3, "kilobytes")
    add(["kb", "k", "K"], SIZE, 8 * 2**10, "kibibytes (tc)")
    add(["mb"], SIZE, 8 * 2**20, "mebibytes (tc)")
    add(["gb", "g"], SIZE, 8 * 2**30, "gibibytes (tc)")
    add(["k", "K"], SIZE, 8 * 10**3, "kilobytes")
    add(["k", "K"], RATE, 10**3, "kilobits per second")
    add(["m", "M"], SIZE, 8 * 2**20, "mebibytes (tc)")
    add(["M"], SIZE, 8 * 10**6, "megabytes")
    add(["M"], RATE, 10**6, "megabits per second")
    add(["G"], SIZE, 8 * 10**9, "gigabytes")
    add(["G"], RATE, 10**9, "gigabits per second")
    for p, f in binary.items():
        w = bin_words[p]
        add([p + s for s in ("Bps", "B/s", "B/sec", "Byte/s", "Bytes/s")], RATE, 8 * f, f"{w}bytes per second")
        add([p + s for s in ("bit", "bit/s", "bps", "bits/s")], RATE, f, f"{w}bits per second")
        add([p + "Byte", p + "Bytes"], SIZE, 8 * f, f"{w}bytes")
    for p in ("Mb", "Gb", "Tb"):  # "a 10Mb link" is a rate; "a 10Mb buffer" a size
        f = si[p[0]]
        out[p] = [Reading(SIZE, Fraction(f), f"{si_words[p[0]]}bits"),
                  Reading(RATE, Fraction(f), f"{si_words[p[0]]}bits per second")]
    add(["kB"], SIZE, 8 * 10**3, "kilobytes")
    add(["TB"], SIZE, 8 * 10**12, "terabytes")
    add(["TiB"], SIZE, 8 * 2**40, "tebibytes")
    add(["PB"], SIZE, 8 * 10**15, "petabytes")
    add(["byte", "bytes", "Byte", "Bytes", "octets"], SIZE, 8, "bytes")
    for names, secs, words in TIME_WORDS:
        add(names + _TIME_WORDS_ALSO.get(words, ()), TIME, secs, words)
    return {k: tuple({(r.dim, r.scale): r for r in v}.values()) for k, v in out.items() if k not in UNITS}


READINGS: dict[str, tuple[Reading, ...]] = _readings()

# as the lexer's QUANTITY: a unit never starts like an exponent (`2e3` is a number, with no unit)
_QTY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)(?![eE][+-]?[0-9])\s*([A-Za-z%\u00b5\u03bc][A-Za-z0-9\u00b5\u03bc/]*)\s*$")


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


def number_text(x: Fraction, max_digits: int = 9) -> str | None:
    """A finite decimal literal for x, or None if x needs more than max_digits decimals."""
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
    if digits > max_digits:
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
    if q[1] not in UNITS:
        raise QuantityError(f"`{text.strip()}` has the wrong unit: {unit_advice(*q, dim).help(subject='it')}")
    if UNITS[q[1]][0] != dim:
        raise QuantityError(f"`{text}` has the wrong unit: it is not a {name}; write e.g. `{sample}`")
    try:
        return parse_number(q[0]) * UNITS[q[1]][1]
    except NumberTooLarge:
        raise QuantityError(f"`{text}` is too large a number: exponents go up to ±{MAX_EXPONENT}") from None


def split_quantity(text: str) -> tuple[str, str] | None:
    """Split `10ms` or `683.6 KiB` into number and unit text."""
    m = _QTY.match(text)
    return (m.group(1), m.group(2)) if m else None


# Words for the units Rattan accepts, for help that lists several readings.
_UNIT_WORDS: dict[tuple[Dim, Fraction], str] = {
    (TIME, Fraction(1, 10**9)): "nanoseconds", (TIME, Fraction(1, 10**6)): "microseconds",
    (TIME, Fraction(1, 10**3)): "milliseconds", (TIME, Fraction(1)): "seconds",
    (RATE, Fraction(1)): "bits per second", (RATE, Fraction(10**3)): "kilobits per second",
    (RATE, Fraction(10**6)): "megabits per second", (RATE, Fraction(10**9)): "gigabits per second",
    (RATE, Fraction(10**12)): "terabits per second",
    (SIZE, Fraction(8)): "bytes", (SIZE, Fraction(8 * 10**3)): "kilobytes", (SIZE, Fraction(8 * 10**6)): "megabytes",
    (SIZE, Fraction(8 * 10**9)): "gigabytes", (SIZE, Fraction(8 * 2**10)): "kibibytes",
    (SIZE, Fraction(8 * 2**20)): "mebibytes", (SIZE, Fraction(8 * 2**30)): "gibibytes",
    (NUMBER, Fraction(1, 100)): "percent",
}

def units_of(dim: Dim) -> str:
    """Every unit of a dimension Rattan accepts, as one line (`ns us µs μs ms s`)."""
    return " ".join(u for u, (d, _) in UNITS.items() if d == dim)


UNIT_LIST = "units are " + "; ".join(units_of(d) for d in (TIME, RATE, SIZE, NUMBER))
MAX_SUGGESTIONS = 3  # past this many readings, the list of units helps more than the list of guesses


def _osa_distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from a to b: one typo is 1."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _candidates(unit: str) -> list[tuple[Reading, ...]]:
    """The readings of each spelling an unknown unit may stand for: itself (`MBps`), else the units it
    equals but for case (`MBPS`: `Mbps`, `MBps`), else the units one typo away (`Mbsp`: `Mbps`)."""
    def of(n: str) -> tuple[Reading, ...]:
        if n in UNITS:
            dim, scale = UNITS[n]
            return (Reading(dim, scale, _UNIT_WORDS.get((dim, scale), n)),)
        return READINGS[n]

    if unit in READINGS:
        return [READINGS[unit]]
    folded = unit.casefold()
    known = [*UNITS, *READINGS]
    return [of(n) for n in known if n.casefold() == folded] or \
        [of(n) for n in known if abs(len(n) - len(unit)) <= 1 and _osa_distance(n, unit) == 1]


def readings_of(unit: str, dim: Dim | None = None) -> tuple[Reading, ...]:
    """Every distinct meaning an unknown unit may have. With `dim`, only meanings of that dimension,
    and none at all if one of the spellings it may stand for has no such meaning (`1BG` in a rate
    may be a slipped `1GB`: suggesting `1Gbps` would be a guess)."""
    found = _candidates(unit)
    if dim is not None:
        found = [tuple(r for r in c if r.dim == dim) for c in found]
        if not all(found):
            return ()
    return tuple({(r.dim, r.scale): r for c in found for r in c}.values())


def exact_literal(value: Fraction, dim: Dim) -> str | None:
    """The shortest `.rtn` literal with exactly this magnitude, or None if no unit gives a finite decimal."""
    names = _PREFERRED.get(dim, [])
    texts = [(t, u) for u in names if (t := number_text(value / UNITS[u][1], max_digits=40)) is not None]
    if not texts:
        return None
    big = [(t, u) for t, u in texts if abs(value / UNITS[u][1]) >= 1] or texts
    return min((t + u for t, u in big), key=len)


@dataclass(frozen=True, slots=True)
class UnitAdvice:
    """What to say about `num` followed by a unit Rattan refuses: each reading with the exact literal
    that means it, and a fix only when every reading agrees (no suggestion changes the magnitude)."""

    num: str
    unit: str
    readings: tuple[Reading, ...]
    literals: tuple[str | None, ...]  # per reading, the exact `.rtn` literal (`80Mbps`), if there is one
    dim: Dim | None = None  # the dimension wanted, when the place it is written says

    @property
    def fix(self) -> str | None:
        """The whole corrected literal (`10Mbps` for `10Mbsp`, `80Mbps` for `10MBps`), or None."""
        return self.literals[0] if len(self.readings) == 1 else None

    @property
    def unit_fix(self) -> str | None:
        """The corrected unit alone when only the unit slipped (`Mbps` for `10Mbsp`), else None."""
        fix = self.fix
        if fix is not None and fix.startswith(self.num) and fix[len(self.num):] in UNITS:
            return fix[len(self.num):]
        return None

    def edit(self, span):
        """Where the machine fix goes and what it writes, for the literal at `span`: the unit alone
        when only it slipped (`10Mbsp`), else the whole literal (`10MBps` -> `80Mbps`)."""
        if self.unit_fix is not None:
            return type(span)(span.source, span.end - len(self.unit), span.end), self.unit_fix
        if self.fix is not None:
            return span, self.fix
        return type(span)(span.source, span.end - len(self.unit), span.end), None

    def help(self, q: str = "`", subject: str | None = None) -> str:
        """The help line, quoting literals with `q` (TOML and YAML use `"`); `subject` names the
        literal written (`it`, where the message already quoted it)."""
        written = subject or f"{q}{self.num}{self.unit}{q}"
        if self.dim is not None and self.dim in DIM_NAMES and (not self.readings or
                                                               len(self.readings) > MAX_SUGGESTIONS):
            what = "a probability or plain number" if self.dim == NUMBER else f"a {DIM_NAMES[self.dim]}"
            lead = f"{written} is not {what}" if not self.readings else f"{written} has several readings"
            return f"{lead}; {what} is written in {units_of(self.dim)}" if self.dim != NUMBER else \
                f"{lead}; write a number or a percentage (`1%`)"
        if not self.readings or len(self.readings) > MAX_SUGGESTIONS:
            return UNIT_LIST
        if len(self.readings) == 1:
            (r,), fix = self.readings, self.fix
            words = _singular(r.words) if parse_number(self.num) == 1 else r.words
            if fix is None:
                return f"{written} is {self.num} {words}, which has no exact literal; {UNIT_LIST}"
            if self.unit_fix is not None:
                return f"did you mean {q}{fix}{q}?"
            why = "rates are written in bits per second" if r.dim == RATE else f"{q}{self.unit}{q} is not a unit here"
            return f"{written} is {self.num} {words}: write {q}{fix}{q} ({why})"
        ways = [f"{q}{lit}{q} for {r.words}" for r, lit in zip(self.readings, self.literals) if lit is not None]
        return f"{written} is ambiguous: write " + ", or ".join(ways) if ways else UNIT_LIST


def _singular(words: str) -> str:
    """`megabyte per second` for `megabytes per second`: what `1` is followed by."""
    head, _, rest = words.partition(" ")
    head = head[:-1] if head.endswith("s") else head
    return f"{head} {rest}" if rest else head


# A suggested literal longer than this is no help (`1e300MiB/s` in bits is 300 digits): none is offered.
MAX_LITERAL = 40


def unit_advice(num: str, unit: str, dim: Dim | None = None) -> UnitAdvice:
    """Advice for `num` followed by a unit Rattan does not accept; with `dim`, only readings of that
    dimension count (the TOML front end knows a `bandwidth` is a rate)."""
    readings = readings_of(unit, dim)
    try:
        n = parse_number(num)
    except NumberTooLarge:
        return UnitAdvice(num, unit, (), (), dim)
    literals = []
    for r in readings:
        same = [u for u in _PREFERRED.get(r.dim, []) if UNITS[u] == (r.dim, r.scale)]
        # keep the number as written when only the spelling slipped
        lit = f"{num}{same[0]}" if same else exact_literal(n * r.scale, r.dim)
        literals.append(lit if lit is not None and len(lit) <= MAX_LITERAL else None)
    return UnitAdvice(num, unit, readings, tuple(literals), dim)

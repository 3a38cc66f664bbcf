"""Read upstream Rattan's trace models (stack-rs/netem-trace 0.4) from `.json`/`.toml` files or inline.

Upstream's `BwReplay`, `DelayReplay` and `LossReplay` cells read a serialized
`BwTraceConfig`, `DelayTraceConfig` or `LossTraceConfig`, and its `DelayPerPacket`
cell a `DelayPerPacketTraceConfig`: a model tagged by its type name (typetag), e.g.
`{"RepeatedBwPatternConfig": {"pattern": [{"StaticBwConfig": {"bw": "12Mbps",
"duration": "1s"}}, ...], "count": 2}}`. This module follows netem-trace's
`src/model/{bw,delay,loss,delay_per_packet}.rs` field by field:

- every config struct is `serde(default)` with `Option` fields: an absent field (or
  JSON `null`) takes the default of the model's `build()` (`StaticBwConfig` 12 Mbit/s
  for 1 s, `StaticDelayConfig` 10 ms for 1 s, `StaticLossConfig` `[0.1, 0.2]` for 1 s,
  `NormalizedBwConfig` mean 12 Mbit/s, std_dev 0, 1 s in 1 ms steps, seed 42, ...);
- `Repeated*PatternConfig.count` defaults to 0, which repeats forever; a pattern that
  never ends inside another one means that what follows it never plays;
- unknown keys are ignored upstream (no `deny_unknown_fields`): they are reported as
  warnings here, with a "did you mean";
- Rattan builds netem-trace with its `human` feature, so durations are humantime
  strings (`"10ms"`, `"1s 500ms"`, no fractions) and rates human-bandwidth strings
  (`"12Mbps"`); the `{"secs", "nanos"}` / `{"gbps", "bps"}` forms of the non-human
  build are refused, as upstream refuses them;
- the seeded models (`NormalizedBwConfig`, `SawtoothBwConfig`) are generated here at
  compile time with upstream's generator, bit for bit (`netem_rng`), from their
  `seed` (default 42).

A time model becomes segments `[duration_ns, value]` plus `repeat` (0 = forever,
1 = once); when only a tail of the segments repeats forever (a forever pattern after
other models) `loop_from` is the index of its first segment.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from fractions import Fraction

from . import netem_rng
from .upstream import parse_rate


class ModelError(ValueError):
    """A trace model that cannot be read; the message names the path inside the model."""


MAX_SEGMENTS = 1_000_000
_U64 = 2**64 - 1
_MAX_DEPTH = 64
_SEED = 42  # netem-trace's DEFAULT_RNG_SEED
_SEC = 10**9
_MS = 10**6


# ---- humantime (humantime 2.x `parse_duration`, as humantime_serde calls it) ----------------------

_HT_UNITS = {
    **dict.fromkeys(("nanos", "nsec", "ns"), 1),
    **dict.fromkeys(("usec", "us", "\u00b5s"), 1_000),
    **dict.fromkeys(("millis", "msec", "ms"), 1_000_000),
    **dict.fromkeys(("seconds", "second", "secs", "sec", "s"), _SEC),
    **dict.fromkeys(("minutes", "minute", "min", "mins", "m"), 60 * _SEC),
    **dict.fromkeys(("hours", "hour", "hr", "hrs", "h"), 3600 * _SEC),
    **dict.fromkeys(("days", "day", "d"), 86400 * _SEC),
    **dict.fromkeys(("weeks", "week", "w"), 7 * 86400 * _SEC),
    **dict.fromkeys(("months", "month", "M"), 2_630_016 * _SEC),  # 30.44 days
    **dict.fromkeys(("years", "year", "y"), 31_557_600 * _SEC),  # 365.25 days
}


def parse_humantime(text: str) -> int:
    """Nanoseconds of a humantime duration (`"1s 500ms"`, `"2 min"`); ValueError with humantime's reason.

    A port of humantime's `Parser`: whole numbers, each followed by a unit, spaces
    anywhere between items (also inside a number); no sign, no fraction."""
    i, n_len = 0, len(text)
    total = 0

    def first_digit() -> int | None:
        nonlocal i
        while i < n_len:
            c = text[i]
            i += 1
            if "0" <= c <= "9":
                return ord(c) - 48
            if not c.isspace():
                raise ValueError(f"expected number at {i - 1}")
        return None

    n = first_digit()
    if n is None:
        raise ValueError("value was empty")
    while True:
        while i < n_len:  # the rest of the number
            c = text[i]
            if "0" <= c <= "9":
                n = n * 10 + ord(c) - 48
                if n > _U64:
                    raise ValueError("number is too large")
            elif c.isspace():
                pass
            elif c.isascii() and c.isalpha() or c == "\u00b5":
                break
            else:
                raise ValueError(f"invalid character at {i}")
            i += 1
        start = i
        if i < n_len:
            i += 1  # the unit's first letter
        nxt = None
        while i < n_len:
            c = text[i]
            if "0" <= c <= "9":
                nxt = ord(c) - 48
                break
            if c.isspace():
                break
            if not (c.isascii() and c.isalpha()):
                raise ValueError(f"invalid character at {i}")
            i += 1
        unit = text[start:i]
        if unit not in _HT_UNITS:
            raise ValueError(f"time unit needed, for example {n}sec or {n}ms" if not unit else
                             f"unknown time unit {unit!r}, supported units: ns, us/\u00b5s, ms, sec, "
                             "min, hours, days, weeks, months, years (and few variations)")
        mul = _HT_UNITS[unit]
        if (mul < _SEC and n * mul > _U64) or (mul >= _SEC and n * (mul // _SEC) > _U64):
            raise ValueError("number is too large")
        total += n * mul
        if nxt is not None:
            n = nxt
            i += 1
            continue
        n = first_digit()
        if n is None:
            if total // _SEC > _U64:
                raise ValueError("number is too large")
            return total


# ---- field readers -------------------------------------------------------------------------------

def _show(v) -> str:
    try:
        s = json.dumps(v)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


_FRACTION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z\u00b5]+)\s*")


def _whole_units(text: str) -> str | None:
    """The same time in humantime's whole-number parts (`"22.5ms"` -> `"22ms 500us"`), for a string
    humantime refuses only for its fractions; None when there is no such exact spelling."""
    pos, total = 0, Fraction(0)
    while pos < len(text):
        m = _FRACTION_PART.match(text, pos)
        if m is None or m.end() == pos or m.group(2) not in _HT_UNITS:
            return None
        total += Fraction(m.group(1)) * _HT_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or total.denominator != 1 or "." not in text:
        return None
    ns, parts = int(total), []
    for unit, size in (("h", 3600 * _SEC), ("min", 60 * _SEC), ("s", _SEC), ("ms", 1_000_000),
                       ("us", 1_000), ("ns", 1)):
        if ns >= size:
            parts.append(f"{ns // size}{unit}")
            ns %= size
    return " ".join(parts) or "0s"


def _duration(v, where: str) -> int:
    if isinstance(v, str):
        try:
            return parse_humantime(v)
        except ValueError as e:
            whole = _whole_units(v)
            hint = (f"write \"{whole}\" (humantime takes whole numbers only)" if whole else
                    "write e.g. \"100ms\" or \"1s 500ms\"")
            raise ModelError(f"{where}: `{v}` is not a humantime duration ({e}); {hint}") from None
    if isinstance(v, dict) and set(v) <= {"secs", "nanos"}:
        raise ModelError(f"{where}: Rattan reads netem-trace models with humantime durations, "
                         f"not {_show(v)}; write e.g. \"1s\" or \"10ms\"")
    raise ModelError(f"{where}: expected a duration string like \"10ms\", found {_show(v)}")


def _bandwidth(v, where: str) -> int:
    if isinstance(v, str):
        bps = parse_rate(v)
        if bps is not None:
            return min(bps, _U64 * _SEC + _SEC - 1)
        raise ModelError(f"{where}: `{v}` is not a bandwidth; write e.g. \"12Mbps\"")
    if isinstance(v, dict) and set(v) <= {"gbps", "bps"}:
        raise ModelError(f"{where}: Rattan reads netem-trace models with human-bandwidth rates, "
                         f"not {_show(v)}; write e.g. \"12Mbps\"")
    raise ModelError(f"{where}: expected a bandwidth string like \"12Mbps\", found {_show(v)}")


def _uint(v, where: str) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _U64:
        return v
    raise ModelError(f"{where}: expected a whole number from 0 to 2^64 - 1, found {_show(v)}")


def _float(v, where: str) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            pass
    raise ModelError(f"{where}: expected a number, found {_show(v)}")


def _probability(x: float) -> float:
    """Upstream draws u in [0, 1) and drops when u < p: p >= 1 always drops, p <= 0 (or NaN) never."""
    return 0.0 if not x > 0 else min(x, 1.0)


def _loss_pattern(v, where: str) -> list[float]:
    if isinstance(v, list):
        return [_probability(_float(x, f"{where}[{i}]")) for i, x in enumerate(v)]
    raise ModelError(f"{where}: expected a loss pattern: a list of probabilities, e.g. [0.01]")


class _Reader:
    """Reads one model tree; collects the warnings for keys upstream ignores."""

    def __init__(self, warnings: list[str] | None):
        self.warnings = warnings if warnings is not None else []

    def fields(self, body, name: str, where: str, spec: dict) -> dict:
        """The given fields of a `serde(default)` struct, read by `spec` (key -> reader); None = absent."""
        if isinstance(body, list):  # serde also reads a struct from its fields in order
            if len(body) > len(spec):
                raise ModelError(f"{where}: `{name}` has {len(spec)} fields ({', '.join(spec)}), "
                                 f"found a list of {len(body)}")
            body = dict(zip(spec, body))
        if not isinstance(body, dict):
            raise ModelError(f"{where}: expected a table of the fields of `{name}`, found {_show(body)}")
        out = {}
        for key, raw in body.items():
            reader = spec.get(key)
            if reader is None:
                near = difflib.get_close_matches(str(key), list(spec), n=1)
                hint = f"; did you mean `{near[0]}`?" if near else f"; its fields are {', '.join(spec)}"
                self.warnings.append(f"{where}.{key}: `{name}` has no field `{key}`, upstream ignores it{hint}")
                continue
            if raw is None and reader not in (_uint_required, _pattern_list, _trace_pattern):
                continue  # JSON null: the Option stays None
            out[key] = reader(raw, f"{where}.{key}")
        return out

    def tagged(self, node, where: str, names) -> tuple[str, object, str]:
        """The one `{ModelName: body}` of a typetag-serialized model."""
        example = next(iter(names))
        if not isinstance(node, dict) or len(node) != 1:
            raise ModelError(f"{where or 'the model'}: expected one model tagged by its name, "
                             f"e.g. {{\"{example}\": {{...}}}}, found {_show(node)}")
        (name, body), = node.items()
        path = f"{where}.{name}" if where else name
        if name not in names:
            near = difflib.get_close_matches(str(name), list(names), n=1)
            hint = f"did you mean `{near[0]}`?" if near else f"expected one of {', '.join(names)}"
            raise ModelError(f"{where or 'the model'}: unknown model `{name}` (upstream refuses it); {hint}")
        return name, body, path


def _uint_required(v, where: str) -> int:
    """A `usize` field (not an Option): JSON `null` is refused as serde refuses it."""
    return _uint(v, where)


def _pattern_list(v, where: str) -> list:
    if isinstance(v, list):
        return v
    raise ModelError(f"{where}: expected a list of models, found {_show(v)}")


# ---- time models (bw, delay, loss) ---------------------------------------------------------------

def _rust_u64(x: float) -> int:
    """Rust's saturating `f64 as u64`."""
    if not x > 0:
        return 0
    return _U64 if x >= 2.0**64 else int(x)


def _gbps_f64(bps: int) -> float:
    """Bandwidth::as_gbps_f64."""
    return float(bps // _SEC) + float(bps % _SEC) / 1e9


def _from_gbps_f64(g: float) -> int:
    """Bandwidth::from_gbps_f64: exact value rounded to the nearest bit/s (ties to even)."""
    return round(Fraction(g) * _SEC)


def _step_count(duration: int, step: int, path: str) -> int:
    """How many `step`s a seeded model of `duration` gives (the last one may be shorter)."""
    if duration and not step:
        raise ModelError(f"{path}.step: a step of 0 never advances (upstream's model would not end)")
    n = -(-duration // step) if duration else 0
    if n > MAX_SEGMENTS:
        raise ModelError(f"{path}: {n} steps of `step` in `duration` are more than {MAX_SEGMENTS}")
    return n


def _normalized_bw(f: dict, path: str) -> list:
    mean = f.get("mean", 12_000_000)
    std_dev = f.get("std_dev", 0)
    lower, upper = f.get("lower_bound"), f.get("upper_bound")
    duration = f.get("duration", _SEC)
    step = f.get("step", _MS)
    seed = f.get("seed", _SEED)
    n = _step_count(duration, step, path)
    rng = netem_rng.ChaCha.seed_from_u64(seed)
    m, s = float(min(mean, _U64)), float(min(std_dev, _U64))  # saturating_bandwidth_as_bps_u64
    out, left = [], duration
    for _ in range(n):
        bw = _rust_u64(netem_rng.normal(rng, m, s))
        if lower is not None:
            bw = max(bw, lower)
        if upper is not None:
            bw = min(bw, upper)
        d = min(step, left)
        left -= d
        out.append([d, bw])
    return out


def _sawtooth_bw(f: dict, path: str) -> list:
    bottom = f.get("bottom", 0)
    top = f.get("top", 12_000_000)
    if bottom > top:
        raise ModelError(f"{path}: `bottom` is above `top` (upstream panics: "
                         "\"bottom bw must be less than top bw\")")
    interval = f.get("interval", _SEC)
    duty = f.get("duty_ratio", 0.5)
    if not math.isfinite(duty):
        raise ModelError(f"{path}.duty_ratio: must be a finite number (upstream panics on {duty})")
    duration = f.get("duration", _SEC)
    step = f.get("step", _MS)
    seed = f.get("seed", _SEED)
    std_dev = f.get("std_dev", 0)
    up, low = f.get("upper_noise_bound"), f.get("lower_noise_bound")
    if duration and not interval:
        raise ModelError(f"{path}.interval: an interval of 0 has no sawtooth (upstream divides by it)")
    n = _step_count(duration, step, path)
    rng = netem_rng.ChaCha.seed_from_u64(seed)
    sd = float(min(std_dev, _U64))
    span = top - bottom
    iv = float(interval // _SEC) + float(interval % _SEC) / 1e9  # Duration::as_secs_f64
    change = iv * duty
    out, left, current = [], duration, 0
    for _ in range(n):
        cur = float(current // _SEC) + float(current % _SEC) / 1e9
        if cur < change:
            base = bottom + _from_gbps_f64(cur / change * _gbps_f64(span))
        else:
            ratio = (cur - change) / (iv - change)
            if not math.isfinite(ratio):
                raise ModelError(f"{path}: `duty_ratio` {duty} makes the falling edge empty (upstream panics)")
            base = top - _from_gbps_f64(ratio * _gbps_f64(span))
        offset = netem_rng.normal(rng, 0.0, sd)
        if up is not None:
            offset = min(offset, float(up))
        if low is not None:
            offset = max(offset, -float(low))
        bw = _rust_u64(float(base) + offset)
        d = min(step, left)
        left -= d
        current += d
        if current >= interval:
            current -= interval
        out.append([d, bw])
    return out


def _trace_pattern(v, where: str) -> list:
    """TraceBwConfig.pattern with the `human` serde: `[["1ms", ["2Mbps", "4Mbps"]], ...]`."""
    if not isinstance(v, list):
        raise ModelError(f"{where}: expected a list of [duration, [bandwidths...]], found {_show(v)}")
    out = []
    for i, item in enumerate(v):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], list)):
            raise ModelError(f"{where}[{i}]: expected [duration, [bandwidths...]], e.g. "
                             f"[\"1s\", [\"12Mbps\"]], found {_show(item)}")
        d = _duration(item[0], f"{where}[{i}][0]")
        out.append((d, [_bandwidth(b, f"{where}[{i}][1][{j}]") for j, b in enumerate(item[1])]))
    return out


_TIME = {
    "bw": {
        "StaticBwConfig": {"bw": _bandwidth, "duration": _duration},
        "NormalizedBwConfig": {"mean": _bandwidth, "std_dev": _bandwidth, "upper_bound": _bandwidth,
                               "lower_bound": _bandwidth, "duration": _duration, "step": _duration,
                               "seed": _uint},
        "SawtoothBwConfig": {"bottom": _bandwidth, "top": _bandwidth, "interval": _duration,
                             "duty_ratio": _float, "duration": _duration, "step": _duration,
                             "seed": _uint, "std_dev": _bandwidth, "upper_noise_bound": _bandwidth,
                             "lower_noise_bound": _bandwidth},
        "TraceBwConfig": {"pattern": _trace_pattern},
        "RepeatedBwPatternConfig": {"pattern": _pattern_list, "count": _uint_required},
    },
    "delay": {
        "StaticDelayConfig": {"delay": _duration, "duration": _duration},
        "RepeatedDelayPatternConfig": {"pattern": _pattern_list, "count": _uint_required},
    },
    "loss": {
        "StaticLossConfig": {"loss": _loss_pattern, "duration": _duration},
        "RepeatedLossPatternConfig": {"pattern": _pattern_list, "count": _uint_required},
    },
}
_STATIC_DEFAULT = {"StaticBwConfig": ("bw", 12_000_000), "StaticDelayConfig": ("delay", 10 * _MS),
                   "StaticLossConfig": ("loss", [0.1, 0.2])}


def _expand(r: _Reader, node, kind: str, where: str, depth: int) -> tuple[list, int | None]:
    """(segments, loop_from): loop_from is None when the model ends, else segments[loop_from:] repeat forever."""
    if depth > _MAX_DEPTH:
        raise ModelError(f"{where}: models nested more than {_MAX_DEPTH} deep")
    names = _TIME[kind]
    name, body, path = r.tagged(node, where, names)
    f = r.fields(body, name, path, names[name])
    if name in _STATIC_DEFAULT:
        key, default = _STATIC_DEFAULT[name]
        dur = f.get("duration", _SEC)
        return ([[dur, f.get(key, default)]] if dur else []), None  # a zero duration ends the model
    if name == "NormalizedBwConfig":
        return _normalized_bw(f, path), None
    if name == "SawtoothBwConfig":
        return _sawtooth_bw(f, path), None
    if name == "TraceBwConfig":  # deterministic: each bandwidth for its duration, in order
        segs = [[d, bw] for d, bws in f.get("pattern", []) for bw in bws if d]
        if len(segs) > MAX_SEGMENTS:
            raise ModelError(f"{path}.pattern: more than {MAX_SEGMENTS} segments")
        return segs, None
    pattern, count = f.get("pattern", []), f.get("count", 0)
    body_segs: list = []
    for i, p in enumerate(pattern):
        segs, loop = _expand(r, p, kind, f"{path}.pattern[{i}]", depth + 1)
        if len(body_segs) + len(segs) > MAX_SEGMENTS:
            raise ModelError(f"{path}: the pattern expands to more than {MAX_SEGMENTS} segments")
        if loop is not None:  # never ends: the rest of the pattern, and its repeats, never play
            if i + 1 < len(pattern):
                r.warnings.append(f"{path}.pattern[{i + 1}]: never plays, since `pattern[{i}]` "
                                  "repeats forever (as upstream)")
            return body_segs + segs, len(body_segs) + loop
        body_segs += segs
    if count == 0:
        if not pattern:
            return [], None  # upstream: an empty pattern ends at once
        if not body_segs:
            raise ModelError(f"{path}: repeats forever (count = 0) a pattern that takes no time; "
                             "upstream never gets a value out of it")
        return body_segs, 0
    if len(body_segs) * count > MAX_SEGMENTS:
        raise ModelError(f"{path}: the pattern expands to more than {MAX_SEGMENTS} segments "
                         f"({len(body_segs)} x count {count})")
    return body_segs * count, None


_VALUE = {"bw": "rate_bps", "delay": "delay_ns", "loss": "loss_pattern"}


def time_model(doc, kind: str, *, warnings: list[str] | None = None) -> dict:
    """The plan trace of a netem-trace time model (`kind` "bw", "delay" or "loss") given as a parsed document."""
    r = _Reader(warnings)
    segs, loop = _expand(r, doc, kind, "", 0)
    if not segs:
        raise ModelError("the model ends at once: it has no segment of non-zero duration "
                         "(upstream's cell would forward nothing)")
    out = {"format": "segments", "value": _VALUE[kind], "segments": segs, "repeat": 1 if loop is None else 0}
    if loop:
        out["loop_from"] = loop
    return out


def load_document(text: str, fmt: str):
    """A `.json` or `.toml` model document (upstream reads it with figment's Json/Toml providers)."""
    try:
        if fmt == "json":
            return json.loads(text)
        import tomllib
        return tomllib.loads(text)
    except (ValueError, RecursionError) as e:
        raise ModelError(f"not valid {fmt.upper()}: {e}") from None


def read_model_file(path: str):
    """The parsed document of a `.json` or `.toml` model file."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext not in ("json", "toml"):
        raise ModelError(f"`{path}`: a model file ends in .json or .toml (upstream: \"Unknown trace file format\")")
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"`{path}` is not UTF-8 text") from None
    except OSError as e:
        raise ModelError(f"cannot read `{path}`: {e.strerror}") from None
    return load_document(text, ext)


def parse_model(text: str, fmt: str, kind: str, *, warnings: list[str] | None = None) -> dict:
    """The segments of a netem-trace model file's text (`fmt` "json" or "toml", `kind` "bw", "delay" or "loss")."""
    return time_model(load_document(text, fmt), kind, warnings=warnings)


# ---- per-packet delay models (DelayPerPacketTraceConfig) ----------------------------------------

_PER_PACKET = {
    "StaticDelayPerPacketConfig": {"delay": _duration, "count": _uint_required},
    "NormalizedDelayPerPacketConfig": {"mean": _duration, "std_dev": _duration, "upper_bound": _duration,
                                       "lower_bound": _duration, "count": _uint_required, "seed": _uint},
    "LogNormalizedDelayPerPacketConfig": {"mean": _duration, "std_dev": _duration,
                                          "upper_bound": _duration, "lower_bound": _duration,
                                          "count": _uint_required, "seed": _uint},
    "RepeatedDelayPerPacketPatternConfig": {"pattern": _pattern_list, "count": _uint_required},
}


def _pattern_pp(r: _Reader, pattern: list, path: str, depth: int) -> tuple[list, int | None]:
    """The concatenated pattern of a RepeatedDelayPerPacketPatternConfig, before its `count`."""
    body_segs: list = []
    for i, p in enumerate(pattern):
        segs, loop = _expand_pp(r, p, f"{path}.pattern[{i}]", depth + 1)
        if len(body_segs) + len(segs) > MAX_SEGMENTS:
            raise ModelError(f"{path}: the pattern expands to more than {MAX_SEGMENTS} segments")
        if loop is not None:
            if i + 1 < len(pattern):
                r.warnings.append(f"{path}.pattern[{i + 1}]: never plays, since `pattern[{i}]` "
                                  "never ends (as upstream)")
            return body_segs + segs, len(body_segs) + loop
        body_segs += segs
    return body_segs, None


def _forever_pp(pattern: list, body_segs: list, path: str) -> tuple[list, int | None]:
    if not pattern:
        return [], None  # upstream: an empty pattern ends at once
    if not body_segs:
        raise ModelError(f"{path}: repeats forever (count = 0) a pattern that gives no delay; "
                         "upstream never gets a value out of it")
    return body_segs, 0


def _expand_pp(r: _Reader, node, where: str, depth: int) -> tuple[list, int | None]:
    """(segments, loop_from) as `_expand`; a segment with count 0 never ends and is then the last one."""
    if depth > _MAX_DEPTH:
        raise ModelError(f"{where}: models nested more than {_MAX_DEPTH} deep")
    name, body, path = r.tagged(node, where, _PER_PACKET)
    f = r.fields(body, name, path, _PER_PACKET[name])
    count = f.get("count", 0)
    if name == "StaticDelayPerPacketConfig":
        seg = {"kind": "static", "delay": f.get("delay", 10 * _MS), "count": count}
        return [seg], (0 if count == 0 else None)
    if name != "RepeatedDelayPerPacketPatternConfig":
        mean = f.get("mean", 10 * _MS)
        if name == "LogNormalizedDelayPerPacketConfig" and mean == 0:
            raise ModelError(f"{path}.mean: a log-normal delay needs a mean above 0 "
                             "(upstream panics building LogNormal from it)")
        seg = {"kind": "normal" if name == "NormalizedDelayPerPacketConfig" else "lognormal",
               "mean": mean, "std_dev": f.get("std_dev", 0), "lower_bound": f.get("lower_bound", 0),
               "upper_bound": f.get("upper_bound"), "count": count, "seed": f.get("seed", _SEED)}
        return [seg], (0 if count == 0 else None)
    pattern = f.get("pattern", [])
    body_segs, loop = _pattern_pp(r, pattern, path, depth)
    if loop is not None:
        return body_segs, loop
    if count == 0:
        return _forever_pp(pattern, body_segs, path)
    if len(body_segs) * count > MAX_SEGMENTS:
        raise ModelError(f"{path}: the pattern expands to more than {MAX_SEGMENTS} segments "
                         f"({len(body_segs)} x count {count})")
    return [dict(s) for _ in range(count) for s in body_segs], None


def per_packet_model(obj, *, warnings: list[str] | None = None) -> tuple[list[dict], int]:
    """The segments and repeat count (0 = forever) of a netem-trace DelayPerPacketTraceConfig.

    `obj` is the tagged model as a plain dict (inline in the TOML/YAML, or `read_model_file(path)`).
    Segments: `{"kind": "static", "delay": ns, "count": n}` or `{"kind": "normal"|"lognormal",
    "mean": ns, "std_dev": ns, "lower_bound": ns, "upper_bound": ns|None, "count": n, "seed": int}`;
    count 0 = the segment never ends (then it is the last one). Upstream re-creates a segment each
    time it plays, so a random segment restarts from its `seed` at every repeat. An outermost
    RepeatedDelayPerPacketPatternConfig stays a repeat count; inner ones are unrolled.

    The random draws themselves are the engine's (`delay_per_packet`), not upstream's StdRng
    sequence, unless that cell reproduces `netem_rng` (see its docstring).
    """
    r = _Reader(warnings)
    name, body, path = r.tagged(obj, "", _PER_PACKET)
    if name == "RepeatedDelayPerPacketPatternConfig":
        f = r.fields(body, name, path, _PER_PACKET[name])
        pattern, count = f.get("pattern", []), f.get("count", 0)
        segs, loop = _pattern_pp(r, pattern, path, 0)
        if loop is None:
            if count == 0:
                segs, loop = _forever_pp(pattern, segs, path)
            elif segs:
                return segs, count
    else:
        segs, loop = _expand_pp(r, obj, "", 0)
    return _finish_pp(segs, loop)


def _finish_pp(segs: list, loop: int | None) -> tuple[list[dict], int]:
    if not segs:
        raise ModelError("the model gives no delay at all (upstream's cell would drop every packet)")
    if loop is None:
        return segs, 1
    tail = segs[loop:]
    if tail[-1]["count"] == 0:  # the last segment never ends
        return segs, 1
    if loop == 0:
        return segs, 0
    if len(tail) == 1 and tail[0]["kind"] == "static":  # a static segment repeated forever: one endless segment
        return segs[:loop] + [dict(tail[0], count=0)], 1
    raise ModelError("a pattern that repeats forever after other segments (only its tail repeats) "
                     "is not supported for per-packet delays; make the forever pattern the outermost one")

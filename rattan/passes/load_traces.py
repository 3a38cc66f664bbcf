"""Pass `load_traces`: find and parse the trace file of every `*_trace` cell.

Requires: `validate_params` (paths are resolved against the file that names them).
Guarantees: each trace cell carries `trace`, the parsed trace in base units, or
a diagnostic: file missing (RTN050) or malformed (RTN051, with the line).

Formats:
- bandwidth (`x-trace: bw`): Mahimahi. One integer per line, a time in ms at
  which one 1500-byte packet may leave; non-decreasing; the last time is the
  period of the trace.
- delay and loss (`x-trace: delay | loss`): one `TIME VALUE` pair per line,
  a step function from the start of the run. TIME is a quantity (`1.5s`) or a
  number of ms; VALUE is a time (`20ms`) for delay, a probability (`1%` or
  `0.01`) for loss. `#` starts a comment.
"""
from __future__ import annotations

import os
from dataclasses import replace
from fractions import Fraction
from types import MappingProxyType

from ..ir.nodes import Program
from ..units import NUMBER, TIME, UNITS, NumberTooLarge, parse_number, split_quantity, unit_advice
from .context import Context

_CACHE: dict[tuple[str, str, float, int], tuple[dict, tuple[str, ...]]] = {}


class TraceError(ValueError):
    """A malformed trace; the message names the line."""


def parse_mahimahi(text: str) -> dict:
    """Delivery opportunities in ns and the period, from a Mahimahi trace."""
    times: list[int] = []
    last = 0
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        try:
            ms = int(s)
        except ValueError:
            raise TraceError(f"line {n}: `{s[:40]}` is not a whole number of milliseconds") from None
        if ms < 0:
            raise TraceError(f"line {n}: negative time {ms}")
        if ms < last:
            raise TraceError(f"line {n}: time {ms} ms is before the previous line's {last} ms")
        last = ms
        times.append(ms * 1_000_000)
    if not times:
        raise TraceError("the trace has no lines")
    if last == 0:
        raise TraceError("the trace lasts 0 ms: its last line must be a time after 0")
    return {"format": "mahimahi", "mtu_bytes": 1500, "period_ns": last * 1_000_000,
            "opportunities_ns": times}


def _step_value(tok: str, kind: str, n: int):
    q = split_quantity(tok)
    if q is None:
        try:
            x = parse_number(tok)
        except NumberTooLarge:
            raise TraceError(f"line {n}: `{tok}` is too large a number") from None
        except ValueError:
            raise TraceError(f"line {n}: `{tok}` is not a number") from None
        dim, scale = (TIME, Fraction(1, 1000)) if kind == "time_ms" else (NUMBER, Fraction(1))
    else:
        num, unit = q
        if unit not in UNITS:
            want = TIME if kind in ("time", "time_ms") else NUMBER
            raise TraceError(f"line {n}: unknown unit `{unit}`: {unit_advice(num, unit, want).help()}")
        dim, scale = UNITS[unit]
        try:
            x = parse_number(num)
        except NumberTooLarge:
            raise TraceError(f"line {n}: `{tok}` is too large a number") from None
    x *= scale
    want = TIME if kind in ("time", "time_ms") else NUMBER
    if dim != want:
        raise TraceError(f"line {n}: `{tok}` is not a {'time' if want == TIME else 'probability'}")
    if want == TIME:
        return round(x * 10**9)
    if not 0 <= x <= 1:
        raise TraceError(f"line {n}: `{tok}` is not a probability in [0, 1]")
    return float(x)


def parse_steps(text: str, kind: str) -> dict:
    """A `TIME VALUE` step trace for delay (`kind="delay"`) or loss."""
    steps = []
    last = -1
    for n, line in enumerate(text.splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        parts = s.replace(",", " ").split()
        if len(parts) != 2:
            raise TraceError(f"line {n}: expected `TIME VALUE`, found `{s[:40]}`")
        t = _step_value(parts[0], "time_ms", n)
        v = _step_value(parts[1], "time" if kind == "delay" else "probability", n)
        if t <= last:
            raise TraceError(f"line {n}: times must increase")
        last = t
        steps.append([t, v])
    if not steps:
        raise TraceError("the trace has no lines")
    return {"format": "steps", "steps": steps}


def read_trace(path: str, kind: str, warnings: list[str] | None = None) -> dict:
    """Parse a trace file (cached by path, size and modification time).

    `warnings` receives what a netem-trace model file has that upstream ignores (unknown keys)."""
    st = os.stat(path)
    key = (path, kind, st.st_mtime, st.st_size)
    hit = _CACHE.get(key)
    if hit is None:
        found: list[str] = []
        with open(path, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceError("the file is not text") from None
        ext = os.path.splitext(path)[1].lower()
        if ext in (".json", ".toml"):  # upstream Rattan's netem-trace models
            from ..frontends.netem_trace import ModelError, parse_model
            try:
                trace = parse_model(text, ext[1:], kind, warnings=found)
            except ModelError as e:
                raise TraceError(str(e)) from None
        else:
            trace = parse_mahimahi(text) if kind == "bw" else parse_steps(text, kind)
        hit = _CACHE[key] = (trace, tuple(found))
    if warnings is not None:
        warnings.extend(hit[1])
    return hit[0]


def load_traces(prog: Program, ctx: Context) -> Program:
    channels = []
    for ch in prog.channels:
        cells = []
        for c in ch.cells:
            ct = ctx.registry.get(c.type)
            if ct is None or c.config is None:
                cells.append(c)
                continue
            for name, prop in ct.properties.items():
                kind = prop.get("x-trace")
                if not kind or name not in c.config:
                    continue
                path = c.config[name]
                span = next((p.value.span for p in c.params if p.name == name), c.span)
                shown = os.path.relpath(path) if not path.startswith("..") else path
                if not os.path.isfile(path):
                    ctx.sink.emit("RTN050", f"trace file `{shown}` not found", span,
                                  help="relative paths start at the folder of the file that names them")
                    break
                ignored: list[str] = []
                try:
                    trace = read_trace(path, kind, ignored)
                except TraceError as e:
                    ctx.sink.emit("RTN051", f"malformed trace `{os.path.basename(path)}`: {e}", span)
                    break
                except OSError as e:
                    ctx.sink.emit("RTN050", f"cannot read trace `{shown}`: {e.strerror}", span)
                    break
                for w in ignored:  # upstream reads the model and ignores these keys
                    ctx.sink.emit("RTN075", f"in trace model `{os.path.basename(path)}`: {w}", span,
                                  help="upstream ignores the key; remove or fix it")
                c = replace(c, trace=MappingProxyType(trace))
            cells.append(c)
        channels.append(replace(ch, cells=tuple(cells)))
    return replace(prog, channels=tuple(channels))

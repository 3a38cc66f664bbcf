"""Read upstream Rattan's trace models (stack-rs/netem-trace) from `.json` or `.toml` files.

Upstream's `BwReplay`, `DelayReplay` and `LossReplay` cells read a serialized
`BwTraceConfig`, `DelayTraceConfig` or `LossTraceConfig`: a model tagged by its
type name, e.g. `{"RepeatedBwPatternConfig": {"pattern": [{"StaticBwConfig":
{"bw": "12Mbps", "duration": "1s"}}, ...], "count": 2}}`. The deterministic
models (static values and repeated patterns of them) are flattened here into
segments `[duration_ns, value]` plus a repeat count (0 = forever); the seeded
random models (normal, sawtooth, ...) are refused with a clear message.
"""
from __future__ import annotations

import json

from .upstream import parse_rate, parse_time


class ModelError(ValueError):
    """A trace model that cannot be read; the message says where and why."""


# model name -> (value key, default value, kind of value)
_STATIC = {
    "bw": ("StaticBwConfig", "bw", None, "rate"),
    "delay": ("StaticDelayConfig", "delay", 10_000_000, "time"),
    "loss": ("StaticLossConfig", "loss", None, "pattern"),
}
_REPEATED = {"bw": "RepeatedBwPatternConfig", "delay": "RepeatedDelayPatternConfig",
             "loss": "RepeatedLossPatternConfig"}
_RANDOM = {"NormalizedBwConfig", "SawtoothBwConfig", "TraceBwConfig"}

MAX_SEGMENTS = 1_000_000


def _duration(v, where: str) -> int:
    """ns from `{"secs": s, "nanos": n}` or a humantime string like `"1s 500ms"`."""
    if isinstance(v, dict) and set(v) <= {"secs", "nanos"}:
        s, n = v.get("secs", 0), v.get("nanos", 0)
        if isinstance(s, int) and isinstance(n, int) and s >= 0 and 0 <= n < 10**9:
            return s * 10**9 + n
    if isinstance(v, str) and (ns := parse_time(v)) is not None:  # netem-trace reads it with humantime
        return ns
    raise ModelError(f"{where}: expected a duration like \"1s\" or {{\"secs\": 1, \"nanos\": 0}}, "
                     f"found {json.dumps(v)[:60]}")


def _bandwidth(v, where: str) -> int:
    """bit/s from `{"gbps": g, "bps": b}` or a string like `"12Mbps"`."""
    if isinstance(v, dict) and set(v) <= {"gbps", "bps"}:
        g, b = v.get("gbps", 0), v.get("bps", 0)
        if isinstance(g, int) and isinstance(b, int) and g >= 0 and b >= 0:
            return g * 10**9 + b
    if isinstance(v, str) and (bps := parse_rate(v)) is not None:  # and this with human-bandwidth
        return bps
    raise ModelError(f"{where}: expected a rate like \"12Mbps\" or {{\"gbps\": 0, \"bps\": 12000000}}, "
                     f"found {json.dumps(v)[:60]}")


def _loss_pattern(v, where: str) -> list[float]:
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                         and 0 <= x <= 1 for x in v):
        return [float(x) for x in v]
    raise ModelError(f"{where}: expected a loss pattern: a list of probabilities in [0, 1]")


def _flatten(node, kind: str, where: str, out: list, depth: int = 0) -> None:
    if depth > 32:
        raise ModelError(f"{where}: models nested too deeply")
    if not isinstance(node, dict) or len(node) != 1:
        raise ModelError(f"{where}: expected one model tagged by its name, "
                         f"e.g. {{\"{_STATIC[kind][0]}\": {{...}}}}")
    (name, body), = node.items()
    if not isinstance(body, dict):
        raise ModelError(f"{where}.{name}: expected a table of fields")
    static_name, key, default, vkind = _STATIC[kind]
    if name == static_name:
        unknown = set(body) - {key, "duration"}
        if unknown:
            raise ModelError(f"{where}.{name}: unknown field `{sorted(unknown)[0]}`")
        if key in body:
            raw = body[key]
            value = (_bandwidth(raw, f"{where}.{name}.{key}") if vkind == "rate" else
                     _duration(raw, f"{where}.{name}.{key}") if vkind == "time" else
                     _loss_pattern(raw, f"{where}.{name}.{key}"))
        elif default is not None:
            value = default
        else:
            raise ModelError(f"{where}.{name}: `{key}` is required")
        dur = _duration(body["duration"], f"{where}.{name}.duration") if "duration" in body else 10**9
        if dur > 0:
            out.append([dur, value])
        return
    if name == _REPEATED[kind]:
        unknown = set(body) - {"pattern", "count"}
        if unknown:
            raise ModelError(f"{where}.{name}: unknown field `{sorted(unknown)[0]}`")
        pattern = body.get("pattern", [])
        count = body.get("count", 1)
        if not isinstance(pattern, list) or not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ModelError(f"{where}.{name}: expected `pattern` (a list of models) and `count` (0 = forever)")
        inner: list = []
        for i, p in enumerate(pattern):
            _flatten(p, kind, f"{where}.{name}.pattern[{i}]", inner, depth + 1)
        if count == 0:
            if depth > 0:
                raise ModelError(f"{where}.{name}: only the outermost pattern may repeat forever (count = 0)")
            out.extend(inner)
            out.append("forever")
            return
        if len(inner) * count > MAX_SEGMENTS:
            raise ModelError(f"{where}.{name}: the pattern expands to more than {MAX_SEGMENTS} segments")
        for _ in range(count):
            out.extend(inner)
        return
    if name in _RANDOM or name.startswith(("Normalized", "Sawtooth", "LogNormalized")):
        raise ModelError(f"{where}: the random model `{name}` is not supported yet; "
                         "use a Mahimahi or step trace, or static/repeated models")
    raise ModelError(f"{where}: unknown {kind} model `{name}`; expected `{static_name}` or `{_REPEATED[kind]}`")


def parse_model(text: str, fmt: str, kind: str) -> dict:
    """The segments of a netem-trace model (`fmt` "json" or "toml", `kind` "bw", "delay" or "loss")."""
    try:
        if fmt == "json":
            doc = json.loads(text)
        else:
            import tomllib
            doc = tomllib.loads(text)
    except (ValueError, RecursionError) as e:
        raise ModelError(f"not valid {fmt.upper()}: {e}") from None
    out: list = []
    _flatten(doc, kind, "model", out)
    forever = bool(out) and out[-1] == "forever"
    segments = [s for s in out if s != "forever"]
    if not segments:
        raise ModelError("the model has no segment of non-zero duration")
    return {"format": "segments", "value": {"bw": "rate_bps", "delay": "delay_ns", "loss": "loss_pattern"}[kind],
            "segments": segments, "repeat": 0 if forever else 1}

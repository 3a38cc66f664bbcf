"""Build engine structures from a plan channel through the binding (no JSON in C)."""
from __future__ import annotations

import ipaddress
from typing import Any

from .binding import Engine, EngineError

DEFAULT_QUEUE_PACKETS = 1000  # a bounded queue kind with neither `packets` nor `bytes`


def _queue_args(q: dict) -> dict:
    """Queue kind, limits and AQM parameters of a bw-like cell, for Engine.add_bw."""
    kind = q.get("kind", "infinite")
    if kind == "infinite":
        return {"queue": "infinite"}
    packets, size = q.get("packets", 0), q.get("bytes", 0)
    if not packets and not size:
        packets = DEFAULT_QUEUE_PACKETS
    limits = {"limit_packets": packets, "limit_bytes": size}
    if kind in ("droptail", "drophead"):
        return {"queue": kind, **limits}
    if kind == "codel":
        return {"queue": "droptail", **limits, "aqm": "codel", "target_ns": q["target"], "interval_ns": q["interval"]}
    if kind == "pie":
        return {"queue": "droptail", **limits, "aqm": "pie", "target_ns": q["target"], "interval_ns": q["tupdate"]}
    if kind == "red":
        return {"queue": "droptail", **limits, "aqm": "red", "red_min": q["min"], "red_max": q["max"],
                "red_max_p": q.get("probability", 0.1)}
    raise EngineError(f"queue `{kind}` is not implemented in the engine")


# Virtual time has no real interfaces: endpoint i of a channel gets 10.0.(i+1).2 for routing.
def endpoint_addr(index: int) -> int:
    """The address an endpoint has in virtual time (10.0.N.2, N from 1), as an integer."""
    return int(ipaddress.IPv4Address(f"10.0.{index + 1}.2"))


def _routes(cfg: dict, addresses: dict[str, int]) -> list[tuple[int, int, int]]:
    out = []
    for r in cfg.get("routes", []):
        prefix = r["prefix"]
        if prefix in addresses:
            out.append((addresses[prefix], 32, r["port"]))
            continue
        net = ipaddress.ip_network(prefix, strict=False)
        if net.version != 4:
            raise EngineError(f"route `{prefix}`: IPv6 routes are not implemented in the engine yet")
        out.append((int(net.network_address), net.prefixlen, r["port"]))
    return out


def _steps(cell: dict[str, Any], loop: bool) -> tuple[list[tuple[int, float]], int, bool]:
    """(steps from time 0, period, loop) of a delay or loss trace, for the engine's step cells.

    A `TIME VALUE` trace: before its first line the first value holds; when it loops, its last
    line ends the period (like a Mahimahi trace) and the trace restarts with its first value.
    A netem-trace model: its segments in order, looping when the model repeats forever.
    """
    tr = cell.get("trace") or {}
    if tr.get("format") == "steps":
        steps = [(int(t), v) for t, v in tr["steps"]]
        if steps[0][0] > 0:
            steps.insert(0, (0, steps[0][1]))
        if loop and len(steps) > 1:
            return steps[:-1], steps[-1][0], True
        return steps, 0, False
    if tr.get("format") == "segments":
        steps, t = [], 0
        for duration, value in tr["segments"]:
            if isinstance(value, list):
                if len(value) != 1:
                    raise EngineError(f"cell `{cell['name']}`: loss patterns with bursts in a trace model are "
                                      "not implemented in the engine (a single probability per segment is)")
                value = value[0]
            steps.append((t, value))
            t += duration
        forever = tr.get("repeat", 1) == 0
        return steps, t, forever and loop and t > 0
    raise EngineError(f"cell `{cell['name']}`: trace format `{tr.get('format')}` is not implemented in the engine")


def _add_rate_segments(engine: Engine, cell: dict[str, Any], tr: dict, horizon_ns: int | None) -> int:
    """A netem-trace bandwidth model: a `bw` cell whose rate the engine changes at each segment start."""
    cfg = cell["config"]
    segments = [(d, v) for d, v in tr["segments"] if d > 0]
    if not segments:
        raise EngineError(f"cell `{cell['name']}`: the bandwidth model has no segment longer than 0")
    forever = tr.get("repeat", 1) == 0 and cfg.get("loop", True)
    if forever and horizon_ns is None:
        raise EngineError(f"cell `{cell['name']}`: a bandwidth model repeated forever needs a run length")
    node = engine.add_bw(segments[0][1], overhead=cfg.get("overhead", 0), **_queue_args(cfg.get("queue", {})))
    t, i = 0, 0
    while True:
        duration, _ = segments[i % len(segments)]
        t += duration
        i += 1
        if (not forever and i >= len(segments)) or (horizon_ns is not None and t > horizon_ns):
            break
        engine.set(node, "rate", segments[i % len(segments)][1], at_ns=t)
    return node


def _add_cell(engine: Engine, cell: dict[str, Any], addresses: dict[str, int], horizon_ns: int | None) -> int:
    t, cfg = cell["type"], cell["config"]
    if t == "pass":
        return engine.add_pass()
    if t == "bw":
        return engine.add_bw(cfg["rate"], overhead=cfg.get("overhead", 0), **_queue_args(cfg.get("queue", {})))
    if t == "bw_trace":
        tr = cell.get("trace") or {}
        if tr.get("format") == "segments":
            return _add_rate_segments(engine, cell, tr, horizon_ns)
        return engine.add_bw(overhead=cfg.get("overhead", 0), trace_ns=tr["opportunities_ns"],
                             trace_period_ns=tr["period_ns"], trace_mtu=tr["mtu_bytes"],
                             trace_loop=cfg.get("loop", True), **_queue_args(cfg.get("queue", {})))
    if t == "token_bucket":
        return engine.add_token_bucket(cfg["rate"], cfg["burst"], limit=cfg.get("limit", 0),
                                       peak_rate_bps=cfg.get("peak_rate", 0),
                                       min_burst=cfg.get("min_burst", 1500))  # so a peak may be set later
    if t == "duplicate":
        return engine.add_duplicate(cfg["rate"])
    if t == "corrupt":
        return engine.add_corrupt(cfg["rate"])
    if t == "router":
        default = cfg.get("default", "drop")
        return engine.add_router(_routes(cfg, addresses), cell["outputs"],
                                 -1 if default == "drop" else int(default))
    if t == "outage":
        return engine.add_outage(cfg.get("up", 0), cfg.get("down", 0), cfg.get("state", "up") == "down")
    if t == "delay":
        return engine.add_delay(cfg["delay"], jitter_ns=cfg.get("jitter", 0),
                                distribution=cfg.get("distribution", "uniform"),
                                correlation=cfg.get("correlation", 0.0), reorder=cfg.get("reorder", False))
    if t in ("delay_trace", "loss_trace"):
        steps, period, loop = _steps(cell, cfg.get("loop", True))
        add = engine.add_delay_trace if t == "delay_trace" else engine.add_loss_trace
        return add(steps, period_ns=period, loop=loop)
    if t == "spy":
        return engine.add_spy(cfg["path"])
    if t == "loss":
        if "model" in cfg:
            return engine.add_loss(gilbert_elliott=cfg["model"])
        if "pattern" in cfg:
            return engine.add_loss(pattern=cfg["pattern"])
        return engine.add_loss(rate=cfg.get("rate", 0.0))
    raise EngineError(f"cell `{cell['name']}`: type `{t}` is not implemented in the engine yet")


def load_channel(engine: Engine, channel: dict[str, Any], horizon_ns: int | None = None,
                 addresses: dict[str, int] | None = None) -> dict[str, int]:
    """Add a channel's endpoints and cells to the engine, link them; node ids by name.

    `horizon_ns`, when known, bounds the rate changes scheduled for bandwidth models.
    `addresses` gives each endpoint's IPv4 address (real runs); by default, the virtual ones.
    """
    if addresses is None:
        addresses = {name: endpoint_addr(i) for i, name in enumerate(channel["endpoints"])}
    nodes = {}
    for name in channel["endpoints"]:
        nodes[name] = engine.add_endpoint()
        engine.set_endpoint_addr(nodes[name], addresses[name])
    for cell in channel["cells"]:
        nodes[cell["name"]] = _add_cell(engine, cell, addresses, horizon_ns)
    for link in channel["links"]:
        engine.link(nodes[link["from"]], link["port"], nodes[link["to"]])
    return nodes

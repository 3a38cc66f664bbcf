"""Build engine structures from a plan channel through the binding (no JSON in C)."""
from __future__ import annotations

from typing import Any

from .binding import Engine, EngineError

DEFAULT_QUEUE_PACKETS = 1000  # a bounded queue kind with neither `packets` nor `bytes`


def _queue_args(q: dict) -> dict:
    kind = q.get("kind", "infinite")
    if kind == "infinite":
        return {"queue": "infinite"}
    if kind in ("droptail", "drophead"):
        packets, size = q.get("packets", 0), q.get("bytes", 0)
        if not packets and not size:
            packets = DEFAULT_QUEUE_PACKETS
        return {"queue": kind, "limit_packets": packets, "limit_bytes": size}
    raise EngineError(f"queue `{kind}` is not implemented in the engine yet")


def _add_cell(engine: Engine, cell: dict[str, Any]) -> int:
    t, cfg = cell["type"], cell["config"]
    if t == "pass":
        return engine.add_pass()
    if t == "bw":
        return engine.add_bw(cfg["rate"], overhead=cfg.get("overhead", 0), **_queue_args(cfg.get("queue", {})))
    if t == "delay":
        return engine.add_delay(cfg["delay"], jitter_ns=cfg.get("jitter", 0),
                                distribution=cfg.get("distribution", "uniform"),
                                correlation=cfg.get("correlation", 0.0), reorder=cfg.get("reorder", False))
    if t == "loss":
        if "model" in cfg:
            return engine.add_loss(gilbert_elliott=cfg["model"])
        if "pattern" in cfg:
            return engine.add_loss(pattern=cfg["pattern"])
        return engine.add_loss(rate=cfg.get("rate", 0.0))
    raise EngineError(f"cell `{cell['name']}`: type `{t}` is not implemented in the engine yet")


def load_channel(engine: Engine, channel: dict[str, Any]) -> dict[str, int]:
    """Add a channel's endpoints and cells to the engine, link them; node ids by name."""
    nodes = {name: engine.add_endpoint() for name in channel["endpoints"]}
    for cell in channel["cells"]:
        nodes[cell["name"]] = _add_cell(engine, cell)
    for link in channel["links"]:
        engine.link(nodes[link["from"]], link["port"], nodes[link["to"]])
    return nodes

"""What `rattan sim` and `rattan run` share about a plan's channel: choosing it, and handing its
timeline to the engine, which applies each change at its exact logical time."""
from __future__ import annotations

from typing import Any


class ChannelError(ValueError):
    """No such channel, or no channel given where the plan has several."""


def choose_channel(plan: dict, name: str | None) -> dict:
    """The channel named `name`, or the plan's only one."""
    channels = plan["channels"]
    names = [c["name"] for c in channels]
    if not channels:
        raise ChannelError("the file has no channel")
    if name is None:
        if len(channels) != 1:
            raise ChannelError(f"the file has {len(channels)} channels ({', '.join(names)}): "
                               "choose one with --channel")
        return channels[0]
    for c in channels:
        if c["name"] == name:
            return c
    from ..diagnostics import did_you_mean
    sugg = did_you_mean(name, names)
    raise ChannelError(f"no channel `{name}`" + (f" (did you mean `{sugg}`?)" if sugg else "")
                       + f"; channels: {', '.join(names)}")


def timeline_steps(channel: dict, duration: int) -> list[tuple[int, int, str, str, str, Any]]:
    """(time, order, action, cell, param, value) for every change in [0, duration], in time order.

    `action` is "set" (an `at`), "open" (a window of `every` starts) or "close"
    (it ends: the value in force before it comes back).
    """
    steps = []
    for order, ev in enumerate(channel["timeline"]):
        if ev["kind"] == "at":
            steps.append((ev["at_ns"], order, "set", ev["cell"], ev["param"], ev["value"]))
            continue
        t = ev["period_ns"]
        while t <= duration:
            steps.append((t, order, "open", ev["cell"], ev["param"], ev["value"]))
            steps.append((t + ev["duration_ns"], order, "close", ev["cell"], ev["param"], None))
            t += ev["period_ns"]
    return sorted((s for s in steps if s[0] <= duration), key=lambda s: (s[0], s[1], s[2] != "close"))


def engine_value(param: str, value) -> float:
    """A plan value as the engine takes it (numbers in base units; an outage `state` as 0 or 1)."""
    if param == "state":
        return 1.0 if value == "down" else 0.0
    return float(value)


def schedule_timeline(engine, nodes: dict[str, int], channel: dict, horizon_ns: int) -> None:
    """Give the engine every change of the channel's timeline up to `horizon_ns`; an `every`
    window ends by restoring the value that was in force before it."""
    from ..engine import EngineError
    live = {(c["name"], k): v for c in channel["cells"] for k, v in c["config"].items()}
    saved: dict[tuple, list] = {}
    python_cells = {k["cell"] for k in channel.get("controllers", ())}  # their own `set` gets these
    for t, _, action, cell, param, value in timeline_steps(channel, horizon_ns):
        if cell in python_cells:
            continue
        key = (cell, param)
        if action == "open":
            saved.setdefault(key, []).append(live[key])
        elif action == "close":
            value = saved[key].pop()
        live[key] = value
        try:
            engine.set(nodes[cell], param, engine_value(param, value), at_ns=t)
        except EngineError as e:
            raise EngineError(f"timeline: `{cell}.{param}` = {value}: {e}") from None

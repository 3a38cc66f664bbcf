"""What the control tests share: a channel from .rtn text, loaded in a virtual-time engine, behind the API."""
from __future__ import annotations

from rattan.compiler import compile_text
from rattan.control import ControlAPI, Target
from rattan.engine import Engine
from rattan.engine.load import load_channel
from rattan.plan import build_plan
from rattan.registry import default_registry


def virtual_api(source: str, name: str) -> ControlAPI:
    """The API over the file's first channel (instance `c`), its engine not yet running."""
    comp = compile_text(source, name)
    assert comp.ok, comp.diagnostics
    plan = build_plan(comp.program, comp.sources, default_registry())
    channel = plan["channels"][0]
    engine = Engine(1)
    return ControlAPI(engine, [Target(channel, "c", 0, load_channel(engine, channel))], default_registry(), "virtual")

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


def every_runtime_cell(folder) -> tuple[str, list[str]]:
    """A channel `c` whose chain has one cell of every registry type with runtime parameters, named
    after its type, then one cell of a type without any; its required parameters are made from the
    schema (trace files go to `folder`). The source, and the types with runtime parameters."""
    from tests.engine.test_control_and_threads import _rtn_value

    reg = default_registry()
    types = [t for t in reg.names() if reg.get(t).runtime_params()]
    still = next(t for t in reg.names() if not reg.get(t).runtime_params() and not reg.get(t).required)

    def required(t: str) -> list[str]:  # the schema's `required`, and the first choice of a `oneOf`
        choice = reg.get(t).schema.get("oneOf", [{}])[0].get("required", [])
        return list(reg.get(t).required) + [n for n in choice if n not in reg.get(t).required]

    cells = "\n".join(f"    cell {t}_1: {t} {{ " + ", ".join(
        f"{n} = {_rtn_value(t, n, reg.get(t).properties[n], folder)}" for n in required(t)) + " }"
        for t in types + [still])
    chain = " -> ".join(f"{t}_1" for t in types)
    return (f"channel c {{\n    endpoints left, right\n{cells}\n    left -> {chain} -> right\n"
            f"    right -> {still}_1 -> left\n}}\n"), types

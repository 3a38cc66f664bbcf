"""Build engine structures from a plan channel: one generic path from each cell's schema to C.

Nothing here knows a cell type. A plan cell's `config` is already in base units with the schema's
defaults filled in; the loader only applies what the schema annotates:
- a parameter with `x-trace` is passed as the trace the compiler loaded (the plan cell's `trace`);
- a string with `x-unit: prefix` that names an endpoint becomes that endpoint's IPv4 address.
The channel's `cuts` (from the `mark_cuts` pass) become the engine's cuts between regions.
A plugin cell's shared library (in its folder) is registered in the engine before its first use.
"""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any, Mapping

from ..registry import default_registry
from .binding import Engine, EngineError, cell_types, load_cells


# Virtual time has no real interfaces: endpoint i of a channel gets 10.0.(i+1).2 for routing.
def endpoint_addr(index: int) -> int:
    """The address an endpoint has in virtual time (10.0.N.2, N from 1), as an integer."""
    return int(ipaddress.IPv4Address(f"10.0.{index + 1}.2"))


def _endpoint_strings(schema: Any, path: tuple = ()) -> list[tuple]:
    """Where a schema has strings that may name an endpoint (`x-unit: prefix`): paths of keys,
    with "*" for every item of a list."""
    if not isinstance(schema, Mapping):
        return []
    if schema.get("x-unit") == "prefix":
        return [path]
    out = []
    for k, v in (schema.get("properties") or {}).items():
        out += _endpoint_strings(v, path + (k,))
    if "items" in schema:
        out += _endpoint_strings(schema["items"], path + ("*",))
    for branch in [*schema.get("oneOf", ()), *schema.get("anyOf", ())]:
        out += _endpoint_strings(branch, path)
    return out


@lru_cache(maxsize=None)
def _annotations(type_: str) -> tuple[tuple[str, ...], tuple[tuple, ...], str | None]:
    """(trace parameters, endpoint-string paths, shared library) of a registered cell type."""
    ct = default_registry().get(type_)
    if ct is None:
        return (), (), None
    traces = tuple(k for k, v in ct.properties.items() if isinstance(v, Mapping) and v.get("x-trace"))
    return traces, tuple(dict.fromkeys(_endpoint_strings(ct.schema))), ct.library


def prefix_paths(type_: str) -> tuple[tuple, ...]:
    """Where a cell type's parameters hold prefixes that may name an endpoint (`x-unit: prefix`)."""
    return _annotations(type_)[1]


def _substitute(value: Any, path: tuple, addresses: Mapping[str, int]) -> Any:
    if not path:
        if isinstance(value, str) and value in addresses:
            return f"{ipaddress.IPv4Address(addresses[value])}/32"
        return value
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(value, list):
        return [_substitute(v, rest, addresses) for v in value]
    if isinstance(value, dict) and head in value:
        return {**value, head: _substitute(value[head], rest, addresses)}
    return value


def engine_config(cell: Mapping[str, Any], addresses: Mapping[str, int]) -> dict[str, Any]:
    """A plan cell's parameters as the engine receives them."""
    traces, endpoint_paths, _ = _annotations(cell["type"])
    config = dict(cell.get("config") or {})
    for name in traces:
        if name in config:
            if not cell.get("trace"):
                raise EngineError(f"cell `{cell['name']}`: its trace `{config[name]}` was not loaded "
                                  "(compile the file again)")
            config[name] = dict(cell["trace"])
    for path in endpoint_paths:
        config = _substitute(config, path, addresses)
    return config


_loaded: set[str] = set()


def ensure_cell_type(type_: str) -> None:
    """Register a plugin cell type's library in the engine before its first use."""
    if type_ in _loaded:
        return
    if type_ not in cell_types():
        library = _annotations(type_)[2]
        ct = default_registry().get(type_)
        if library is None:
            origin = ct.origin if ct else "no schema"
            raise EngineError(f"cell type `{type_}` ({origin}) has no implementation in the engine: its folder "
                              "has no compiled library (reinstall its plugin with pip)")
        load_cells(library)
        if type_ not in cell_types():
            raise EngineError(f"the library {library} does not define cell type `{type_}` "
                              "(its RT_PLUGIN(...) lists other cells)")
    _loaded.add(type_)


def add_plan_cell(engine: Engine, cell: Mapping[str, Any], addresses: Mapping[str, int]) -> int:
    """One plan cell in the engine."""
    ensure_cell_type(cell["type"])
    return engine.add_cell(cell["type"], engine_config(cell, addresses), cell.get("outputs", 1), name=cell["name"])


def load_channel(engine: Engine, channel: dict[str, Any], addresses: dict[str, int] | None = None,
                 cuts: bool = True) -> dict[str, int]:
    """Add a channel's endpoints and cells to the engine, link them; node ids by name.

    `addresses` gives each endpoint's IPv4 address (real runs); by default, the virtual ones.
    The plan's `cuts` (mark_cuts) split the channel into regions that engine threads run apart;
    `cuts=False` keeps it whole (the same results but for the order of simultaneous events).
    """
    if addresses is None:
        addresses = {name: endpoint_addr(i) for i, name in enumerate(channel["endpoints"])}
    nodes = {}
    for name in channel["endpoints"]:
        nodes[name] = engine.add_endpoint()
        engine.set_endpoint_addr(nodes[name], addresses[name])
    for cell in channel["cells"]:
        nodes[cell["name"]] = add_plan_cell(engine, cell, addresses)
    for link in channel["links"]:
        engine.link(nodes[link["from"]], link["port"], nodes[link["to"]])
    for cut in channel.get("cuts", ()) if cuts else ():
        engine.cut(nodes[cut["from"]], cut["port"])
    return nodes

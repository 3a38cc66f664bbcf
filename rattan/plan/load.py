"""Read a plan file (`rattan compile -o PLAN.json`) back, for `rattan sim` and `rattan run`.

The plan is the boundary between the compiler and the engine, so a plan from a file gets the checks
the compiler's passes gave the one it built: the document against schemas/plan.schema.json, each
cell's config against its type's schema, and the graph (names, links, ports, timeline) against the
cells. Every problem is reported with its JSON path (`$.channels[0].cells[2].config.rate`); a plan
with any is refused before anything starts.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

from ..registry import Registry

PLAN_SUFFIX = ".json"  # never a topology format (.rtn, .toml, .yaml): a compiled plan
MAX_SHOWN = 20


class PlanError(ValueError):
    """A plan file that cannot be read or is not a valid plan; the message lists why, by JSON path."""


def is_plan_file(path: str) -> bool:
    """Whether `rattan sim`/`run` should read this file as a compiled plan."""
    return path.lower().endswith(PLAN_SUFFIX)


@lru_cache(maxsize=1)
def _plan_validator():
    from jsonschema import Draft202012Validator
    schema = json.loads(resources.files("rattan.schemas").joinpath("plan.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def read_plan(path: str, registry: Registry) -> dict[str, Any]:
    """The plan in this file, checked; PlanError naming every problem (by JSON path) otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise PlanError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not a plan: the file is not UTF-8 text") from None
    try:
        plan = json.loads(text)
    except ValueError as e:
        raise PlanError(f"{path}: not a plan: not JSON ({e})") from None
    problems = plan_problems(plan, registry)
    if problems:
        shown = [f"{path}: {where}: {what}" for where, what in problems[:MAX_SHOWN]]
        if len(problems) > MAX_SHOWN:
            shown.append(f"{path}: ... and {len(problems) - MAX_SHOWN} more")
        raise PlanError("\n".join(shown) + "\n(a plan is what `rattan compile -o PLAN.json` writes)")
    return plan


def plan_problems(plan: Any, registry: Registry) -> list[tuple[str, str]]:
    """(JSON path, message) for everything wrong with a plan document; empty for a valid plan."""
    from jsonschema.exceptions import best_match
    found = []
    for e in sorted(_plan_validator().iter_errors(plan), key=lambda e: list(map(str, e.absolute_path))):
        e = best_match(e.context) if e.context else e  # a oneOf's failure, by its most relevant branch
        found.append((e.json_path, e.message))
    if found:  # the structure is wrong: the checks below would stumble on it
        return found
    for i, ch in enumerate(plan["channels"]):
        found += _channel_problems(f"$.channels[{i}]", ch, registry)
    return found


def _channel_problems(at: str, ch: dict, registry: Registry) -> Iterator[tuple[str, str]]:
    from ..passes.validate_params import schema_errors
    outputs: dict[str, int] = {e: 1 for e in ch["endpoints"]}
    types: dict[str, Any] = {}
    for j, cell in enumerate(ch["cells"]):
        here, name = f"{at}.cells[{j}]", cell["name"]
        if name in outputs:
            yield f"{here}.name", f"`{name}` is already the name of " + (
                "an endpoint" if name in ch["endpoints"] else "another cell")
        ct = registry.get(cell["type"])
        if ct is None:
            yield f"{here}.type", f"unknown cell type `{cell['type']}`; known: {', '.join(registry.names())}"
            outputs.setdefault(name, cell["outputs"])
            continue
        types[name] = ct
        errors = schema_errors(registry, ct.name, cell["config"])
        for e in errors:
            yield f"{here}.config" + e.json_path[1:], e.message
        n = ct.output_count(cell["config"]) if not errors else cell["outputs"]
        if n != cell["outputs"]:
            yield f"{here}.outputs", f"a `{ct.name}` with this config has {n} output{'s' * (n != 1)}, not {cell['outputs']}"
        outputs.setdefault(name, n)
        if any(p.get("x-trace") for p in ct.properties.values()) and "trace" not in cell:
            yield here, f"a `{ct.name}` needs its parsed `trace` (the compiler reads the trace file into the plan)"
    for k, link in enumerate(ch["links"]):
        here = f"{at}.links[{k}]"
        for end in ("from", "to"):
            if link[end] not in outputs:
                yield f"{here}.{end}", f"`{link[end]}` is neither a cell nor an endpoint of channel `{ch['name']}`"
        n = outputs.get(link["from"])
        if n is not None and link["port"] >= n:
            yield f"{here}.port", f"`{link['from']}` has no output {link['port']}: " + (
                f"its outputs are 0 to {n - 1}" if n > 1 else "its only output is 0")
    for k, ctl in enumerate(ch.get("controllers", ())):  # Python cells: they drive cells of the channel
        here, ct = f"{at}.controllers[{k}]", registry.get(ctl["type"])
        if ct is None:
            yield f"{here}.type", f"unknown cell type `{ctl['type']}`; known: {', '.join(registry.names())}"
        else:
            types[ctl["cell"]] = ct  # a timeline may change its own parameters
            for e in schema_errors(registry, ct.name, ctl["config"]):
                yield f"{here}.config" + e.json_path[1:], e.message
        for inner, name in ctl["cells"].items():
            if name not in types and name not in outputs:
                yield f"{here}.cells.{inner}", f"`{name}` is not a cell of channel `{ch['name']}`"
    for k, change in enumerate(ch["timeline"]):
        here, cell = f"{at}.timeline[{k}]", change["cell"]
        for key in {"at": ("at_ns",), "every": ("period_ns", "duration_ns")}[change["kind"]]:
            if key not in change:
                yield here, f"a change of kind `{change['kind']}` needs `{key}`"
        ct = types.get(cell)
        if ct is None:
            if cell not in outputs or cell in ch["endpoints"]:
                yield f"{here}.cell", f"`{cell}` is not a cell of channel `{ch['name']}`"
            continue
        if change["param"] not in ct.runtime_params():
            yield f"{here}.param", f"`{change['param']}` of a `{ct.name}` cannot change while it runs; " \
                f"its runtime parameters: {', '.join(ct.runtime_params()) or 'none'}"
            continue
        from jsonschema import Draft202012Validator
        prop = registry.inline_refs(ct.properties[change["param"]])
        for e in Draft202012Validator(prop).iter_errors(change["value"]):
            yield f"{here}.value" + e.json_path[1:], e.message

"""The same path written as .rtn, upstream TOML and YAML compiles to equivalent plans."""
from __future__ import annotations

import json


from rattan.compiler import compile_path
from rattan.plan import build_plan
from rattan.registry import default_registry

from tests.conftest import ROOT


def plan_of(path):
    comp = compile_path(str(path))
    assert comp.ok, [(d.code, d.message) for d in comp.diagnostics]
    return build_plan(comp.program, comp.sources, default_registry())


def paths(channel: dict) -> list[tuple]:
    """Every endpoint-to-endpoint path as (src, (type, config)..., dst): names do not matter."""
    eps = set(channel["endpoints"])
    cells = {c["name"]: c for c in channel["cells"]}
    succ: dict[str, list] = {}
    for l in channel["links"]:
        succ.setdefault(l["from"], []).append((l["port"], l["to"]))
    out = []

    def walk(node, acc):
        for port, nxt in sorted(succ.get(node, [])):
            if nxt in eps:
                out.append((acc[0],) + tuple(acc[1:]) + (nxt,))
            else:
                c = cells[nxt]
                walk(nxt, acc + [(c["type"], port, json.dumps(c["config"], sort_keys=True))])

    for e in sorted(eps):
        walk(e, [e])
    return sorted(out)


def test_broadband_rtn_toml_yaml_are_equivalent():
    base = ROOT / "examples"
    rtn, toml, yaml = (plan_of(base / f"broadband.{ext}") for ext in ("rtn", "toml", "yaml"))
    p_rtn, p_toml, p_yaml = (paths(p["channels"][0]) for p in (rtn, toml, yaml))
    assert p_rtn == p_toml == p_yaml
    assert len(p_rtn) == 2
    # the same cells, one for one: nothing fused or dropped on one side only
    assert sorted(c["type"] for c in rtn["channels"][0]["cells"]) == \
        sorted(c["type"] for c in toml["channels"][0]["cells"])
    assert toml["run"] == yaml["run"]


def test_paths_helper_sees_a_difference():
    base = ROOT / "examples"
    rtn = plan_of(base / "broadband.rtn")
    ch = rtn["channels"][0]
    before = paths(ch)
    ch["cells"][0]["config"]["rate"] += 1
    assert paths(ch) != before

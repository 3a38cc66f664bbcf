"""The plan: every example compiles to a schema-valid, deterministic plan in base units."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from rattan.compiler import compile_path, compile_text
from rattan.passes.context import Options
from rattan.plan import build_plan
from rattan.registry import default_registry

from tests.conftest import ROOT, example_files

PLAN_SCHEMA = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())


def plan_of(path, **kw):
    comp = compile_path(str(path), **kw)
    assert comp.ok, [d.message for d in comp.diagnostics]
    return build_plan(comp.program, comp.sources, default_registry())


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_example_compiles_to_a_valid_plan(path):
    plan = plan_of(path)
    Draft202012Validator(PLAN_SCHEMA).validate(plan)
    assert plan["version"] == 1
    reg = default_registry()
    for ch in plan["channels"]:
        for cell in ch["cells"]:
            errors = list(Draft202012Validator(reg.get(cell["type"]).schema, registry=reg.resolver())
                          .iter_errors(cell["config"]))
            assert not errors, (cell["name"], errors)


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_compile_is_byte_identical_across_processes(path, tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"plan{i}.json"
        env = dict(os.environ, PYTHONHASHSEED=str(i + 1))
        subprocess.run([sys.executable, "-m", "rattan", "compile", str(path), "-o", str(out)],
                       check=True, env=env, cwd=ROOT)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_values_are_in_base_units():
    plan = plan_of(ROOT / "examples" / "broadband.rtn")
    cells = {c["name"]: c for c in plan["channels"][0]["cells"]}
    assert cells["up"]["config"]["rate"] == 20_000_000
    assert cells["up"]["config"]["queue"] == {"kind": "droptail", "packets": 1000}
    assert cells["down"]["config"]["queue"]["target"] == 5_000_000
    assert cells["down"]["config"]["queue"]["interval"] == 100_000_000
    delays = [c for c in cells.values() if c["type"] == "delay"]
    assert [d["config"]["delay"] for d in delays] == [20_000_000, 20_000_000]
    loss = next(c for c in cells.values() if c["type"] == "loss")
    assert loss["config"]["rate"] == pytest.approx(0.001)


def test_cells_are_in_topological_order():
    plan = plan_of(ROOT / "examples" / "multipath.rtn")
    ch = plan["channels"][0]
    pos = {c["name"]: i for i, c in enumerate(ch["cells"])}
    for l in ch["links"]:
        if l["from"] in pos and l["to"] in pos:
            assert pos[l["from"]] < pos[l["to"]], l


def test_compound_cells_are_named_hierarchically():
    plan = plan_of(ROOT / "examples" / "compound.rtn")
    names = [c["name"] for c in plan["channels"][0]["cells"]]
    assert names == ["up.bw", "up.delay", "up.loss", "down.bw", "down.delay", "down.loss"]
    delay = plan["channels"][0]["cells"][1]["config"]["delay"]
    assert delay == 30_000_000  # rtt / 2 = 6000 * 5us * 2 / 2


def test_timeline_in_plan():
    plan = plan_of(ROOT / "examples" / "flaky.rtn")
    tl = plan["channels"][0]["timeline"]
    assert {"kind": "at", "at_ns": 10_000_000_000, "cell": "up", "param": "rate", "value": 5_000_000} in tl
    assert {"kind": "every", "period_ns": 30_000_000_000, "duration_ns": 2_000_000_000,
            "cell": "down", "param": "rate", "value": 0} in tl


def test_trace_is_parsed_into_the_plan():
    plan = plan_of(ROOT / "examples" / "policer.rtn")
    tr = next(c for c in plan["channels"][0]["cells"] if c["type"] == "bw_trace")["trace"]
    lines = [l for l in (ROOT / "examples" / "traces" / "synthetic-lte.down").read_text().split() if l]
    assert len(tr["opportunities_ns"]) == len(lines)
    assert tr["period_ns"] == int(lines[-1]) * 1_000_000


def _compile(text, **kw):
    comp = compile_text(text, **kw)
    assert comp.ok, [d.message for d in comp.diagnostics]
    return build_plan(comp.program, comp.sources, default_registry())["channels"][0]


def test_noop_cells_removed_when_anonymous():
    ch = _compile("channel c {\n left -> pass { } -> delay { delay = 0ms } -> loss { rate = 0% } "
                  "-> bw { rate = 1Mbps } -> right\n right -> left\n}\n")
    assert [c["type"] for c in ch["cells"]] == ["bw"]
    assert {"from": "left", "port": 0, "to": "bw_1"} in ch["links"]


def test_named_noop_cells_kept_unless_frozen():
    text = "channel c {\n cell d: delay { delay = 0ms }\n left -> d -> right\n right -> left\n}\n"
    assert [c["name"] for c in _compile(text)["cells"]] == ["d"]
    assert _compile(text, options=Options(freeze=True))["cells"] == []


def test_timeline_pins_a_cell_even_when_frozen():
    text = ("channel c {\n cell d: delay { delay = 0ms }\n left -> d -> right\n right -> left\n"
            " at 1s { d.delay = 10ms }\n}\n")
    assert [c["name"] for c in _compile(text, options=Options(freeze=True))["cells"]] == ["d"]


def test_adjacent_delays_and_losses_fuse():
    ch = _compile("channel c {\n left -> delay { delay = 10ms } -> delay { delay = 5ms } "
                  "-> loss { rate = 10% } -> loss { rate = 20% } -> right\n right -> left\n}\n")
    types = [c["type"] for c in ch["cells"]]
    assert types == ["delay", "loss"]
    assert ch["cells"][0]["config"]["delay"] == 15_000_000
    assert ch["cells"][1]["config"]["rate"] == pytest.approx(1 - 0.9 * 0.8)


def test_jittered_delays_do_not_fuse():
    ch = _compile("channel c {\n left -> delay { delay = 10ms, jitter = 1ms } -> delay { delay = 5ms } "
                  "-> right\n right -> left\n}\n")
    assert [c["config"]["delay"] for c in ch["cells"]] == [10_000_000, 5_000_000]


def test_gilbert_elliott_losses_do_not_fuse():
    ch = _compile("channel c {\n left -> loss { model = gilbert_elliott { p = 1%, r = 10% } } "
                  "-> loss { rate = 1% } -> right\n right -> left\n}\n")
    assert len(ch["cells"]) == 2


def test_dimensioned_arithmetic():
    ch = _compile("let bdp = 10Mbps * 20ms\nlet ser = 1500B / 10Mbps\nchannel c {\n"
                  " left -> token_bucket { rate = 10Mbps, burst = bdp } -> delay { delay = ser + 1ms } -> right\n"
                  " right -> left\n}\n")
    tb, d = ch["cells"]
    assert tb["config"]["burst"] == 25_000  # 10 Mbit/s * 20 ms = 200 kbit = 25 kB
    assert d["config"]["delay"] == 2_200_000  # 1.2 ms + 1 ms


def test_dot_output_renders(run_cli, tmp_path):
    code, out, err = run_cli("compile", "examples/multipath.rtn", "--emit", "dot")
    assert code == 0
    assert out.startswith("digraph rattan {")
    assert '"shared_bottleneck/back" -> "shared_bottleneck/wired" [taillabel="1"]' in out
    dot = subprocess.run(["which", "dot"], capture_output=True, text=True).stdout.strip()
    if dot:
        svg = subprocess.run([dot, "-Tsvg"], input=out, capture_output=True, text=True, check=True).stdout
        assert "<svg" in svg

"""`rattan convert`: upstream TOML/YAML to .rtn that checks and compiles to the same plan."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import ROOT
from tests.plan.test_equivalence import paths


@pytest.mark.parametrize("name", ["broadband.toml", "broadband.yaml"])
def test_converted_file_compiles_to_the_same_plan(run_cli, tmp_path, name):
    src = tmp_path / name
    shutil.copy(ROOT / "examples" / name, src)
    out = tmp_path / "converted.rtn"
    code, _, err = run_cli("convert", str(src), "-o", str(out))
    assert code == 0, err
    text = out.read_text()
    assert text.startswith(f"# Converted from {name}")
    code, _, err = run_cli("check", str(out))
    assert code == 0, err
    code, original, _ = run_cli("compile", str(src))
    code2, converted, _ = run_cli("compile", str(out))
    assert code == code2 == 0
    a, b = json.loads(original), json.loads(converted)
    assert paths(a["channels"][0]) == paths(b["channels"][0])
    assert [c["name"] for c in a["channels"][0]["cells"]] == [c["name"] for c in b["channels"][0]["cells"]]
    # the converted file is already canonical
    code, _, err = run_cli("fmt", "--check", str(out))
    assert code == 0, err


def test_convert_refuses_rtn(run_cli):
    code, _, err = run_cli("convert", "examples/broadband.rtn")
    assert code == 2 and "convert reads" in err


def test_convert_reports_document_errors(run_cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[cells.a]\ntype = "Bww"\n[links]\nleft = "a"\na = "right"\n')
    code, out, err = run_cli("convert", str(bad))
    assert code == 1 and "RTN072" in err and out == ""


# issue 12 item 3: cells upstream builds but that carry nothing to an endpoint are warnings in
# TOML/YAML and left out of its plan; the converted .rtn (where they would be errors) leaves them out
from tests.passes.test_upstream_graph import DEAD_END, IDLE_CYCLE, UNLINKED  # noqa: E402

ROUTER_DEAD_END = """\
[cells.r]
type = "Router"
egress_connections = ["right", "sink"]
routing_table = [{ prefix = "192.0.2.0/24", interface_id = 0 }, { prefix = "0.0.0.0/0", interface_id = 1 }]

[cells.sink]
type = "Delay"
delay = "1ms"

[cells.down]
type = "Delay"
delay = "1ms"

[links]
left = "r"
right = "down"
down = "left"
"""


def _plan_shape(plan: dict):
    ch = plan["channels"][0]
    return ([(c["name"], c["type"], c["config"], c["outputs"]) for c in ch["cells"]], ch["links"],
            ch["endpoints"])


@pytest.mark.parametrize("text, left_out", [
    (UNLINKED, ["spare"]),
    (DEAD_END, ["up", "sink"]),
    (IDLE_CYCLE, ["c1", "c2"]),
    (ROUTER_DEAD_END, ["sink"]),
], ids=["unlinked", "dead_end", "idle_cycle", "router_port_into_dead_end"])
def test_converted_file_leaves_out_idle_cells_and_compiles_to_the_same_plan(run_cli, tmp_path, text, left_out):
    src = tmp_path / "path.toml"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "path.rtn"
    code, _, err = run_cli("convert", str(src), "-o", str(out))
    assert code == 0, err
    converted = out.read_text()
    assert "#   " + ", ".join(left_out) + "\n" in converted
    for name in left_out:
        assert f"cell {name}:" not in converted and f"{name} ->" not in converted
    code, _, err = run_cli("check", str(out))
    assert code == 0, err  # no error in .rtn: what would be one is gone
    _, original, _ = run_cli("compile", "--no-optimize", str(src))
    _, again, _ = run_cli("compile", "--no-optimize", str(out))
    assert _plan_shape(json.loads(original)) == _plan_shape(json.loads(again))
    assert run_cli("fmt", "--check", str(out))[0] == 0

"""`rattan sim PLAN.json` and `rattan run PLAN.json` run a compiled plan (`rattan compile -o`) exactly
as they run its source, and refuse an invalid one with a message naming the JSON path, before
anything starts."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, example_files
from tests.runtime.conftest import WHY_NOT, no_leftovers  # noqa: F401 - a fixture, used by name

SIM = ("--duration", "3s", "--seed", "7", "--json")


def _compiled(run_cli, source, tmp_path) -> tuple[dict, str]:
    out = tmp_path / (source.stem + ".json")
    code, _, err = run_cli("compile", str(source), "-o", str(out))
    assert code == 0, err
    return json.loads(out.read_text()), str(out)


def _flow(plan: dict) -> list[str]:
    a, b = plan["channels"][0]["endpoints"][:2]
    return ["--flow", f"{a}->{b}:poisson:30Mbps", "--flow", f"{b}->{a}:cbr:1Mbps"]


@pytest.mark.parametrize("source", example_files((".rtn",)), ids=lambda p: p.name)
def test_a_compiled_plan_simulates_exactly_as_its_source(source, run_cli, tmp_path):
    plan, path = _compiled(run_cli, source, tmp_path)
    code, from_source, err = run_cli("sim", str(source), *_flow(plan), *SIM)
    assert code == 0, err
    code, from_plan, err = run_cli("sim", path, *_flow(plan), *SIM)
    assert code == 0, err
    assert json.loads(from_plan) == json.loads(from_source)
    assert any(json.loads(from_plan)["series"]["cells"][c]["out_bps"] for c in json.loads(from_plan)["series"]["cells"])


def _drop_cells(p):
    del p["channels"][0]["cells"]


def _rate_x(p):
    p["channels"][0]["cells"][0]["config"]["rate"] = "x"


def _port_3(p):
    p["channels"][0]["links"][0]["port"] = 3


def _unknown_type(p):
    p["channels"][0]["cells"][1]["type"] = "bww"


def _unknown_target(p):
    p["channels"][0]["links"][1]["to"] = "nowhere"


def _wrong_outputs(p):
    p["channels"][0]["cells"][0]["outputs"] = 2


def _timeline_on_a_fixed_param(p):
    p["channels"][0]["timeline"] = [{"kind": "at", "at_ns": 0, "cell": "up", "param": "queue", "value": 1}]


def _timeline_bad_value(p):
    p["channels"][0]["timeline"] = [{"kind": "at", "at_ns": 0, "cell": "up", "param": "rate", "value": -1}]


def _bad_version(p):
    p["version"] = 2


# broadband.rtn's plan: cells up (bw), down (bw), delay_1, delay_2, loss_1; links sorted by `from`
BROKEN = [
    (_drop_cells, "$.channels[0]: 'cells' is a required property"),
    (_rate_x, "$.channels[0].cells[0].config.rate: 'x' is not of type 'integer'"),
    (_port_3, "$.channels[0].links[0].port: `delay_1` has no output 3: its only output is 0"),
    (_unknown_type, "$.channels[0].cells[1].type: unknown cell type `bww`; known: "),
    (_unknown_target, "$.channels[0].links[1].to: `nowhere` is neither a cell nor an endpoint of channel `broadband`"),
    (_wrong_outputs, "$.channels[0].cells[0].outputs: a `bw` with this config has 1 output, not 2"),
    (_timeline_on_a_fixed_param, "$.channels[0].timeline[0].param: `queue` of a `bw` cannot change while it runs; "
                                 "its runtime parameters: rate, overhead"),
    (_timeline_bad_value, "$.channels[0].timeline[0].value: -1 is less than the minimum of 0"),
    (_bad_version, "$.version: 1 was expected"),
]


@pytest.fixture
def broadband(run_cli, tmp_path):
    plan, _ = _compiled(run_cli, ROOT / "examples" / "broadband.rtn", tmp_path)
    assert [c["name"] for c in plan["channels"][0]["cells"]] == ["up", "down", "delay_1", "delay_2", "loss_1"]
    assert plan["channels"][0]["links"][0]["from"] == "delay_1"
    return plan


@pytest.fixture
def nothing_starts(monkeypatch):
    """Fails the test if the sim or the run is started at all."""
    def refuse(*a, **k):
        raise AssertionError("an invalid plan was started")
    monkeypatch.setattr("rattan.runtime.sim.run", refuse)
    monkeypatch.setattr("rattan.runtime.run.run", refuse)


@pytest.mark.parametrize("breaks, message", BROKEN, ids=lambda x: getattr(x, "__name__", "")[1:])
def test_a_broken_plan_is_refused_naming_its_json_path(breaks, message, broadband, run_cli, tmp_path,
                                                       nothing_starts):
    breaks(broadband)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(broadband))
    for command in (["sim", str(path), "--flow", "left->right:cbr:1Mbps", "--duration", "1s"],
                    ["run", str(path), "--", "true"]):
        code, out, err = run_cli(*command)
        assert code == 2 and out == "", (command, err)
        assert f"rattan: {path}: {message}" in err, err


def test_every_problem_is_listed(broadband, run_cli, tmp_path, nothing_starts):
    _port_3(broadband)
    _unknown_target(broadband)
    _rate_x(broadband)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(broadband))
    code, _, err = run_cli("sim", str(path), "--flow", "left->right:cbr:1Mbps", "--duration", "1s")
    assert code == 2
    assert re.findall(r"plan\.json: (\$\S*):", err) == [
        "$.channels[0].cells[0].config.rate", "$.channels[0].links[0].port", "$.channels[0].links[1].to"], err


def test_what_is_not_a_plan(run_cli, tmp_path, nothing_starts):
    bad = tmp_path / "plan.json"
    bad.write_text("{nope")
    code, _, err = run_cli("sim", str(bad), "--flow", "left->right:cbr:1Mbps", "--duration", "1s")
    assert code == 2 and f"{bad}: not a plan: not JSON" in err
    code, _, err = run_cli("run", str(tmp_path / "missing.json"), "--", "true")
    assert code == 2 and "cannot read" in err and "missing.json" in err


@pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
def test_run_with_an_invalid_plan_makes_no_namespace(broadband, tmp_path, no_leftovers):  # noqa: F811
    """As root, in a process of its own: refused with the message, no rattan namespace and no instance
    record left (that run() is never reached at all is shown in process, by `nothing_starts`)."""
    _rate_x(broadband)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(broadband))
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    records = set(os.listdir("/run/rattan/instances")) if os.path.isdir("/run/rattan/instances") else set()
    r = subprocess.run([sys.executable, "-m", "rattan", "run", str(path), "--", "true"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and "config.rate: 'x' is not of type 'integer'" in r.stderr, r.stderr
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    assert not {n for n in after - before if n.startswith("rattan-")}
    new = set(os.listdir("/run/rattan/instances")) - records if os.path.isdir("/run/rattan/instances") else set()
    assert not new, new

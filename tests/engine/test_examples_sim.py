"""Every reference example runs under `rattan sim`, conserving packets in every cell, deterministically."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rattan.compiler import compile_path
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.sim import run

from tests.conftest import ROOT, example_files


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_example_runs_in_virtual_time(path):
    comp = compile_path(str(path))
    plan = build_plan(comp.program, comp.sources, default_registry())
    ch = plan["channels"][0]
    eps = ch["endpoints"]
    flows = [f"{eps[0]}->{eps[-1]}:cbr:8Mbps", f"{eps[-1]}->{eps[0]}:poisson:4Mbps"]
    r = run(plan, None, flows, "5s", 1)
    assert all(f["received_packets"] > 0 for f in r["flows"]), r["flows"]
    for name, c in r["cells"].items():
        assert c["in_packets"] + c.get("created_packets", 0) == \
            c["out_packets"] + c["dropped_packets"] + c["queued_packets"], name


def test_sim_json_is_identical_across_processes():
    args = [sys.executable, "-m", "rattan", "sim", str(ROOT / "examples" / "bursty_loss.rtn"),
            "--flow", "left->right:poisson:20Mbps", "--duration", "3s", "--seed", "7", "--json"]
    a = subprocess.run(args, capture_output=True, check=True).stdout
    b = subprocess.run(args, capture_output=True, check=True).stdout
    c = subprocess.run(args[:-2] + ["8", "--json"], capture_output=True, check=True).stdout
    assert a == b and a != c
    assert json.loads(a)["seed"] == 7

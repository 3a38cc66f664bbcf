"""Golden plans: the plan of every example, stored and reviewed in the diff.

Regenerate with `RATTAN_REGEN=1 pytest tests/golden/test_plans_golden.py`.
Paths on this machine are written as `<ROOT>` so the files do not depend on
where the repository is checked out.
"""
from __future__ import annotations

import os

import pytest

from rattan.compiler import compile_path
from rattan.plan import build_plan, plan_json
from rattan.registry import default_registry

from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "plans"
INPUTS = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".rtn", ".toml", ".yaml"))


def current_plan(path) -> str:
    rel = os.path.relpath(path, ROOT)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        comp = compile_path(rel)
    finally:
        os.chdir(cwd)
    assert comp.ok, [d.message for d in comp.diagnostics]
    plan = build_plan(comp.program, comp.sources, default_registry())
    for ch in plan["channels"]:
        for c in ch["cells"]:
            if "trace" in c:  # thousands of numbers: keep the golden readable
                tr = c["trace"]
                c["trace"] = {k: (v if not isinstance(v, list) else f"<{len(v)} items>") for k, v in tr.items()}
    return plan_json(plan).replace(str(ROOT), "<ROOT>")


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_plan_matches_golden(path):
    expected_file = GOLDEN / (path.name + ".plan.json")
    text = current_plan(path)
    if os.environ.get("RATTAN_REGEN"):
        expected_file.write_text(text)
    assert expected_file.exists(), f"no golden plan; run with RATTAN_REGEN=1 to create {expected_file.name}"
    assert text == expected_file.read_text()

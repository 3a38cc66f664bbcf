"""rattan.compile: diagnostics as data (code, severity, line, column, help), the plan `rattan compile`
writes and its hash, let overrides, and rattan.load_plan."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

import rattan
from tests.conftest import EXAMPLES, ROOT

GOOD = """channel c {
    endpoints left, right
    left -> bw { rate = 10Mbps } -> delay { delay = 5ms } -> right
    right -> delay { delay = 5ms } -> left
}
"""
# line 3, column 25: `20` has no unit (RTN021); line 4: a misspelt parameter (with a "did you mean")
BAD = """channel c {
    endpoints left, right
    left -> bw { rate = 20 } -> right
    right -> delay { dealy = 5ms } -> left
}
"""


def test_a_bad_file_gives_each_error_as_data_with_code_line_and_column(tmp_path, run_cli):
    path = tmp_path / "bad.rtn"
    path.write_text(BAD)
    c = rattan.compile(path)
    assert not c.ok
    by_code = {d.code: d for d in c.diagnostics}
    rate = by_code["RTN021"]
    assert (rate.severity, rate.file, rate.line, rate.column) == ("error", str(path), 3, 25)
    assert BAD.splitlines()[rate.line - 1][rate.column - 1:].startswith("20")
    misspelt = [d for d in c.errors if d.line == 4]
    assert misspelt and any("delay" in h for d in misspelt for h in d.help), misspelt
    assert str(rate).startswith(f"{path}:3:25: error[RTN021]: ")
    # the same data as `rattan check --format json`
    code, out, _ = run_cli("check", "--format", "json", str(path))
    assert code == 1
    assert [d.to_dict() for d in c.diagnostics] == json.loads(out)


def test_errors_raise_only_when_asked_with_the_rendered_text(tmp_path):
    c = rattan.compile(text=BAD, name="bad.rtn")
    with pytest.raises(rattan.CompileError) as e:
        c.raise_for_errors()
    assert "error[RTN021]" in str(e.value) and "--> bad.rtn:3:25" in str(e.value)
    assert e.value.diagnostics == c.diagnostics
    with pytest.raises(rattan.CompileError):
        c.plan  # noqa: B018  (no plan from a file with errors)
    assert rattan.compile(text=GOOD, name="good.rtn").raise_for_errors().ok


def test_the_plan_is_what_rattan_compile_writes_and_its_hash_is_of_the_canonical_json(run_cli):
    path = EXAMPLES / "broadband.rtn"
    c = rattan.compile(path)
    code, out, _ = run_cli("compile", str(path))
    assert code == 0
    assert c.plan == json.loads(out) and c.plan_json() == out
    canonical = json.dumps(json.loads(out), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert c.plan_hash == hashlib.sha256(canonical.encode()).hexdigest() == rattan.plan_hash(c.plan)
    text = rattan.compile(text=path.read_text(), name=str(path))
    assert text.plan_hash == c.plan_hash  # a text compiles as the file it is named after


def test_lets_change_the_plan_and_an_unknown_let_is_a_diagnostic():
    text = "let rate = 20Mbps\nchannel c {\n  endpoints left, right\n  left -> bw { rate = rate } -> right\n" \
           "  right -> left\n}\n"
    base = rattan.compile(text=text, name="x.rtn")
    slow = rattan.compile(text=text, name="x.rtn", lets={"rate": "2Mbps"})
    assert base.plan["channels"][0]["cells"][0]["config"]["rate"] == 20_000_000
    assert slow.plan["channels"][0]["cells"][0]["config"]["rate"] == 2_000_000
    assert slow.plan_hash != base.plan_hash
    wrong = rattan.compile(text=text, name="x.rtn", lets={"rat": "2Mbps"})
    assert [d.code for d in wrong.errors] == ["RTN091"]


def test_a_file_that_cannot_be_read_raises(tmp_path):
    with pytest.raises(rattan.CompileError, match="no such file"):
        rattan.compile(tmp_path / "missing.rtn")
    with pytest.raises(TypeError):
        rattan.compile(tmp_path / "x.rtn", text=GOOD)


def test_load_plan_reads_a_compiled_plan_and_refuses_a_damaged_one(tmp_path):
    c = rattan.compile(text=GOOD, name="good.rtn")
    good = tmp_path / "plan.json"
    good.write_text(c.plan_json())
    assert rattan.load_plan(good) == c.plan
    broken = json.loads(c.plan_json())
    broken["channels"][0]["cells"][0]["config"]["rate"] = "fast"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    with pytest.raises(rattan.CompileError, match=r"\$\.channels\[0\]\.cells\[0\]\.config\.rate"):
        rattan.load_plan(bad)


def test_import_rattan_does_not_import_the_library():
    """The CLI imports `rattan`: the library (and what it imports) loads on first use only."""
    code = ("import sys, rattan; assert 'rattan.library' not in sys.modules; "
            "assert 'rattan.runtime.run' not in sys.modules; rattan.compile; "
            "assert 'rattan.library' in sys.modules; print(rattan.Diagnostic.__module__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "rattan.library"

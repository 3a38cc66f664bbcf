"""Pass `set_lets`: `let`s of the entry file set from outside (`--let`, rattan.compile(lets=...))."""
import json
import subprocess
import sys

from rattan.compiler import compile_text
from rattan.passes.context import Options
from rattan.plan import build_plan
from rattan.registry import default_registry

SRC = """\
let rate = 10Mbps
channel main {
    endpoints left, right
    let rtt = 40ms
    cell shaper: bw { rate = rate }
    left -> shaper -> delay { delay = rtt / 2 } -> right
    right -> delay { delay = rtt / 2 } -> left
}
"""


def _plan(lets):
    comp = compile_text(SRC, "t.rtn", options=Options(lets=lets))
    assert comp.ok, comp.diagnostics
    return build_plan(comp.program, comp.sources, default_registry())


def _cell(plan, type_):
    return [c for c in plan["channels"][0]["cells"] if c["type"] == type_]


def test_a_file_scope_let_takes_the_value_given():
    assert _cell(_plan({}), "bw")[0]["config"]["rate"] == 10_000_000
    assert _cell(_plan({"rate": "2Mbps"}), "bw")[0]["config"]["rate"] == 2_000_000


def test_a_channel_scope_let_too_and_expressions_are_rtn():
    delays = _cell(_plan({"rtt": "2 * 50ms"}), "delay")
    assert {c["config"]["delay"] for c in delays} == {50_000_000}


def _diags(lets, src=SRC, name="t.rtn"):
    comp = compile_text(src, name, options=Options(lets=lets))
    return [(d.code, d.message, d.help) for d in comp.diagnostics]


def test_an_unknown_name_is_rtn091_with_a_suggestion():
    [(code, msg, helps)] = _diags({"rat": "2Mbps"})
    assert code == "RTN091" and "`let rat`" in msg
    assert "did you mean `rate`?" in helps


def test_a_value_that_does_not_parse_or_has_the_wrong_dimension():
    assert [c for c, _, _ in _diags({"rate": "2Mbps +"})] == ["RTN001"]
    assert [c for c, _, _ in _diags({"rate": "3ms"})] == ["RTN021"]


def test_a_toml_document_has_no_lets():
    src = '[cells.up]\ntype = "Bw"\nbandwidth = "10Mbps"\n'
    diags = _diags({"rate": "1Mbps"}, src, "x.toml")
    assert ("RTN091", "the file has no `let rate` to set") in [(c, m) for c, m, _ in diags]


def test_the_cli_flag_on_compile_and_its_misuse(tmp_path):
    f = tmp_path / "t.rtn"
    f.write_text(SRC)
    out = subprocess.run([sys.executable, "-m", "rattan", "compile", str(f), "--let", "rate=3Mbps"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert _cell(json.loads(out.stdout), "bw")[0]["config"]["rate"] == 3_000_000
    bad = subprocess.run([sys.executable, "-m", "rattan", "check", str(f), "--let", "rate"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "expected NAME=VALUE" in bad.stderr
    plan = tmp_path / "p.json"
    plan.write_text(out.stdout)
    sim = subprocess.run([sys.executable, "-m", "rattan", "sim", str(plan), "--let", "rate=1Mbps",
                          "--duration", "1s", "--flow", "left->right:cbr:1Mbps"], capture_output=True, text=True)
    assert sim.returncode == 2 and "compiled plan" in sim.stderr

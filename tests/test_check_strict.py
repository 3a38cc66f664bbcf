"""`rattan check --strict` (PRODUCT.md): warnings count as errors, exit 1. `compile --strict` too,
and then no plan is written. Diagnostics keep their severity: only the verdict changes."""
from __future__ import annotations

import json

import pytest

# an unlinked cell: a warning in upstream TOML (tests/passes/test_upstream_graph.py)
UNLINKED_TOML = """\
[cells.up]
type = "Delay"
delay = "10ms"

[cells.spare]
type = "Delay"
delay = "1ms"

[links]
left = "up"
up = "right"
right = "left"
"""
CLEAN_RTN = "channel c {\n left -> delay { delay = 10ms } -> right\n right -> left\n}\n"
WARNING_RTN = "channel c {\n endpoints left, right, spare\n left -> right\n right -> left\n}\n"  # RTN045
ERROR_RTN = "channel c {\n left -> delay { delay = 10 } -> right\n right -> left\n}\n"  # RTN021


@pytest.fixture
def files(tmp_path):
    out = {}
    for name, text in [("unlinked.toml", UNLINKED_TOML), ("clean.rtn", CLEAN_RTN),
                       ("warning.rtn", WARNING_RTN), ("error.rtn", ERROR_RTN)]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        out[name] = str(tmp_path / name)
    return out


@pytest.mark.parametrize("name, plain, strict", [
    ("clean.rtn", 0, 0),
    ("warning.rtn", 0, 1),
    ("unlinked.toml", 0, 1),
    ("error.rtn", 1, 1),
])
def test_strict_makes_warnings_fail_the_check(run_cli, files, name, plain, strict):
    assert run_cli("check", files[name])[0] == plain
    assert run_cli("check", "--strict", files[name])[0] == strict


def test_strict_fails_when_any_of_several_files_warns(run_cli, files):
    assert run_cli("check", "--strict", files["clean.rtn"], files["unlinked.toml"])[0] == 1
    assert run_cli("check", "--strict", files["clean.rtn"], files["clean.rtn"])[0] == 0


def test_strict_keeps_the_severity_and_says_why_it_fails(run_cli, files):
    code, _, err = run_cli("check", "--strict", files["unlinked.toml"])
    assert code == 1
    assert err.startswith("warning[RTN042]: cell `spare` is in no link")
    assert err.endswith("error: 1 warning found (--strict: warnings count as errors)\n")
    _, _, err = run_cli("check", files["unlinked.toml"])
    assert err.endswith("warning: 1 warning found\n")


def test_strict_json_keeps_severities(run_cli, files):
    code, out, _ = run_cli("check", "--strict", "--format", "json", files["unlinked.toml"])
    assert code == 1
    assert [(d["code"], d["severity"], d["line"]) for d in json.loads(out)] == [("RTN042", "warning", 5)]


def test_compile_strict_writes_no_plan_when_there_is_a_warning(run_cli, files, tmp_path):
    plan = tmp_path / "plan.json"
    assert run_cli("compile", "--strict", files["unlinked.toml"], "-o", str(plan))[0] == 1
    assert not plan.exists()
    assert run_cli("compile", files["unlinked.toml"], "-o", str(plan))[0] == 0
    assert [c["name"] for c in json.loads(plan.read_text())["channels"][0]["cells"]] == ["up"]
    assert run_cli("compile", "--strict", files["clean.rtn"], "-o", str(tmp_path / "clean.json"))[0] == 0
    assert (tmp_path / "clean.json").exists()


@pytest.mark.parametrize("command", ["check", "compile"])
def test_help_describes_strict(capsys, command):
    from rattan.cli import main
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--strict count warnings as errors: exit 1 if there is any warning" in out

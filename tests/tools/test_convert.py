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
    bad.write_text('[cells.a]\ntype = "Bw"\nbandwdth = "1Mbps"\n[links]\nleft = "a"\na = "right"\n')
    code, out, err = run_cli("convert", str(bad))
    # upstream ignores the misspelt key (a warning) and refuses the Bw cell without `bandwidth`
    assert code == 1 and "RTN075" in err and "RTN014" in err and out == ""

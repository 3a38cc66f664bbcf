"""`rattan check` knows an experiment file (YAML with `workload`) and checks it as `rattan batch`
would, with the same diagnostics as data; a topology in YAML is still checked as a topology."""
from __future__ import annotations

import json
import shutil

from rattan.cli import main
from tests.conftest import ROOT

GOOD = """\
topology: broadband.rtn
sweep: {count: [2, 3]}
workload:
  - endpoint: left
    name: ping
    command: "ping -c {count} $RATTAN_RIGHT_IP"
    extract: ping
"""


def _write(tmp_path, text: str):
    shutil.copy(ROOT / "examples" / "broadband.rtn", tmp_path)
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return str(path)


def test_a_good_experiment_checks_clean(tmp_path, capsys):
    assert main(["check", _write(tmp_path, GOOD)]) == 0
    assert capsys.readouterr().err == ""


def test_a_misspelt_placeholder_and_extractor_are_pointed_at(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace("{count}", "{cuont}").replace("extract: ping", "extract: pnig"))
    assert main(["check", "--format", "json", path]) == 1
    found = {d["code"]: d for d in json.loads(capsys.readouterr().out)}
    assert set(found) == {"RTX003", "RTX009"}
    d = found["RTX003"]
    line = GOOD.splitlines()[d["line"] - 1].replace("{count}", "{cuont}")
    assert line[d["column"] - 1:d["end_column"] - 1] == "{cuont}"  # the placeholder, not the whole command
    assert d["help"] == ["did you mean `{count}`?"]
    assert "did you mean `ping`?" in found["RTX009"]["help"]


def test_a_yaml_topology_is_still_a_topology(tmp_path, capsys):
    topo = tmp_path / "t.yaml"
    topo.write_text("cells:\n  up:\n    type: Bw\n    bandwidth: 10Mbps\nlinks:\n  left: up\n  up: right\n")
    code = main(["check", str(topo)])
    err = capsys.readouterr().err
    assert "RTX" not in err and code in (0, 1), err

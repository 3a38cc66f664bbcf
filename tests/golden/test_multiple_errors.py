"""One file with many independent mistakes: `rattan check` reports every one of them."""
from __future__ import annotations

import json

from rattan.cli import main

SOURCE = """\
let rtt = 40ms

channel c {
    cell up: bw { rate = 10Mbit }
    cell down: bw { rate = 10Mbps, qeue = droptail { packets = 10 } }
    cell slow: delay { delay = rtt + 5Mbps }
    cell gone: delay { delay = 1ms }
    let broken = (1ms +
    left -> up -> right
    right -> down -> slow -> left
}
"""

CODES = {
    "RTN001",  # syntax error in `let broken = (1ms +`
    "RTN004",  # unknown unit `Mbit`
    "RTN013",  # unknown parameter `qeue`
    "RTN020",  # a rate added to a time
    "RTN042",  # `gone` is on no path
}


def test_every_error_is_reported(tmp_path, capsys):
    path = tmp_path / "many.rtn"
    path.write_text(SOURCE, encoding="utf-8")
    status = main(["check", str(path), "--color", "never", "--format", "json"])
    items = json.loads(capsys.readouterr().out)
    assert status == 1
    found = {d["code"] for d in items}
    assert CODES <= found, f"missing {sorted(CODES - found)}; got {sorted(found)}"
    lines = {d["code"]: d["line"] for d in items}
    assert lines["RTN001"] == 8 and lines["RTN004"] == 4 and lines["RTN013"] == 5
    assert lines["RTN020"] == 6 and lines["RTN042"] == 7


def test_text_output_counts_every_error(tmp_path, capsys):
    path = tmp_path / "many.rtn"
    path.write_text(SOURCE, encoding="utf-8")
    assert main(["check", str(path), "--color", "never"]) == 1
    err = capsys.readouterr().err
    for code in CODES:
        assert f"error[{code}]" in err
    assert err.rstrip().endswith(f"error: {err.count('error[')} errors found")

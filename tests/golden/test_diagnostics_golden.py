"""Golden diagnostics: one small bad input per diagnostic code, and what `rattan check` prints.

Each `diagnostics/RTNxxx_description.{rtn,toml,yaml}` is checked with the CLI, run from the
repository root so paths in the output are stable; its `.expected` file holds stderr and
a final `exit: N` line. `RATTAN_REGEN=1 pytest tests/golden` rewrites the `.expected` files.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from rattan.cli import main
from rattan.diagnostics.codes import CODES
from rattan.passes.reading import MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "diagnostics"
INPUTS = sorted(p for p in HERE.iterdir() if p.suffix in (".rtn", ".toml", ".yaml") and p.is_file())
REGEN = os.environ.get("RATTAN_REGEN") == "1"
NAME = re.compile(r"^(RTN\d{3})_[a-z0-9_]+$")

# Codes of the upstream TOML/YAML front end: golden inputs are added with that front end.
FRONT_END_CODES = {"RTN070", "RTN071", "RTN072", "RTN073", "RTN074"}


@pytest.fixture(autouse=True)
def _oversized_import():
    """RTN006 needs an existing file that cannot be read; as root only the size limit does that."""
    big = HERE / "aux" / "oversized.rtn"
    with open(big, "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: no disk space used
    yield
    big.unlink(missing_ok=True)


ARGS = "# check args:"  # a golden input's first line may give more arguments of `rattan check`


def check(path: Path, capsys, *extra: str) -> tuple[str, str, int]:
    """stdout, stderr and exit status of `rattan check` on a golden input, from the repo root."""
    rel = path.relative_to(ROOT).as_posix()
    first = path.read_text(encoding="utf-8", errors="replace").partition("\n")[0]
    if first.startswith(ARGS):
        extra = (*first[len(ARGS):].split(), *extra)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        status = main(["check", rel, "--color", "never", *extra])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return out, err, status


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_golden(path: Path, capsys):
    _, err, status = check(path, capsys)
    got = f"{err}exit: {status}\n"
    expected = path.with_suffix(".expected")
    if REGEN:
        expected.write_text(got, encoding="utf-8")
        return
    assert expected.exists(), f"no {expected.name}: run with RATTAN_REGEN=1 and review it"
    assert got == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_golden_reports_its_code(path: Path, capsys):
    m = NAME.match(path.stem)
    assert m, f"{path.name}: name goldens RTNxxx_short_description"
    code = m.group(1)
    assert code in CODES, f"{path.name}: {code} is not in rattan/diagnostics/codes.py"
    _, err, status = check(path, capsys)
    sev = CODES[code].severity
    assert f"{sev}[{code}]" in err
    assert status == (1 if sev == "error" else 0)


def test_every_code_has_a_golden():
    covered = {NAME.match(p.stem).group(1) for p in INPUTS if NAME.match(p.stem)}
    front_end_ready = (ROOT / "rattan" / "frontends" / "upstream.py").exists()
    pending = set() if front_end_ready else FRONT_END_CODES
    missing = sorted(set(CODES) - covered - pending)
    assert not missing, f"codes without a golden input: {', '.join(missing)}"


def test_golden_inputs_have_expected_files():
    stale = [p.name for p in HERE.glob("*.expected")
             if not any(p.with_suffix(s).exists() for s in (".rtn", ".toml", ".yaml"))]
    assert not stale, f"expected files without an input: {stale}"


def test_json_format_has_product_fields(capsys):
    out, err, status = check(HERE / "RTN021_bare_number.rtn", capsys, "--format", "json")
    assert status == 1
    assert err == ""
    items = json.loads(out)
    assert isinstance(items, list) and len(items) == 1
    d = items[0]
    assert {"code", "severity", "message", "file", "line", "column", "end_line", "end_column"} <= set(d)
    assert d["code"] == "RTN021"
    assert d["severity"] == "error"
    assert d["file"] == "tests/golden/diagnostics/RTN021_bare_number.rtn"
    assert (d["line"], d["column"], d["end_line"], d["end_column"]) == (2, 29, 2, 31)
    assert "bare number" in d["message"]

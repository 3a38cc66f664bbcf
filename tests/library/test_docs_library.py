"""docs/library.md names every public name of the library, and its examples run: the `python`
blocks as anyone, the `python root` blocks in a real run (root; skipped elsewhere)."""
from __future__ import annotations

import contextlib
import io
import re

import pytest

import rattan
import rattan.library
from tests.conftest import ROOT

DOC = ROOT / "docs" / "library.md"
BLOCK = re.compile(r"^```python( root)?\n(.*?)^```$", re.M | re.S)
BLOCKS = [(m.group(1) is not None, m.group(2), DOC.read_text()[:m.start()].count("\n") + 1)
          for m in BLOCK.finditer(DOC.read_text())]


def test_every_public_name_is_documented():
    text = DOC.read_text()
    for name in rattan.library.__all__:
        assert f"`rattan.{name}" in text, name
        assert getattr(rattan, name) is getattr(rattan.library, name)


def _run(code: str, monkeypatch) -> str:
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    return out.getvalue()


@pytest.mark.parametrize("code", [c for root, c, _ in BLOCKS if not root],
                         ids=[f"line{n}" for root, _, n in BLOCKS if not root])
def test_the_examples_run(code, monkeypatch):
    _run(code, monkeypatch)


@pytest.mark.netns
@pytest.mark.usefixtures("no_leftovers")
@pytest.mark.parametrize("code", [c for root, c, _ in BLOCKS if root],
                         ids=[f"line{n}" for root, _, n in BLOCKS if root])
def test_the_examples_run_as_root(code, monkeypatch):
    _run(code, monkeypatch)


def test_the_diagnostic_shown_is_what_it_prints(monkeypatch):
    shown = re.search(r"print\(d.code, d.severity, d.line, d.column\)\s+# (.*)", DOC.read_text()).group(1)
    code = next(c for root, c, _ in BLOCKS if "bad.errors[0]" in c)
    printed = [line for line in _run(code, monkeypatch).splitlines() if line.startswith("RTN")]
    assert printed[0] == shown.strip()

"""The examples are in `rattan fmt` style, as CI checks (`rattan fmt --check examples`), and a folder
given to `rattan fmt` means every `.rtn` file under it."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT

# The repository's copies, not ../shared/examples: those are the upstream reference, read-only
# here and kept as written; the copies are what ships and what CI checks.
EXAMPLES = sorted((ROOT / "examples").rglob("*.rtn"))


def test_the_examples_folder_is_formatted(run_cli):
    code, _, err = run_cli("fmt", "--check", "examples")
    assert code == 0, err
    assert err == ""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT / "examples")))
def test_each_example_is_formatted(run_cli, path):
    code, out, err = run_cli("fmt", "--stdout", str(path))
    assert code == 0, err
    assert out == path.read_text(encoding="utf-8")


def test_fmt_of_a_folder_covers_the_rtn_files_under_it(run_cli, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / ".hidden").mkdir()
    ugly = "channel x {\n  left->right\n  right  ->left\n}\n"
    for name in ("a.rtn", "lib/b.rtn", ".hidden/c.rtn", "notes.txt"):
        (tmp_path / name).write_text(ugly)
    code, _, err = run_cli("fmt", "--check", str(tmp_path))
    assert code == 1
    assert err.splitlines() == [f"would reformat {tmp_path / 'a.rtn'}", f"would reformat {tmp_path / 'lib' / 'b.rtn'}"]
    code, _, err = run_cli("fmt", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "lib" / "b.rtn").read_text() == "channel x {\n    left -> right\n    right -> left\n}\n"
    assert (tmp_path / ".hidden" / "c.rtn").read_text() == ugly
    assert (tmp_path / "notes.txt").read_text() == ugly
    code, _, err = run_cli("fmt", "--check", str(tmp_path))
    assert code == 0, err

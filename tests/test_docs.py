"""The documentation lists every diagnostic code, exactly as the code table has it."""
from rattan.diagnostics.codes import CODES

from tests.conftest import ROOT


def test_every_code_is_documented():
    doc = (ROOT / "docs" / "diagnostics.md").read_text()
    for c in CODES.values():
        assert f"| `{c.id}` | {c.severity} | {c.title} |" in doc, c.id

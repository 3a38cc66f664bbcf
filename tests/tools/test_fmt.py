"""`rattan fmt`: canonical, idempotent, and it keeps every comment."""
from __future__ import annotations

from pathlib import Path

import pytest

from rattan.diagnostics import Sink
from rattan.source import SourceMap
from rattan.syntax.parser import parse
from rattan.tools.fmt import format_file

from tests.conftest import ROOT, example_files

GOLDEN_DIR = ROOT / "tests" / "golden" / "diagnostics"


def fmt(text: str) -> str:
    sm = SourceMap()
    src = sm.add("t.rtn", text)
    sink = Sink()
    file = parse(src, sink)
    assert not sink.has_errors, [d.message for d in sink.items]
    return format_file(file, src)


def _parses(text: str) -> bool:
    sm = SourceMap()
    sink = Sink()
    parse(sm.add("t.rtn", text), sink)
    return not sink.has_errors


def rtn_inputs() -> list[Path]:
    """Every example and every golden input that parses (fmt refuses the others by design)."""
    files = example_files((".rtn",)) + [ROOT / "examples" / "lib" / "links.rtn"]
    files += sorted(GOLDEN_DIR.glob("*.rtn")) if GOLDEN_DIR.is_dir() else []
    return [f for f in files if _parses(f.read_text(encoding="utf-8", errors="replace"))]


@pytest.mark.parametrize("path", rtn_inputs(), ids=lambda p: p.name)
def test_fmt_is_idempotent_and_keeps_comments(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    once = fmt(text)
    assert fmt(once) == once
    comments = [l.split("#", 1)[1].strip() for l in text.splitlines() if "#" in l and '"' not in l]
    for c in comments:
        assert c in once


def test_fmt_canonical_spacing():
    src = "let  a=10ms\nchannel x{\n  left->bw{rate=1Mbps,queue=droptail{packets=5}}->right\nright  ->left\n}\n"
    assert fmt(src) == ("let a = 10ms\nchannel x {\n"
                        "    left -> bw { rate = 1Mbps, queue = droptail { packets = 5 } } -> right\n"
                        "    right -> left\n}\n")


def test_fmt_keeps_comments_in_place():
    src = ("# head\n\nlet a = 1ms  # trailing\n\n# before channel\nchannel x {\n"
           "    cell b: bw {\n        # inside\n        rate = 1Mbps  # rate\n    }\n"
           "    left -> b  # first hop\n        -> right\n    right -> left\n}\n# tail\n")
    assert fmt(src) == src


def test_fmt_check_reports_unformatted(run_cli, tmp_path):
    f = tmp_path / "x.rtn"
    f.write_text("channel x {\nleft->right\nright->left\n}\n")
    code, out, err = run_cli("fmt", "--check", str(f))
    assert code == 1 and "would reformat" in err
    assert f.read_text() == "channel x {\nleft->right\nright->left\n}\n"  # --check changes nothing
    code, _, _ = run_cli("fmt", str(f))
    assert code == 0
    assert f.read_text() == "channel x {\n    left -> right\n    right -> left\n}\n"
    code, _, _ = run_cli("fmt", "--check", str(f))
    assert code == 0


def test_fmt_refuses_files_with_syntax_errors(run_cli, tmp_path):
    f = tmp_path / "bad.rtn"
    f.write_text("channel x {\n left -> -> right\n}\n")
    code, out, err = run_cli("fmt", str(f))
    assert code == 1 and "RTN001" in err
    assert f.read_text() == "channel x {\n left -> -> right\n}\n"


def test_fmt_keeps_comments_among_the_items_of_a_list_and_a_record():
    src = ("channel c {\n    endpoints a, b\n    cell r: router {\n        routes = [\n"
           "            # to a\n            route { prefix = a, port = 0 },  # first\n"
           "            # to b\n            route { prefix = b, port = 1 },\n        ]\n    }\n"
           "    cell q: bw {\n        rate = 1Mbps\n        queue = codel {\n            # tuned\n"
           "            target = 5ms\n        }\n    }\n    a -> r -> q\n    b -> a\n}\n")
    assert fmt(src) == src
    # a record without comments inside still prints on one line
    assert "queue = codel { target = 5ms }" in fmt(src.replace("            # tuned\n", ""))

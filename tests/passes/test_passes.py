"""The passes, through the printed IR (`--dump-after`) and their diagnostics."""
from __future__ import annotations

from rattan.compiler import compile_text
from rattan.ir.printer import program_text
from rattan.passes import PASS_NAMES


def dump(text: str, after: str) -> str:
    out = {}
    compile_text(text, dump=lambda n, ir: out.setdefault(n, ir), stop_after=after)
    return program_text(out[after])


def codes(text: str) -> list[str]:
    return [d.code for d in compile_text(text).diagnostics if d.is_error]


def test_pass_list_is_in_pipeline_order():
    assert PASS_NAMES[:5] == ["parse", "set_lets", "load_imports", "resolve_names", "expand_compounds"]
    assert PASS_NAMES[-5:] == ["remove_noops", "fuse_cells", "eliminate_dead", "mark_segmenting", "mark_cuts"]


def test_resolve_names_lowers_chains_to_links():
    text = dump("channel c {\n cell a: bw { rate = 1Mbps }\n left -> a -> delay { delay = 1ms } -> right\n"
                " right -> left\n}\n", "resolve_names")
    assert "  cell a: bw {rate = <expr" in text
    assert "  cell delay_1: delay [anonymous]" in text
    assert "  link left -> a\n  link a -> delay_1\n  link delay_1 -> right\n  link right -> left\n" in text


def test_expand_compounds_names_inner_cells_and_rewires():
    src = ("cell type hop(rate: rate) {\n in -> bw { rate = rate } -> delay { delay = 1ms } -> out\n}\n"
           "channel c {\n cell up: hop { rate = 5Mbps }\n left -> up -> right\n right -> left\n}\n")
    text = dump(src, "expand_compounds")
    assert "cell up.bw: bw [from up]" in text and "cell up.delay: delay [from up]" in text
    assert "link left -> up.bw" in text and "link up.delay -> right" in text
    assert "link up.bw -> up.delay" in text


def test_evaluate_folds_arithmetic_exactly():
    text = dump("let rtt = 40ms\nchannel c {\n left -> delay { delay = rtt / 3 } -> right\n right -> left\n}\n",
                "evaluate")
    assert "{delay = 13333333ns}" in text  # 40ms / 3, exact until the plan rounds to ns


def test_dimension_errors():
    assert codes("let a = 10ms + 5Mbps\nchannel c {\n left -> delay { delay = a } -> right\n"
                 " right -> left\n}\n") == ["RTN020"]
    assert codes("channel c {\n left -> delay { delay = 10 } -> right\n right -> left\n}\n") == ["RTN021"]
    assert codes("channel c {\n left -> loss { rate = 150% } -> right\n right -> left\n}\n") == ["RTN022"]
    assert codes("channel c {\n left -> delay { delay = 1ms / 0 } -> right\n right -> left\n}\n") == ["RTN024"]


def test_graph_errors():
    assert "RTN041" in codes("channel c {\n cell a: pass\n cell b: pass\n left -> a -> b -> a\n"
                             " b -> right\n right -> left\n}\n")
    assert codes("channel c {\n cell a: pass\n left -> a -> right\n a -> left\n right -> left\n}\n") == ["RTN043"]
    assert codes("channel c {\n cell a: delay { delay = 1ms }\n left -> right\n right -> left\n}\n") == ["RTN042"]
    comp = compile_text("channel c {\n endpoints left, right, spare\n left -> right\n right -> left\n}\n")
    assert [(d.code, d.severity) for d in comp.diagnostics] == [("RTN045", "warning")]
    assert comp.ok  # a warning does not fail the check


def test_let_redefinition_and_unknown_names():
    assert codes("let a = 1ms\nlet a = 2ms\n") == ["RTN010"]
    cs = codes("let rtt = 1ms\nchannel c {\n left -> delay { delay = rt } -> right\n right -> left\n}\n")
    assert cs == ["RTN011"]

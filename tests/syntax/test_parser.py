"""The .rtn parser: newlines, chain continuation, quantities, and recovery after errors."""
from __future__ import annotations

from fractions import Fraction

from rattan.diagnostics import Sink
from rattan.source import SourceMap
from rattan.syntax import ast
from rattan.syntax.parser import parse
from rattan.units import RATE, SIZE, TIME


def p(text: str):
    sm = SourceMap()
    sink = Sink()
    f = parse(sm.add("t.rtn", text), sink)
    return f, [d.code for d in sink.sorted()]


def test_chain_continues_on_a_line_starting_with_arrow():
    f, errs = p("channel c {\n  left -> a\n     # note\n     -> b\n  b -> right\n}\n")
    assert errs == []
    chains = [s for s in f.body[0].body if isinstance(s, ast.Chain)]
    assert [len(c.elements) for c in chains] == [3, 2]
    assert chains[0].line_breaks == (False, True)


def test_quantities_are_exact_in_base_units():
    f, errs = p("let a = 1.5ms\nlet b = 100Mbps\nlet c = 64KiB\nlet d = 0.1%\n")
    assert errs == []
    vals = [s.value for s in f.body]
    assert (vals[0].value, vals[0].dim) == (Fraction(3, 2000), TIME)
    assert (vals[1].value, vals[1].dim) == (Fraction(10**8), RATE)
    assert (vals[2].value, vals[2].dim) == (Fraction(64 * 1024 * 8), SIZE)
    assert vals[3].value == Fraction(1, 1000)


def test_an_exponent_belongs_to_the_number_never_to_a_unit():
    """`2e3` is the number 2000 (docs/language.md), `2e3ms` 2000 ms; a unit never starts like an
    exponent, so only `2e` (no digit after the `e`) is a number with a unit, `e`."""
    f, errs = p("let a = 2e3\nlet b = 1.5E-3\nlet c = 2e3ms\nlet d = 2e+3\n")
    assert errs == []
    a, b, c, d = (s.value for s in f.body)
    assert isinstance(a, ast.Number) and a.value == 2000
    assert isinstance(b, ast.Number) and b.value == Fraction(3, 2000)
    assert isinstance(c, ast.Quantity) and (c.value, c.dim) == (2, TIME)
    assert isinstance(d, ast.Number) and d.value == 2000
    assert p("let e = 2e\n")[1] == ["RTN004"]


def test_space_between_number_and_unit_is_reported_with_a_fix():
    sm = SourceMap()
    sink = Sink()
    parse(sm.add("t.rtn", "let a = 10 ms\n"), sink)
    (d,) = sink.items
    assert d.code == "RTN003" and d.fix == "10ms"


def test_unknown_unit_suggests_the_right_one():
    sm = SourceMap()
    sink = Sink()
    parse(sm.add("t.rtn", "let a = 10Mbit\n"), sink)
    (d,) = sink.items
    assert d.code == "RTN004" and "10Mbps" in d.help[0]


def test_recovery_keeps_the_good_statements():
    f, errs = p("let a = = 1\nlet b = 2ms\nchannel c {\n  left -> -> right\n  right -> left\n}\nlet z = 3ms\n")
    assert errs == ["RTN001", "RTN001"]
    names = [s.name for s in f.body if isinstance(s, (ast.Let, ast.Channel))]
    assert names == ["b", "c", "z"]
    ch = f.body[1]
    assert len([s for s in ch.body if isinstance(s, ast.Chain)]) == 1


def test_unclosed_brace_at_end_of_file():
    f, errs = p("channel c {\n  left -> right\n")
    assert errs == ["RTN001"]
    assert isinstance(f.body[0], ast.Channel)


def test_deep_nesting_is_refused_not_crashed():
    f, errs = p("let a = " + "(" * 5000 + "1ms" + ")" * 5000 + "\n")
    assert errs == ["RTN007"]


def test_comments_are_kept_for_the_formatter():
    f, _ = p("# a\nlet x = 1ms # b\n")
    assert [c.text for c in f.comments] == ["# a", "# b"]

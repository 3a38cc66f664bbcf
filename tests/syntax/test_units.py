"""Units as users write them: the spellings `.rtn`, flags, the control API and TOML accept, the byte
rates and ambiguous units they refuse, and a property over misspellings: no suggestion or fix ever
changes the magnitude of what was meant."""
from __future__ import annotations

import math
import re
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from rattan.compiler import compile_text
from rattan.diagnostics import Sink
from rattan.frontends.upstream import load_document
from rattan.source import SourceMap
from rattan.syntax import ast
from rattan.syntax.parser import parse
from rattan.registry import default_registry
from rattan.tools.lsp.analysis import analyze, code_actions, diagnostics
from rattan.units import RATE, SIZE, TIME, UNIT_LIST, QuantityError, parse_quantity

K, M, G, T = 10**3, 10**6, 10**9, 10**12


def rtn(text: str):
    """Parse one `let x = TEXT`: the value (or None) and the diagnostics."""
    sm = SourceMap()
    sink = Sink()
    f = parse(sm.add("t.rtn", f"let x = {text}\n"), sink)
    (let,) = [s for s in f.body if isinstance(s, ast.Let)] or [None]
    return (let.value if let else None), sink.sorted()


def toml_rate(text: str):
    """A TOML `bandwidth` through the upstream front end: bit/s (or None) and the diagnostics."""
    sm = SourceMap()
    sink = Sink()
    doc = f'[cells.c]\ntype = "Bw"\nbandwidth = "{text}"\nqueue = "Infinite"\n[links]\nleft = "c"\nc = "right"\n'
    f = load_document(sm.add("t.toml", doc), sink, "toml")
    (ch,) = f.body
    (cell,) = [s for s in ch.body if isinstance(s, ast.CellDecl)]
    rate = {p.name: p.value for p in cell.params}.get("rate")
    return (rate.value if isinstance(rate, ast.Quantity) else None), sink.sorted()


# ---- what is accepted ----------------------------------------------------------------
@pytest.mark.parametrize("text, dim, value", [
    ("10kbps", RATE, 10 * K), ("10Kbps", RATE, 10 * K), ("10bit/s", RATE, 10), ("10kbit/s", RATE, 10 * K),
    ("10Kbit/s", RATE, 10 * K), ("10Mbit/s", RATE, 10 * M), ("10Gbit/s", RATE, 10 * G),
    ("10Tbit/s", RATE, 10 * T), ("1.5Mbit/s", RATE, 1_500_000),
    ("20kbit", RATE, 20 * K), ("20mbit", RATE, 20 * M), ("20gbit", RATE, 20 * G),  # tc's meaning
    ("5\u00b5s", TIME, Fraction(5, M)), ("5\u03bcs", TIME, Fraction(5, M)), ("5us", TIME, Fraction(5, M)),
])
def test_the_spellings_users_write_are_accepted_with_their_meaning(text, dim, value):
    q, diags = rtn(text)
    assert diags == [] and isinstance(q, ast.Quantity) and (q.dim, q.value) == (dim, value), diags
    assert parse_quantity(text, dim) == value  # `rattan link` flags and the control API agree


def test_a_time_in_micro_is_the_same_in_rtn_and_toml():
    for mu in ("\u00b5s", "\u03bcs"):
        q, diags = rtn(f"250{mu}")
        assert diags == [] and q.value == Fraction(250, M)
    for mu in ("\u00b5s",):  # upstream's jiff takes the micro sign (U+00B5) only
        sm, sink = SourceMap(), Sink()
        doc = f'[cells.d]\ntype = "Delay"\ndelay = "250{mu}"\n[links]\nleft = "d"\nd = "right"\n'
        (ch,) = load_document(sm.add("t.toml", doc), sink, "toml").body
        (cell,) = [s for s in ch.body if isinstance(s, ast.CellDecl)]
        assert sink.items == [] and cell.params[0].value.value == Fraction(250, M)


def test_a_slash_after_a_time_unit_is_still_a_division():
    sm, sink = SourceMap(), Sink()
    f = parse(sm.add("t.rtn", "let s = 2\nlet x = 10ms/s\n"), sink)
    assert sink.items == [] and isinstance(f.body[1].value, ast.BinOp)


# ---- what is refused, and the help --------------------------------------------------
@pytest.mark.parametrize("text, fix", [
    ("10MBps", "80Mbps"), ("1.5MB/s", "12Mbps"), ("10KBps", "80Kbps"), ("3GB/s", "24Gbps"), ("100Bps", "800bps"),
    ("1MiB/s", "8388608bps"),
])
def test_a_byte_rate_is_refused_with_the_same_rate_in_bits(text, fix):
    _, (d,) = rtn(text)
    assert d.code == "RTN004" and d.fix == fix and f"write `{fix}`" in d.help[0]
    assert "bits per second" in d.help[0]
    _, (t,) = toml_rate(text)
    assert t.code == "RTN073" and f'write "{fix}"' in t.help[0]
    with pytest.raises(QuantityError, match=f"write `{fix}`"):
        parse_quantity(text, RATE)


def test_lowercase_mbps_gives_both_readings_and_no_fix():
    _, (d,) = rtn("20mbps")
    assert d.code == "RTN004" and d.fix is None
    assert "`20Mbps` for megabits per second" in d.help[0] and "`160Mbps` for megabytes per second" in d.help[0]
    assert toml_rate("20mbps") == (20 * M, [])  # upstream's human-bandwidth reads `mbps` as megabits


@pytest.mark.parametrize("text, help", [
    ("5min", "write `300s`"), ("2h", "write `7200s`"), ("10Mbsp", "did you mean `10Mbps`?"),
    ("10Mbits/sec", "did you mean `10Mbps`?"), ("10kB", "did you mean `10KB`?"),
])
def test_a_fix_keeps_the_magnitude(text, help):
    _, (d,) = rtn(text)
    assert d.code == "RTN004" and help in d.help[0]


@pytest.mark.parametrize("text", ["10b", "10kb", "10Mbit", "10k", "10MBPS", "10m"])
def test_an_ambiguous_unit_has_no_fix(text):
    _, (d,) = rtn(text)
    assert d.code == "RTN004" and d.fix is None and "ambiguous" in d.help[0]


def test_toml_suggests_the_bit_rate_a_tc_unit_means():
    """`20mbit` once got `did you mean "20bit/s"?`, a million times less."""
    _, (d,) = toml_rate("20mbit")
    assert d.help == ('did you mean "20Mbps"?',)


def test_the_language_server_quick_fix_rewrites_a_byte_rate():
    text = "channel c {\n    left -> bw { rate = 10MBps } -> right\n    right -> left\n}\n"
    an = analyze("file:///t.rtn", text, default_registry())
    (d,) = diagnostics(an)
    (action,) = code_actions(an, d.range)
    (edit,) = action.edit.changes["file:///t.rtn"]
    line = text.splitlines()[1]
    r = edit.range
    assert edit.new_text == "80Mbps" and r.start.line == r.end.line == 1  # the whole literal, number too
    assert line[r.start.character:r.end.character] == "10MBps"
    fixed = text.replace("10MBps", "80Mbps")
    assert diagnostics(analyze("file:///t.rtn", fixed, default_registry())) == []


# ---- the property --------------------------------------------------------------------
# What people write for units and every meaning each has in the tool it comes from, written here
# independently of rattan/units.py: (dimension, scale to bit, s, bit/s) per reading.
def _world() -> dict[str, set]:
    w: dict[str, set] = {}

    def say(names: str, dim, scale) -> None:
        for n in names.split():
            w.setdefault(n, set()).add((dim, Fraction(scale)))

    # tc (case-insensitive there): rates in bits and bytes, and its sizes, binary
    say("bit", RATE, 1), say("tbit", RATE, T), say("Kibit", RATE, 2**10), say("Mibit", RATE, 2**20)
    say("Bps", RATE, 8), say("KBps kBps kbps", RATE, 8 * K), say("MBps mbps", RATE, 8 * M), say("GBps gbps", RATE, 8 * G)
    say("KiBps", RATE, 8 * 2**10), say("MiBps", RATE, 8 * 2**20)
    say("k kb K", SIZE, 8 * 2**10), say("m mb", SIZE, 8 * 2**20), say("g gb", SIZE, 8 * 2**30)
    say("kbit", SIZE, 2**10), say("mbit", SIZE, 2**20), say("b", SIZE, 8)
    # human-bandwidth (upstream Rattan)
    say("b/s", RATE, 1), say("kb/s Kb/s", RATE, K), say("mbps Mb/s mb/s mbit/s", RATE, M)
    say("gbps Gb/s gb/s gbit/s", RATE, G), say("tbps Tb/s tb/s tbit/s", RATE, T)
    # iperf3 and everyday writing
    say("bits/s bits/sec bit/sec b/sec", RATE, 1), say("Kbits/sec", RATE, K), say("Mbits/sec Mbit/sec", RATE, M), say("Gbits/sec", RATE, G)
    say("KBytes", SIZE, 8 * K), say("MBytes", SIZE, 8 * M), say("GBytes", SIZE, 8 * G)
    say("B/s B/sec", RATE, 8), say("kB/s KB/s", RATE, 8 * K), say("MB/s", RATE, 8 * M), say("GB/s", RATE, 8 * G)
    say("TB/s TBps", RATE, 8 * T)
    say("kB", SIZE, 8 * K), say("kb Kb Kbit", SIZE, K), say("Mb Mbit", SIZE, M), say("Gb", SIZE, G)
    say("Mb", RATE, M), say("Gb", RATE, G), say("Tb", RATE, T), say("Kbit", RATE, K), say("Mbit", RATE, M)  # "a 1Gb link"; tc's mbit
    say("b bit bits", SIZE, 1), say("byte bytes Byte Bytes", SIZE, 8)
    for p, f in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40)):  # binary byte rates
        say(f"{p}Bps {p}B/s", RATE, 8 * f)
    say("TiB", SIZE, 8 * 2**40), say("TB", SIZE, 8 * T)
    say("Kibps Kibit/s", RATE, 2**10), say("Mibps Mibit/s", RATE, 2**20), say("Gibps Gibit/s", RATE, 2**30)
    say("Tibps Tibit/s", RATE, 2**40)
    say("k K", SIZE, 8 * K), say("k K", RATE, K), say("M", SIZE, 8 * M), say("M", RATE, M)
    say("G", SIZE, 8 * G), say("G", RATE, G)
    # humantime / jiff / everyday times
    say("sec secs second seconds", TIME, 1), say("msec millis millisecond milliseconds", TIME, Fraction(1, K))
    say("usec micros microsecond microseconds \u00b5sec", TIME, Fraction(1, M))
    say("nsec nanos nanosecond nanoseconds", TIME, Fraction(1, G))
    say("m min mins minute minutes", TIME, 60), say("h hr hrs hour hours", TIME, 3600), say("d day days", TIME, 86400)
    return w


WORLD = _world()


def _rattan() -> dict[str, tuple]:
    """The decided table: what a spelling `.rtn` accepts means there, whatever it means elsewhere."""
    r: dict[str, tuple] = {}
    for names, dim, scale in (
            ("ns", TIME, Fraction(1, G)), ("us \u00b5s \u03bcs", TIME, Fraction(1, M)), ("ms", TIME, Fraction(1, K)),
            ("s", TIME, 1), ("bps bit/s", RATE, 1), ("kbps Kbps kbit/s Kbit/s kbit", RATE, K),
            ("Mbps Mbit/s mbit", RATE, M), ("Gbps Gbit/s gbit", RATE, G), ("Tbps Tbit/s", RATE, T),
            ("B", SIZE, 8), ("KB", SIZE, 8 * K), ("MB", SIZE, 8 * M), ("GB", SIZE, 8 * G),
            ("KiB", SIZE, 8 * 2**10), ("MiB", SIZE, 8 * 2**20), ("GiB", SIZE, 8 * 2**30)):
        for n in names.split():
            r[n] = (dim, Fraction(scale))
    return r


RATTAN = _rattan()


def meanings(unit: str) -> set:
    """What someone who wrote `unit` meant: Rattan's meaning if Rattan accepts it, else every meaning
    it has in the tools people take it from."""
    return {RATTAN[unit]} if unit in RATTAN else WORLD.get(unit, set())


def _variant(draw, unit: str) -> str:
    """The slips people make: a case change, or one typo (a letter swapped with its neighbour,
    doubled or dropped)."""
    kind = draw(st.sampled_from(["case", "swap", "double", "drop", "same"]))
    if kind == "case":
        flips = draw(st.lists(st.booleans(), min_size=len(unit), max_size=len(unit)))
        return "".join(c.swapcase() if f else c for c, f in zip(unit, flips))
    if kind == "same" or len(unit) < 2:
        return unit
    i = draw(st.integers(0, len(unit) - 1))
    if kind == "swap" and i < len(unit) - 1:
        return unit[:i] + unit[i + 1] + unit[i] + unit[i + 2:]
    if kind == "double":
        return unit[:i] + unit[i] + unit[i:]
    return unit[:i] + unit[i + 1:]


@st.composite
def misspelt(draw):
    src = draw(st.sampled_from(sorted({*WORLD, *RATTAN})))
    written = _variant(draw, src)
    num = draw(st.sampled_from(["1", "10", "20", "1.5", "0.25", "100", "3e3", "7"]))
    meant = meanings(written) or meanings(src)  # a known spelling means what it says; else what it slipped from
    return num, written, {(dim, Fraction(num) * scale) for dim, scale in meant}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(misspelt())
def test_no_unit_fix_changes_the_magnitude(case):
    """Whenever `.rtn` accepts a spelling it means one of the meanings it has; whenever it offers a
    fix, the fixed text means the one thing every reading of what was written means."""
    num, unit, meant = case
    text = num + unit
    note(text)
    q, diags = rtn(text)
    # a slipped `/` can make a division (`10bi/ts`) or a syntax error (`1kB/`): not a unit's business
    assume(not isinstance(q, ast.BinOp) and all(d.code == "RTN004" for d in diags))
    if not diags:
        assert (q.dim, q.value) in meant, (text, q)
        return
    for d in diags:
        if d.code != "RTN004" or d.fix is None:
            continue
        start, end = d.span.start - len("let x = "), d.span.end - len("let x = ")
        fixed = text[:start] + d.fix + text[end:]
        fq, fdiags = rtn(fixed)
        assert fdiags == [], (text, fixed, fdiags)
        assert meant == {(fq.dim, fq.value)}, (text, "->", fixed, meant)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(misspelt())
def test_no_toml_suggestion_changes_the_magnitude(case):
    """The same for a TOML `bandwidth`, where only rate readings count and the suggestion is a help."""
    num, unit, meant = case
    rates = {math.floor(v) for dim, v in meant if dim == RATE}  # upstream drops fractions of 1 bit/s
    note(num + unit)
    value, diags = toml_rate(num + unit)
    if not diags:
        assert value in rates, (num + unit, value, rates)
        return
    for d in diags:
        for h in d.help:
            m = re.search(r'(?:did you mean|write) "([^"]+)"', h)
            if m is None or "ambiguous" in h:
                continue
            got, more = toml_rate(m.group(1))
            assert more == [] and rates == {got}, (num + unit, m.group(1), rates)


def test_a_bare_number_gets_no_fix_that_guesses_its_unit():
    """`rate = 20` might be 20 bit/s (the control API's reading) or 20 Mbit/s: a help, never a fix."""
    diags = compile_text("channel c {\n    left -> bw { rate = 20 } -> right\n    right -> left\n}\n").diagnostics
    (d,) = [d for d in diags if d.code == "RTN021"]
    assert d.fix is None and "e.g. `20Mbps`" in d.help[0]


def test_a_netem_trace_model_reads_rates_and_times_as_upstream_does():
    """Its strings go through human-bandwidth and humantime upstream: `16mbps` is 16 Mbit/s there,
    `20mbit` (tc's) is refused there, and `500µs` is a time."""
    from rattan.frontends.netem_trace import ModelError, parse_model

    def model(bw: str, duration: str = "1s") -> dict:
        return parse_model(f'{{"StaticBwConfig": {{"bw": "{bw}", "duration": "{duration}"}}}}', "json", "bw")

    assert model("16mbps", "500\u00b5s")["segments"] == [[500_000, 16_000_000]]
    with pytest.raises(ModelError):
        model("20mbit")


def test_a_step_trace_takes_the_same_units_and_says_what_a_wrong_one_means():
    from rattan.passes.load_traces import TraceError, parse_steps
    assert parse_steps("0 250\u00b5s\n1s 5\u03bcs\n", "delay")["steps"] == [[0, 250_000], [10**9, 5_000]]
    with pytest.raises(TraceError, match="write `120s`"):
        parse_steps("0 2min\n", "delay")


# ---- the advice knows what the parameter wants ----------------------------------------
def in_channel(cell: str):
    """Compile `cell` on a channel's path: its diagnostics."""
    text = f"channel c {{\n    left -> {cell} -> right\n    right -> left\n}}\n"
    return compile_text(text).diagnostics


@pytest.mark.parametrize("cell, help, fix", [
    ("bw { rate = 10Mbs }", "did you mean `10Mbps`?", "Mbps"),  # not "ambiguous ... or `1.25MB`"
    ("bw { rate = 10Mb }", "did you mean `10Mbps`?", "Mbps"),
    ("delay { delay = 5m }", "`5m` is 5 minutes: write `300s`", "300s"),  # tc's mebibytes are no time
    ("bw { rate = 10kb }", "`10kb` is not a rate; a rate is written in bps kbps", None),
    ("bw { rate = 1BG }", "`1BG` is not a rate", None),
    ("bw { rate = 10Mbps, queue = droptail { bytes = 64KB/s } }", "`64KB/s` is not a size", None),
    ("bw { rate = 10Mps }", "`10Mps` has several readings; a rate is written in bps", None),  # no `10bps`
])
def test_a_refused_unit_gets_one_finding_with_advice_for_the_parameter(cell, help, fix):
    (d,) = in_channel(cell)  # no follow-on RTN021 "must be a rate, found a size"
    assert d.code == "RTN004" and d.help[0].startswith(help) and d.fix == fix, d


def test_a_refused_unit_in_a_let_still_lists_its_readings():
    diags = compile_text("let x = 5m\nchannel c {\n    left -> delay { delay = x } -> right\n    right -> left\n}\n"
                         ).diagnostics
    (d,) = diags
    assert d.code == "RTN004" and d.fix is None and "ambiguous" in d.help[0]


def test_a_flag_or_trace_says_what_the_unit_means_for_its_dimension():
    from rattan.passes.load_traces import TraceError, parse_steps
    with pytest.raises(QuantityError) as e:
        parse_quantity("1MBps", TIME)  # a --duration
    assert "8Mbps" not in str(e.value) and "ns us" in str(e.value)
    with pytest.raises(TraceError) as e:
        parse_steps("0 1MBps\n", "delay")
    assert "8Mbps" not in str(e.value)


def test_help_lists_a_few_readings_or_else_the_units():
    _, (d,) = rtn("5\u00b5")
    assert d.help == (UNIT_LIST,)  # not 17 guesses
    _, (t,) = toml_rate("10\u00b5bps")
    assert t.help[0].count('"') <= 2 and "a rate is written in" in t.help[0]
    assert {"Tbit/s", "Kbit/s", "\u00b5s"} <= set(re.split(r"[ ;]+", UNIT_LIST))


@pytest.mark.parametrize("cell, spaced", [
    ("delay { delay = 5 \u00b5s }", "5 \u00b5s"), ("bw { rate = 10 Mbit/s }", "10 Mbit/s"),
    ("bw { rate = 10 Kbit/s }", "10 Kbit/s"), ("loss { rate = 1 % }", "1 %"),
])
def test_a_space_before_any_accepted_unit_is_one_finding_that_removes_it(cell, spaced):
    (d,) = in_channel(cell)
    assert d.code == "RTN003" and d.fix == spaced.replace(" ", ""), d


def test_a_space_before_a_refused_unit_is_reported_with_the_unit():
    diags = in_channel("bw { rate = 10 MBps }")
    assert [d.code for d in diags] == ["RTN003", "RTN004"] and diags[1].fix == "80Mbps"


def test_an_expression_with_a_refused_unit_gets_no_follow_on_error():
    for cell in ("bw { rate = 10Mbs + 1Mbps }", "delay { delay = -5m }"):
        (d,) = in_channel(cell)
        assert d.code == "RTN004" and d.fix is None, d


def test_a_slash_s_glued_to_a_quantity_is_a_rate_spelling():
    sm, sink = SourceMap(), Sink()
    parse(sm.add("t.rtn", "let s = 2\nlet x = 64KB/s\nlet y = 10MBit/s\nlet z = 64KB / s\n"), sink)
    d64, d10 = sink.sorted()
    assert (d64.code, d64.fix) == ("RTN004", "512Kbps")
    assert (d10.code, d10.fix) == ("RTN004", "Mbps") and "unknown name" not in d10.message  # not `10MB / s`


def test_one_of_a_unit_is_singular():
    _, (d,) = rtn("1MBps")
    assert d.help[0].startswith("`1MBps` is 1 megabyte per second: write `8Mbps`")
    (t,) = in_channel("delay { delay = 1m }")
    assert t.help[0].startswith("`1m` is 1 minute: write `60s`")


def test_a_huge_number_gets_no_literal_of_hundreds_of_digits():
    from rattan.units import unit_advice
    a = unit_advice("1e300", "MiB/s")  # in bit/s, a 303-digit integer
    assert a.fix is None and all(lit is None or len(lit) <= 40 for lit in a.literals)
    assert len(a.help()) < 400


def test_the_language_server_quick_fix_follows_the_parameter_dimension():
    text = "channel c {\n    left -> delay { delay = 5m } -> right\n    right -> left\n}\n"
    an = analyze("file:///t.rtn", text, default_registry())
    (d,) = diagnostics(an)
    (action,) = code_actions(an, d.range)
    (edit,) = action.edit.changes["file:///t.rtn"]
    line, r = text.splitlines()[1], edit.range
    assert edit.new_text == "300s" and line[r.start.character:r.end.character] == "5m"

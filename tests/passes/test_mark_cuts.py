"""`mark_cuts`: the links into holding cells that split a channel into regions engine threads run apart."""
from __future__ import annotations

import pytest

from rattan.compiler import compile_text
from tests.conftest import EXAMPLES

TRACE = EXAMPLES / "traces" / "synthetic-lte.down"  # a Mahimahi trace


def cuts(up: str, down: str = "bw { rate = 10Mbps } -> delay { delay = 5ms }") -> tuple:
    text = f"channel c {{\n  endpoints a, b\n  a -> {up} -> b\n  b -> {down} -> a\n}}\n"
    comp = compile_text(text, "<t>.rtn")
    assert comp.ok, comp.diagnostics
    return tuple((s, p, d) for s, p, d in comp.program.channels[0].cuts)


def test_both_directions_cut_before_their_delay():
    assert cuts("bw { rate = 10Mbps } -> delay { delay = 5ms }") == (("bw_1", 0, "delay_1"), ("bw_2", 0, "delay_2"))


@pytest.mark.parametrize("up", [
    "bw { rate = 10Mbps } -> delay { delay = 5ms, round_up = 1ms }",   # reads the channel's first packet
    f"bw_trace {{ trace = \"{TRACE}\", start = first_packet }} -> delay {{ delay = 5ms }}",
])
def test_no_cut_in_a_channel_that_reads_its_first_arrival(up):
    assert cuts(up) == ()


def test_a_cut_that_would_not_separate_is_left_out():
    # the way back has no delay: both ends of the uplink's cut stay connected through it
    assert cuts("bw { rate = 10Mbps } -> delay { delay = 5ms }", down="loss { rate = 1% }") == ()


def test_a_delay_of_zero_is_no_cut():
    # the uplink's delay holds nothing for sure: no cut there, and the downlink's alone separates nothing
    assert cuts("bw { rate = 10Mbps } -> delay { delay = 0ms, jitter = 1ms }") == ()

"""`mark_segmenting`: the endpoints whose packets may meet a cell that must see every segment."""
from __future__ import annotations

import pytest

from rattan.compiler import compile_text
from rattan.registry import default_registry


def segmenting(up: str, down: str = "delay { delay = 1ms }", **kw) -> tuple[str, ...]:
    text = f"channel c {{\n  endpoints a, b\n  a -> {up} -> b\n  b -> {down} -> a\n}}\n"
    comp = compile_text(text, "<t>.rtn", **kw)
    assert comp.ok, comp.diagnostics
    return comp.program.channels[0].segmenting


@pytest.mark.parametrize("cell, cut", [
    ("loss { rate = 1% }", True),
    ("corrupt { rate = 1% }", True),
    ("duplicate { rate = 1% }", True),
    ("delay { delay = 5ms }", False),
    ("bw { rate = 5Gbps }", False),                                        # infinite queue, no overhead
    ("bw { rate = 5Gbps, overhead = 38B }", True),                         # overhead counted per packet
    ("bw { rate = 5Gbps, queue = droptail { packets = 100 } }", True),     # a bounded queue drops per packet
    ("bw { rate = 5Gbps, queue = droptail {} }", True),                    # 1000 packets by default
    ("bw { rate = 5Gbps, queue = droptail { packets = unlimited, bytes = unlimited } }", False),
    ("bw { rate = 5Gbps, queue = codel {} }", True),
    ("token_bucket { rate = 1Gbps, burst = 64KiB }", True),
])
def test_cells_decide(cell, cut):
    assert segmenting(cell) == (("a",) if cut else ())


def test_direction_and_chain():
    # only packets entering at a meet the loss; b's go through delay straight to a
    assert segmenting("delay { delay = 1ms } -> loss { rate = 1% }") == ("a",)
    assert segmenting("delay { delay = 1ms }", "loss { rate = 2% }") == ("b",)


def test_runs_without_optimizations_too():
    from rattan.passes.context import Options
    assert segmenting("loss { rate = 1% }", options=Options(optimize=False)) == ("a",)


def test_every_builtin_cell_says():
    """Each built-in cell schema (and queue kind) states its rule: none relies on the default."""
    reg = default_registry()
    for name in reg.names():
        ct = reg.get(name)
        if ct.origin == "builtin":
            assert "segments" in ct.meta, name
    for kind, schema in reg.queues.items():
        assert "segments" in (schema.get("x-rattan") or {}), kind


def test_endpoints_reaching_follows_links_and_stops_at_endpoints():
    from rattan.passes.mark_segmenting import endpoints_reaching
    links = [("a", "x"), ("x", "b"), ("b", "y"), ("y", "a"), ("b", "z")]
    assert endpoints_reaching(["a", "b"], links, {"x"}) == ("a",)
    assert endpoints_reaching(["a", "b"], links, {"y", "z"}) == ("b",)
    assert endpoints_reaching(["a", "b"], links, {"x", "y"}) == ("a", "b")
    assert endpoints_reaching(["a", "b"], links, set()) == ()  # a delivered packet goes no further: x is not b's


def test_a_packet_log_cuts_only_where_packets_reach_a_logged_cell():
    """GSO mode with a packet log (rattan.runtime.run.log_segmenting): an endpoint cuts super-frames
    only if its packets may reach a cell the log records."""
    from rattan.plan import build_plan
    from rattan.runtime.run import log_segmenting
    text = "channel c {\n  endpoints a, b\n  a -> delay { delay = 1ms } -> b\n  b -> delay { delay = 2ms } -> a\n}\n"
    comp = compile_text(text, "<t>.rtn")
    channel = build_plan(comp.program, comp.sources, default_registry())["channels"][0]
    up, down = (next(l["to"] for l in channel["links"] if l["from"] == ep) for ep in ("a", "b"))
    assert log_segmenting(channel, None) == {"a", "b"}  # every cell logged
    assert log_segmenting(channel, [up]) == {"a"}
    assert log_segmenting(channel, [down]) == {"b"}
    assert log_segmenting(channel, ["not_here"]) == set()  # another channel's cell

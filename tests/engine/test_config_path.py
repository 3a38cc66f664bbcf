"""The one configuration path from a cell's schema to C: typed values read by name, clear errors."""
from __future__ import annotations

import pytest

from rattan.engine.binding import DROP_REASONS, Engine, EngineError, cell_types
from rattan.engine.load import load_channel
from rattan.registry import default_registry
from tests.engine.cells import cell, plan_of

MS = 10**6


def test_a_missing_parameter_names_the_cell_and_the_parameter():
    with pytest.raises(EngineError, match=r"^cell `up` \(bw\): parameter `rate`: missing$"):
        Engine(1).add_cell("bw", {"overhead": 0, "queue": {"kind": "infinite"}}, name="up")


def test_a_mistyped_parameter_says_what_was_expected():
    with pytest.raises(EngineError, match=r"parameter `distribution`: expected a string, got an integer"):
        cell(Engine(1), "delay", delay=MS, distribution=3)
    with pytest.raises(EngineError, match=r"parameter `queue.target`: missing"):
        cell(Engine(1), "bw", rate=10**7, queue={"kind": "codel", "packets": 10, "interval": 100 * MS})
    with pytest.raises(EngineError, match=r"parameter `routes\[1\].prefix`: expected an IPv4 prefix"):
        cell(Engine(1), "router", outputs=2, routes=[{"prefix": "10.0.0.0/8", "port": 0},
                                                      {"prefix": "ten", "port": 1}])


def test_a_value_the_cell_refuses_says_why():
    with pytest.raises(EngineError, match=r"cell type `token_bucket`: parameter `burst`: must be at least 1 byte"):
        cell(Engine(1), "token_bucket", rate=10**6, burst=0)
    with pytest.raises(EngineError, match=r"no cell type `nonesuch` is registered"):
        Engine(1).add_cell("nonesuch", {})


def test_every_schema_default_reaches_c_from_the_plan_not_from_c():
    """A plan's bounded queue with neither limit gets the schema's 1000 packets, written in the plan."""
    plan = plan_of("channel c { endpoints a, b\n a -> bw { rate = 1Mbps, queue = droptail {} } -> b }")
    cfg = plan["channels"][0]["cells"][0]["config"]
    assert cfg["queue"] == {"kind": "droptail", "packets": 1000}
    e = Engine(1)
    nodes = load_channel(e, plan["channels"][0])
    f = e.add_flow(nodes["a"], nodes["b"], "cbr", 100_000_000, 1000)  # 100x the link: the queue fills
    e.run_until(100 * MS)
    assert e.counters(nodes[plan["channels"][0]["cells"][0]["name"]]).queued_packets == 1001  # + the one being sent
    assert e.flow_stats(f)["sent_packets"] > 1100


def test_drop_reasons_come_from_the_engines_table():
    # packet logs store a reason's index: the earlier reasons keep theirs, new ones come after them
    assert DROP_REASONS[:9] == ("queue_full", "aqm", "loss", "policer", "no_route", "outage", "pool", "ring", "cell")
    assert {"drop_route", "not_ipv4", "model_end"} <= set(DROP_REASONS[9:])
    assert len(set(DROP_REASONS)) == len(DROP_REASONS)


def test_every_schema_has_an_engine_implementation():
    reg = default_registry()
    builtin = {n for n in reg.names() if reg.get(n).origin == "builtin"}
    assert builtin <= set(cell_types())


def test_a_cycle_of_cells_that_hold_nothing_is_refused():
    e = Engine(1)
    a, b = cell(e, "pass"), cell(e, "loss", rate=0.0)
    e.link(a, 0, b)
    with pytest.raises(EngineError, match="cycle of cells that hold no packet"):
        e.link(b, 0, a)
    d = cell(e, "delay", delay=MS)  # a cycle through a cell that holds packets is fine
    e2 = Engine(1)
    x, y = cell(e2, "pass"), cell(e2, "delay", delay=MS)
    e2.link(x, 0, y)
    e2.link(y, 0, x)
    assert d >= 0


def test_a_refused_link_leaves_the_port_free():
    e = Engine(1)
    a, b, c = cell(e, "pass"), cell(e, "pass"), cell(e, "delay", delay=MS)
    e.link(a, 0, b)
    with pytest.raises(EngineError):
        e.link(b, 0, a)
    e.link(b, 0, c)  # the refused link did not take port 0

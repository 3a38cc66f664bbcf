"""Issue 12 item 3: in upstream Rattan's TOML/YAML, the cell graph follows upstream.

Upstream builds every cell and forwards only along `[links]` (rattan-core/src/radix/mod.rs,
`load_cells_config` then `link_cells`; core.rs `spawn_rattan` starts one forwarding task per link, so
a cell without a link out is never emptied). An unlinked cell carries nothing, a packet that enters a
cell with no way on to an endpoint is never delivered, and a cycle among such cells is harmless:
warnings there (saying what upstream does), and the plan leaves those cells out. In `.rtn` the same
graphs stay errors. A cycle on a path between endpoints is an error everywhere.
"""
from __future__ import annotations

import json
import textwrap

import pytest

from rattan.compiler import compile_text
from rattan.passes.context import Options
from rattan.plan import build_plan
from rattan.registry import default_registry

LINKED = """\
[cells.up]
type = "Delay"
delay = "10ms"

[cells.down]
type = "Delay"
delay = "20ms"
"""
BACK = 'right = "down"\ndown = "left"\n'

UNLINKED = LINKED + """
[cells.spare]
type = "Loss"
pattern = [0.5]

[links]
left = "up"
up = "right"
""" + BACK

DEAD_END = LINKED + """
[cells.sink]
type = "Delay"
delay = "1ms"

[links]
left = "up"
up = "sink"
""" + BACK

IDLE_CYCLE = LINKED + """
[cells.c1]
type = "Delay"
delay = "1ms"

[cells.c2]
type = "Loss"
pattern = [0.1]

[links]
left = "up"
up = "right"
c1 = "c2"
c2 = "c1"
""" + BACK


def compiled(text: str, name: str = "path.toml"):
    # without the optimizer, whose `eliminate_dead` would hide a plan that keeps idle cells
    return compile_text(text, name, options=Options(optimize=False))


def findings(comp) -> list[tuple[str, str, int]]:
    """(code, severity, line) of every diagnostic."""
    src = comp.sources[0]
    return [(d.code, d.severity, src.line_col(d.span.start)[0]) for d in comp.diagnostics]


def plan_of(comp) -> dict:
    assert comp.ok, [d.message for d in comp.diagnostics if d.is_error]
    return build_plan(comp.program, comp.sources, default_registry())["channels"][0]


def links(ch: dict) -> set[tuple[str, str]]:
    return {(l["from"], l["to"]) for l in ch["links"]}


# -- unlinked cell ----------------------------------------------------------------------------

def test_an_unlinked_cell_is_a_warning_and_left_out_of_the_plan():
    comp = compiled(UNLINKED)
    assert findings(comp) == [("RTN042", "warning", 9)]  # `[cells.spare]`
    d = comp.diagnostics[0]
    assert "`spare` is in no link: upstream builds it and never sends it a packet" in d.message
    assert any("leaves it out of the plan" in h for h in d.help)
    ch = plan_of(comp)
    assert [c["name"] for c in ch["cells"]] == ["up", "down"]
    assert links(ch) == {("left", "up"), ("up", "right"), ("right", "down"), ("down", "left")}


def test_the_same_in_yaml():
    comp = compiled(textwrap.dedent("""\
        cells:
          up: {type: Delay, delay: 10ms}
          down: {type: Delay, delay: 20ms}
          spare: {type: Loss, pattern: [0.5]}
        links: {left: up, up: right, right: down, down: left}
        """), "path.yaml")
    assert findings(comp) == [("RTN042", "warning", 4)]
    assert [c["name"] for c in plan_of(comp)["cells"]] == ["up", "down"]


def test_an_unlinked_cell_still_needs_its_trace_file_as_upstream_builds_it():
    comp = compiled(LINKED + '\n[cells.replay]\ntype = "BwReplay"\ntrace = "no-such.trace"\nqueue = "Infinite"\n'
                    '\n[links]\nleft = "up"\nup = "right"\n' + BACK)
    assert ("RTN050", "error") in {(c, s) for c, s, _ in findings(comp)}


# -- dead end ---------------------------------------------------------------------------------

def test_a_dead_end_is_a_warning_and_what_reaches_it_is_dropped():
    comp = compiled(DEAD_END)
    found = findings(comp)
    assert ("RTN042", "warning", 1) in found       # `up` leads only to the dead end
    assert ("RTN042", "warning", 9) in found       # `sink`: no link out
    assert ("RTN046", "warning", 14) in found      # `left = "up"`: what left sends is never delivered
    assert not any(s == "error" for _, s, _ in found)
    sink = next(d for d in comp.diagnostics if "`sink`" in d.message)
    assert "has no link out: upstream forwards packets into it and never takes them out" in sink.message
    ch = plan_of(comp)
    assert [c["name"] for c in ch["cells"]] == ["down"]
    # left's output leads nowhere: the engine drops what it sends (`no_route`)
    assert links(ch) == {("right", "down"), ("down", "left")}


# -- cycles -----------------------------------------------------------------------------------

def test_a_cycle_of_unlinked_cells_is_a_warning_and_left_out():
    comp = compiled(IDLE_CYCLE)
    found = findings(comp)
    assert ("RTN041", "warning", 20) in found      # `c1 = "c2"`: the link that closes the cycle
    assert ("RTN042", "warning", 9) in found and ("RTN042", "warning", 13) in found
    assert not any(s == "error" for _, s, _ in found)
    cyc = next(d for d in comp.diagnostics if d.code == "RTN041")
    assert "no endpoint's packets reach: upstream builds its cells, and they carry nothing" in cyc.message
    ch = plan_of(comp)
    assert [c["name"] for c in ch["cells"]] == ["up", "down"]
    assert not {"c1", "c2"} & {n for link in links(ch) for n in link}


def test_a_cycle_that_packets_enter_and_never_leave_is_a_warning():
    comp = compiled(LINKED + '\n[cells.a]\ntype = "Delay"\ndelay = "1ms"\n'
                    '\n[links]\nleft = "a"\na = "a"\n' + BACK)  # `up` is unlinked here
    found = findings(comp)
    assert ("RTN041", "warning", 15) in found and ("RTN046", "warning", 14) in found
    assert ("RTN042", "warning", 9) in found  # `a`
    assert "upstream passes them round it forever" in next(d for d in comp.diagnostics if d.code == "RTN041").message
    ch = plan_of(comp)
    assert [c["name"] for c in ch["cells"]] == ["down"]


def test_a_cycle_between_endpoints_stays_an_error():
    # packets the router sends to `a` come back to it and are routed to `a` again, forever upstream
    comp = compiled(textwrap.dedent("""\
        [cells.r]
        type = "Router"
        egress_connections = ["right", "a"]
        routing_table = [{ prefix = "10.2.0.0/16", interface_id = 0 }, { prefix = "0.0.0.0/0", interface_id = 1 }]

        [cells.a]
        type = "Delay"
        delay = "1ms"

        [cells.down]
        type = "Delay"
        delay = "1ms"

        [links]
        left = "r"
        a = "r"
        right = "down"
        down = "left"
        """))
    assert ("RTN041", "error") in {(c, s) for c, s, _ in findings(comp)}
    d = next(d for d in comp.diagnostics if d.code == "RTN041")
    assert any("round it forever" in h for h in d.help)


# -- .rtn stays strict --------------------------------------------------------------------------

@pytest.mark.parametrize("body, codes", [
    ("cell spare: loss { rate = 50% }\n left -> up -> right\n", {"RTN042"}),
    ("cell sink: delay { delay = 1ms }\n left -> up -> sink\n", {"RTN042", "RTN046"}),
    ("cell c1: delay { delay = 1ms }\n cell c2: loss { rate = 10% }\n left -> up -> right\n c1 -> c2 -> c1\n",
     {"RTN041", "RTN042"}),
], ids=["unlinked", "dead_end", "idle_cycle"])
def test_in_rtn_the_same_graphs_stay_errors(body, codes):
    text = ("channel c {\n cell up: delay { delay = 10ms }\n cell down: delay { delay = 20ms }\n " + body
            + " right -> down -> left\n}\n")
    comp = compile_text(text)
    assert {d.code for d in comp.diagnostics if d.is_error} == codes
    assert not comp.ok


# -- running it -----------------------------------------------------------------------------------

def sim(run_cli, tmp_path, text: str, *flows: str) -> dict:
    f = tmp_path / "path.toml"
    f.write_text(text, encoding="utf-8")
    argv = ["sim", str(f), "--duration", "1s", "--json"]
    for fl in flows:
        argv += ["--flow", fl]
    code, out, err = run_cli(*argv)
    assert code == 0, err
    return json.loads(out)


def test_a_sim_with_an_unlinked_cell_carries_traffic_on_the_linked_path(run_cli, tmp_path):
    r = sim(run_cli, tmp_path, UNLINKED, "left->right:cbr:10Mbps", "right->left:cbr:1Mbps")
    up, down = r["flows"]
    assert up["sent_packets"] > 800 and up["received_packets"] >= up["sent_packets"] - 10
    assert up["delay_ms"]["p50"] == pytest.approx(10, abs=0.1)
    assert down["received_packets"] >= down["sent_packets"] - 3
    assert down["delay_ms"]["p50"] == pytest.approx(20, abs=0.1)
    assert "spare" not in r["cells"]


def test_a_sim_with_a_dead_end_drops_what_enters_it_and_carries_the_rest(run_cli, tmp_path):
    r = sim(run_cli, tmp_path, DEAD_END, "left->right:cbr:1Mbps", "right->left:cbr:1Mbps")
    lost, back = r["flows"]
    assert lost["sent_packets"] > 50 and lost["received_packets"] == 0
    assert back["received_packets"] >= back["sent_packets"] - 3 and back["sent_packets"] > 50


def test_a_router_port_into_a_dead_end_drops_there(run_cli, tmp_path):
    # the router keeps its ports; the one whose cell is left out leads nowhere: `no_route` at the router
    text = textwrap.dedent("""\
        [cells.r]
        type = "Router"
        egress_connections = ["right", "sink"]
        routing_table = [{ prefix = "192.0.2.0/24", interface_id = 0 }, { prefix = "0.0.0.0/0", interface_id = 1 }]

        [cells.sink]
        type = "Delay"
        delay = "1ms"

        [links]
        left = "r"
        """) + BACK.replace('"down"', '"r2"').replace("down =", "r2 =") + '\n[cells.r2]\ntype = "Delay"\ndelay = "1ms"\n'
    comp = compiled(text)
    assert [(c, s) for c, s, _ in findings(comp)] == [("RTN042", "warning")]
    ch = plan_of(comp)
    assert [c["name"] for c in ch["cells"]] == ["r", "r2"] and ch["cells"][0]["outputs"] == 2
    assert ("r", "right") in links(ch) and not any(l["from"] == "r" and l["port"] == 1 for l in ch["links"])
    r = sim(run_cli, tmp_path, text, "left->right:cbr:1Mbps", "right->left:cbr:1Mbps")
    lost, back = r["flows"]
    assert lost["received_packets"] == 0
    assert r["cells"]["r"]["dropped_by_reason"] == {"no_route": lost["sent_packets"]}
    assert back["received_packets"] >= back["sent_packets"] - 3 and back["sent_packets"] > 50


def test_no_links_at_all_stays_an_error_as_upstream_refuses_to_start():
    # src/main.rs warns "No links specified in config", then rattan-core's core.rs `spawn_rattan`
    # returns SpawnError("No links specified")
    comp = compiled('[cells.up]\ntype = "Delay"\ndelay = "10ms"\n')
    assert [(c, s) for c, s, _ in findings(comp)] == [("RTN048", "error")]
    assert "upstream refuses to start without links" in comp.diagnostics[0].message

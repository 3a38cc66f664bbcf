"""Issue 12: graph diagnostics on upstream TOML/YAML speak the user's format.

RTN048 ("links nothing") fires only when a channel writes no link: when every link names an unknown
cell (upstream's old `[devices]` table, a typo in `.rtn`), name resolution already reports each name.
Help and fix texts in check_graph/check_return_paths use `.rtn` chains in `.rtn`, `[links]` lines
(`a = "b"`) in TOML and `links: {a: b}` in YAML, so that a fix can be copied as is.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from rattan.compiler import compile_text

ROOT = Path(__file__).resolve().parents[2]


def diags(text: str, name: str):
    return compile_text(textwrap.dedent(text), name).diagnostics


def by_code(ds, code):
    return [d for d in ds if d.code == code]


def helps(ds, code) -> list[str]:
    return [h for d in by_code(ds, code) for h in d.help]


# -- RTN048 only when there are really no links ------------------------------------------------

def test_links_to_unknown_cells_are_not_links_nothing_in_toml():
    path = ROOT / "tests/frontends/upstream/config_example_devices.toml"
    ds = compile_text(path.read_text(), str(path)).diagnostics
    assert not by_code(ds, "RTN048")
    unknown = by_code(ds, "RTN040")
    assert {d.message.split("`")[1] for d in unknown} == {"up_1", "up_2", "down_1", "down_2"}
    assert [d for d in ds if d.is_error][0].code == "RTN040"


def test_links_to_unknown_cells_are_not_links_nothing_in_rtn():
    ds = diags("""\
        channel c {
          left -> nosuchcell -> right
        }
        """, "c.rtn")
    assert not by_code(ds, "RTN048")
    assert [d.code for d in ds if d.is_error] == ["RTN040"]


def test_no_links_at_all_is_still_links_nothing():
    rtn = diags("channel c {\n  cell a: delay { delay = 1ms }\n}\n", "c.rtn")
    assert by_code(rtn, "RTN048")
    assert helps(rtn, "RTN048") == ["add a chain such as `left -> bw { rate = 10Mbps } -> right`"]
    toml = diags('[cells.up]\ntype = "Delay"\ndelay = "1ms"\n', "c.toml")
    assert helps(toml, "RTN048") == ['add a [links] section, e.g. `left = "up"`, `up = "right"`, '
                                     '`right = "left"`']
    yaml = diags("cells:\n  up: {type: Delay, delay: 1ms}\n", "c.yaml")
    assert helps(yaml, "RTN048") == ["add a `links:` section, e.g. `links: {left: up, up: right, right: left}`"]


# -- RTN045: an unused endpoint -------------------------------------------------------------------

def test_unused_endpoint_help_in_rtn_is_unchanged():
    ds = diags("""\
        channel c {
          endpoints left, right, spare
          left -> delay { delay = 1ms } -> right
          right -> delay { delay = 1ms } -> left
        }
        """, "c.rtn")
    assert helps(ds, "RTN045") == ["link it in a chain, or remove it from `endpoints`"]


def test_unused_endpoint_help_in_toml_names_links_and_veth_count():
    ds = diags("""\
        [env]
        left_veth_count = 2

        [cells.up]
        type = "Delay"
        delay = "10ms"

        [cells.down]
        type = "Delay"
        delay = "10ms"

        [links]
        left1 = "up"
        up = "right"
        right = "down"
        down = "left1"
        """, "c.toml")
    h = helps(ds, "RTN045")
    assert h == ['link it in [links], e.g. `left2 = "CELL"`, `CELL = "right"`, with `CELL` a cell under [cells]',
                 "or, to have one left veth fewer, write `left_veth_count = 1` in [env]"]
    assert not any("endpoints" in x for x in h)


def test_unused_endpoint_help_in_yaml():
    ds = diags("""\
        env: {right_veth_count: 3}
        cells:
          up: {type: Delay, delay: 10ms}
          down: {type: Delay, delay: 10ms}
        links: {left: up, up: right1, right1: down, down: left, right2: right3}
        """, "c.yaml")
    # right2 -> right3 uses both; nothing unused: a fresh file where right3 alone is unused
    assert not by_code(ds, "RTN045")
    ds = diags("""\
        env: {right_veth_count: 3}
        cells:
          up: {type: Delay, delay: 10ms}
          down: {type: Delay, delay: 10ms}
        links: {left: up, up: right1, right1: down, down: left, right2: left}
        """, "c.yaml")
    assert helps(ds, "RTN045") == [
        "link it in `links:`, e.g. `links: {right3: CELL, CELL: left}`, with `CELL` a cell under `cells:`",
        "or, to have one right veth fewer, write `right_veth_count: 2` in `env:`"]


def test_an_unused_middle_veth_gets_no_lower_count_advice():
    ds = diags("""\
        env: {left_veth_count: 3}
        cells:
          up: {type: Delay, delay: 10ms}
          down: {type: Delay, delay: 10ms}
        links: {left1: up, up: right, right: down, down: left1, left3: right}
        """, "c.yaml")
    assert [d.message for d in by_code(ds, "RTN045")] == ["endpoint `left2` is never used"]
    assert not any("veth_count" in h for h in helps(ds, "RTN045"))


# -- RTN042: a dead end -------------------------------------------------------------------------

DEAD_END = """\
[cells.up]
type = "Delay"
delay = "10ms"

[cells.sink]
type = "Delay"
delay = "1ms"

[links]
left = "up"
up = "right"
right = "sink"
"""


def test_dead_end_help_gives_a_links_line():
    ds = diags(DEAD_END, "c.toml")
    sink = next(d for d in by_code(ds, "RTN042") if "`sink`" in d.message)
    assert sink.help == ('Rattan drops them where they would enter `sink`; add a link from `sink` in [links], '
                         'e.g. `sink = "left"`',)  # on to the other side, not back to `right`
    ds = diags("cells:\n  up: {type: Delay, delay: 10ms}\n  sink: {type: Delay, delay: 1ms}\n"
               "links: {left: up, up: right, right: sink}\n", "c.yaml")
    sink = next(d for d in by_code(ds, "RTN042") if "`sink`" in d.message)
    assert sink.help == ("Rattan drops them where they would enter `sink`; add a link from `sink` in "
                         "`links:`, e.g. `links: {sink: left}`",)


def test_a_router_dead_end_is_fixed_by_a_route_not_a_links_line():
    ds = diags(DEAD_END.replace('[cells.sink]\ntype = "Delay"\ndelay = "1ms"',
                                '[cells.sink]\ntype = "Router"\negress_connections = ["left"]\n'
                                'routing_table = [{ prefix = "10.0.0.0/8" }]'), "c.toml")
    sink = next(d for d in by_code(ds, "RTN042") if "`sink`" in d.message)
    assert "`routing_table` entry with an `interface_id`" in sink.help[0]
    assert not any("sink =" in h for h in sink.help)
    assert sink.help[1] == "a [links] line from a Router does nothing upstream"


# -- RTN049: no way back ------------------------------------------------------------------------

ONE_WAY = """\
[env]
right_veth_count = 2

[cells.up]
type = "Delay"
delay = "10ms"

[links]
left = "up"
up = "right2"
right1 = "left"
"""


def test_no_path_back_help_in_rtn_is_unchanged():
    ds = diags("channel c {\n  left -> delay { delay = 1ms } -> right\n}\n", "c.rtn")
    assert helps(ds, "RTN049")[0] == "add a path back, e.g. `right -> delay { delay = 10ms } -> left`"


def test_no_path_back_help_in_toml_is_a_links_line():
    ds = diags(ONE_WAY, "c.toml")
    assert helps(ds, "RTN049")[0] == ('add a path back in [links], e.g. `right2 = "down"`, `down = "left"`, '
                                      'and a cell `[cells.down]` with `type = "Delay"`, `delay = "10ms"`')
    assert not any("->" in h for d in ds for h in d.help)


def test_no_path_back_help_in_yaml_and_a_fresh_cell_name():
    ds = diags("cells:\n  down: {type: Delay, delay: 10ms}\nlinks: {left: down, down: right}\n", "c.yaml")
    assert helps(ds, "RTN049")[0] == ("add a path back in `links:`, e.g. `links: {right: back, back: left}`, "
                                      "and a cell `back: {type: Delay, delay: 10ms}` under `cells:`")


def test_a_router_without_a_route_back_gets_a_routing_table_entry():
    ds = diags("""\
        [cells.up]
        type = "Delay"
        delay = "10ms"

        [cells.r]
        type = "Router"
        egress_connections = ["left"]
        routing_table = [{ prefix = "10.0.0.0/8" }]

        [links]
        left = "up"
        up = "right"
        right = "r"
        """, "c.toml")
    assert helps(ds, "RTN049") == ['add `{ prefix = "10.1.1.0/24", interface_id = N }` to the `routing_table` '
                                   'of `r`, with `egress_connections[N]` leading towards `left`']


def test_a_router_without_a_route_back_in_rtn_is_unchanged():
    ds = diags("""\
        channel c {
          cell r: router { routes = [route { prefix = right, port = 0 }], default = drop }
          left -> delay { delay = 1ms } -> right
          right -> r
          r[0] -> left
        }
        """, "c.rtn")
    assert helps(ds, "RTN049") == ["add `route { prefix = left, port = N }` to `r`, and link `r[N]` towards `left`"]


# -- RTN040: an unknown name in [links] -----------------------------------------------------------

def test_an_unknown_link_target_in_toml_is_declared_under_cells_not_written_inline():
    ds = diags('[cells.up]\ntype = "Delay"\ndelay = "10ms"\n[links]\nleft = "delay"\ndelay = "right"\n'
               'right = "up"\nup = "left"\n', "c.toml")
    # one chain, left -> delay -> right: `delay` is reported once
    assert helps(ds, "RTN040") == ["declare the cell as `[cells.delay]` with its `type`"]
    ds = diags("cells:\n  up: {type: Delay, delay: 10ms}\nlinks: {left: bw, bw: right, right: up, up: left}\n",
               "c.yaml")
    assert helps(ds, "RTN040") == ["declare the cell as `bw: {type: ...}` under `cells:`"]


def test_an_unknown_cell_type_name_in_rtn_keeps_its_inline_help():
    ds = diags("channel c {\n  left -> delay -> right\n}\n", "c.rtn")
    assert helps(ds, "RTN040") == ["`delay` is a cell type: write `delay { ... }` for an anonymous cell"]


def test_a_did_you_mean_fix_keeps_the_quotes_the_toml_string_has():
    ds = diags('[cells.up]\ntype = "Delay"\ndelay = "10ms"\n[links]\nleft = "upp"\nup = "right"\n'
               'right = "down"\n', "c.toml")
    assert [d.fix for d in by_code(ds, "RTN040")] == ['"up"', None]
    ds = diags("cells:\n  up: {type: Delay, delay: 10ms}\nlinks: {left: upp, up: right, right: 'upp'}\n", "c.yaml")
    assert [d.fix for d in by_code(ds, "RTN040")] == ["up", "'up'"]
    ds = diags("channel c {\n  cell up: delay { delay = 1ms }\n  left -> upp -> right\n}\n", "c.rtn")
    assert [d.fix for d in by_code(ds, "RTN040")] == ["up"]


def test_fan_out_help_names_a_router_in_its_format():
    # TOML keys are unique, so no document fans out: the pass is called on a channel given a second link
    import importlib
    from dataclasses import replace

    from rattan.ir.nodes import Link
    cg = importlib.import_module("rattan.passes.check_graph")
    comp = compile_text('[cells.up]\ntype = "Delay"\ndelay = "1ms"\n[links]\nleft = "up"\nup = "right"\n'
                        'right = "left"\n', "c.toml")
    ch = comp.program.channels[0]
    extra = Link("left", None, "right", ch.links[0].span)
    ch2 = replace(ch, links=ch.links + (extra,))
    for fmt, want in (("toml", 'route them with a cell of `type = "Router"`'),
                      ("rtn", "route them with a `router` cell")):
        ctx = _ctx(comp)
        cg._check_channel(ch2, ctx, cg.Syntax(fmt), len(ch2.links))
        assert any(want in h for d in ctx.sink.items if d.code == "RTN043" for h in d.help), fmt


def _ctx(comp):
    from rattan.diagnostics import Sink
    from rattan.passes.context import Context
    from rattan.registry import default_registry
    from rattan.source import SourceMap
    return Context(SourceMap(), Sink(), default_registry())

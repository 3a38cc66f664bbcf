"""Pass `check_return_paths`: an endpoint that receives packets can answer them (RTN049, a warning)."""
from __future__ import annotations

import pytest

from rattan.cli import main
from rattan.compiler import compile_path, compile_text
from tests.conftest import EXAMPLES, SHARED_EXAMPLES


def warnings(text: str) -> list:
    comp = compile_text(text)
    assert comp.ok, [d.message for d in comp.diagnostics]
    return [d for d in comp.diagnostics if d.code == "RTN049"]


def channel(body: str, endpoints: str = "left, right") -> str:
    return f"channel c {{\n    endpoints {endpoints}\n{body}}}\n"


def test_a_one_way_path_warns_at_the_silent_endpoint():
    (w,) = warnings(channel("    left -> bw { rate = 10Mbps } -> right\n"))
    assert w.severity == "warning"
    assert w.message.startswith("`right` receives packets from `left` but sends nothing back")
    assert w.labels[0].message == "`left` sends to `right` here"
    assert any("right -> delay { delay = 10ms } -> left" in h for h in w.help)


def test_a_path_each_way_is_clean():
    assert warnings(channel("    left -> bw { rate = 10Mbps } -> right\n    right -> left\n")) == []


def test_a_router_without_the_senders_route_warns_and_names_it():
    text = channel("    cell back: router { routes = [route { prefix = wifi, port = 0 }] }\n"
                   "    wifi -> server\n    wired -> server\n    server -> back\n    back[0] -> wifi\n",
                   "wifi, wired, server")
    (w,) = warnings(text)
    assert w.message.startswith("packets from `server` to `wired` have no path")
    assert [lab.message for lab in w.labels] == ["`wired` sends to `server` here", "no route to `wired`"]
    assert w.help == ("add `route { prefix = wired, port = N }` to `back`, and link `back[N]` towards `wired`",)


@pytest.mark.parametrize("routes", [
    # an address prefix may hold the endpoint's address: no warning on a guess
    'routes = [route { prefix = wifi, port = 0 }, route { prefix = "10.0.0.0/8", port = 1 }]',
    # what matches no route leaves on the default port
    "routes = [route { prefix = wifi, port = 0 }], default = 1",
    "routes = [route { prefix = wifi, port = 0 }, route { prefix = wired, port = 1 }]",
])
def test_a_router_that_may_send_the_reply_back_is_clean(routes):
    text = channel(f"    cell back: router {{ {routes} }}\n"
                   "    wifi -> server\n    wired -> server\n    server -> back\n    back[0] -> wifi\n"
                   "    back[1] -> wired\n", "wifi, wired, server")
    assert warnings(text) == []


def test_a_host_route_wins_over_the_default():
    """The endpoint's own route is the longest prefix: a default port cannot carry its packets."""
    text = channel("    cell back: router { routes = [route { prefix = wifi, port = 0 }, "
                   "route { prefix = wired, port = 0 }], default = 1 }\n"
                   "    wifi -> server\n    wired -> server\n    server -> back\n    back[0] -> wifi\n"
                   "    back[1] -> wired\n", "wifi, wired, server")
    (w,) = warnings(text)
    assert "to `wired` have no path" in w.message


def test_another_endpoint_does_not_forward():
    """a -> b, b -> c, c -> a: b's replies to a end at c, whose host does not forward them."""
    text = channel("    a -> delay { delay = 1ms } -> b\n    b -> delay { delay = 1ms } -> c\n"
                   "    c -> delay { delay = 1ms } -> a\n", "a, b, c")
    assert sorted(w.message.split(",")[0] for w in warnings(text)) == [
        "packets from `a` to `c` have no path", "packets from `b` to `a` have no path",
        "packets from `c` to `b` have no path"]


def test_a_compound_cell_is_followed_inside():
    text = ("cell type hop(rate: rate) {\n    in -> bw { rate = rate } -> out\n}\n"
            + channel("    left -> hop { rate = 5Mbps } -> right\n    right -> hop { rate = 5Mbps } -> left\n"))
    assert warnings(text) == []


def test_no_warning_in_a_program_with_errors():
    comp = compile_text(channel("    left -> bw { rate = 10 } -> right\n"))
    assert not comp.ok and all(d.code != "RTN049" for d in comp.diagnostics)


def test_the_warning_leaves_checks_exit_status_at_0(tmp_path, capsys):
    f = tmp_path / "one_way.rtn"
    f.write_text(channel("    left -> bw { rate = 10Mbps } -> right\n"))
    assert main(["check", str(f)]) == 0
    assert "warning[RTN049]" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted({p for base in (EXAMPLES, SHARED_EXAMPLES) if base.is_dir()
                                         for p in list(base.glob("*.*")) + list(base.glob("lib/*.rtn"))
                                         if p.suffix in (".rtn", ".toml", ".yaml")}), ids=str)
def test_the_examples_have_no_false_warning(path):
    comp = compile_path(str(path))
    assert comp.ok
    assert [d.message for d in comp.diagnostics if d.code == "RTN049"] == []

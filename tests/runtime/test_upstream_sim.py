"""`rattan sim` of an upstream TOML/YAML document gives its endpoints the addresses `rattan run` gives
them (left veth i 10.1.i.1, right veth i 10.2.i.1: rattan/runtime/netns.py, UpstreamNetwork), so a
Router's routing table, written for those, routes in virtual time as on real packets."""
import ipaddress

from rattan.compiler import compile_path
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.netns import UpstreamNetwork
from rattan.runtime.sim import endpoint_addresses, run
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "frontends" / "upstream"


def plan_of(path) -> dict:
    comp = compile_path(str(path))
    assert comp.ok, comp.diagnostics
    return build_plan(comp.program, comp.sources, default_registry())


def flows_of(result: dict) -> dict[str, dict]:
    return {f"{f['src']}->{f['dst']}": f for f in result["flows"]}


def test_multipath_routes_as_upstreams_test_multipath_ping():
    """rattan-core/tests/integration/multipath.rs: pings from left 1 and 2 to right 1 and 2 succeed,
    left 3 to right 1 fails. Here one flow per direction: left3's packets reach right1 (the router has
    10.2.1.1/32), the replies to 10.1.3.1 match no route and are dropped (`no_route`)."""
    plan = plan_of(CORPUS / "it_multipath.toml")
    wanted = ["left1->right1", "left1->right2", "right1->left1", "right1->left2", "left2->right2",
              "left3->right1", "right1->left3"]
    r = run(plan, None, [f"{w}:cbr:1Mbps" for w in wanted], "1s", 1)
    flows = flows_of(r)
    for name in wanted[:-1]:
        f = flows[name]
        assert f["sent_packets"] > 50 and f["received_packets"] == f["sent_packets"], (name, f)
    back = flows["right1->left3"]
    assert back["sent_packets"] > 50 and back["received_packets"] == 0
    assert r["cells"]["router"]["dropped_by_reason"] == {"no_route": back["sent_packets"]}


def test_config_example_router_routes_the_downlink_to_each_left_veth():
    """config.example.toml: right -> ... -> router, whose 10.1.1.1/24 and 10.1.2.1/24 lead to left1
    and left2; before sim had upstream's addresses every packet was `no_route`."""
    r = run(plan_of(CORPUS / "config_example.toml"), None,
            ["right->left1:cbr:100kbps", "right->left2:cbr:100kbps"], "2s", 1)
    for name, f in flows_of(r).items():
        assert f["sent_packets"] > 10 and f["received_packets"] > 0, (name, f)
    assert "no_route" not in r["cells"]["router"].get("dropped_by_reason", {})


def test_the_addresses_are_the_ones_run_plans_and_a_rtn_file_keeps_its_own(tmp_path):
    plan = plan_of(CORPUS / "it_multipath.toml")
    (channel,) = plan["channels"]
    got = {n: str(ipaddress.IPv4Address(a)) for n, a in endpoint_addresses(plan, channel).items()}
    assert got == {"left1": "10.1.1.1", "left2": "10.1.2.1", "left3": "10.1.3.1", "left4": "10.1.4.1",
                   "right1": "10.2.1.1", "right2": "10.2.2.1"}
    net = UpstreamNetwork(channel["endpoints"], channel["name"], plan["run"]["env"])
    assert {n: str(ipaddress.IPv4Address(a)) for n, a in endpoint_addresses(plan, channel).items()} \
        == net.planned_addresses()
    rtn = tmp_path / "p.rtn"
    rtn.write_text("channel p {\n    endpoints left, right\n    left -> right\n    right -> left\n}\n")
    rplan = plan_of(rtn)
    assert endpoint_addresses(rplan, rplan["channels"][0]) is None

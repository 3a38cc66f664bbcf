"""Upstream Rattan's control routes on our HTTP server (a virtual-time engine behind a real Unix-socket
server): each upstream config body changes its cell as upstream's would, read back through our API; a
body upstream refuses, or one asking what cannot change while running, is a 400 naming the field and
changes nothing. Bodies follow upstream's serde structs (rattan/control/upstream.py cites them)."""
from __future__ import annotations

import json

import pytest

from rattan.control import Client, ControlError, ControlServer
from rattan.registry import default_registry
from tests.conftest import ROOT
from tests.control.conftest import virtual_api
from tests.engine.test_control_and_threads import _rtn_value

TRACE = ROOT / "examples" / "traces" / "synthetic-lte.down"
# the front end's jiff reader (ISO 8601 and HH:MM:SS times in cells), where it has one yet
JIFF = pytest.mark.skipif(not hasattr(__import__("rattan.frontends.upstream", fromlist=["x"]), "parse_cell_time"),
                          reason="the front end has no jiff reader (parse_cell_time) yet")


def _source(folder) -> str:
    reg = default_registry()
    delay_trace = _rtn_value("delay_trace", "trace", reg.get("delay_trace").properties["trace"], folder)
    loss_trace = _rtn_value("loss_trace", "trace", reg.get("loss_trace").properties["trace"], folder)
    return f"""
channel c {{
    endpoints left, right
    cell up_1: bw {{ rate = 10Mbps, queue = droptail {{ packets = 100 }} }}
    cell up_2: delay {{ delay = 10ms }}
    cell up_3: loss {{ rate = 1% }}
    cell tb: token_bucket {{ rate = 10Mbps, burst = 10KB, limit = 100KB }}
    cell peak: token_bucket {{ rate = 10Mbps, burst = 10KB, peak_rate = 20Mbps, min_burst = 1500B }}
    cell replay: bw_trace {{ trace = {json.dumps(str(TRACE))} }}
    cell dt: delay_trace {{ trace = {delay_trace} }}
    cell lt: loss_trace {{ trace = {loss_trace} }}
    left -> up_1 -> up_2 -> up_3 -> tb -> peak -> right
    right -> replay -> dt -> lt -> left
}}
"""


@pytest.fixture
def client(tmp_path):
    api = virtual_api(_source(tmp_path), "upstream_api.rtn")
    with ControlServer(api, f"unix:{tmp_path}/api.sock") as server:
        yield Client(server.address)
        api.engine.stop()


def _runtime(client: Client) -> dict:
    return {c["name"]: client.get("c", c["name"])["runtime"] for c in client.cells()}


def _post(client: Client, path: str, body) -> tuple[int, dict]:
    """Status and JSON answer of a POST with `body` (bytes as they are, anything else as JSON)."""
    conn = client._connection()
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


@pytest.mark.parametrize("cell, body, want", [
    ("up_1", {"bandwidth": "5Mbps"}, {"rate": 5_000_000}),
    ("up_1", {"bandwidth": "1Gbps 200Mbps", "bw_type": "LinkLayer"}, {"rate": 1_200_000_000, "overhead": 38}),
    ("up_1", {"bandwidth": None, "bw_type": "LinkLayer"}, {"rate": 10_000_000, "overhead": 38}),
    ("up_2", {"delay": "50ms"}, {"delay": 50_000_000}),
    ("up_2", {"delay": "1s 500ms", "ingress_round_up": None}, {"delay": 1_500_000_000}),
    pytest.param("up_2", {"delay": "PT0.05S"}, {"delay": 50_000_000}, marks=JIFF),
    ("up_3", {"pattern": [0.2]}, {"rate": 0.2}),
    ("up_3", {"pattern": [0.05, 0.05]}, {"rate": 0.05}),
    ("up_3", {"pattern": []}, {"rate": 0.0}),       # an empty pattern loses nothing upstream
    ("tb", {"rate": "5Mbps", "burst": "20KB"}, {"rate": 5_000_000, "burst": 20_000}),
    ("tb", {"rate": "5Mbps", "burst": "20KiB", "limit": 100_000}, {"rate": 5_000_000, "burst": 20_480}),
    ("peak", {"rate": "5Mbps", "burst": "20KB", "peak_rate": "30Mbps", "min_burst": "1500B"},
     {"rate": 5_000_000, "burst": 20_000, "peak_rate": 30_000_000}),
    ("peak", {"rate": "5Mbps", "burst": "20KB", "peakrate": "40Mbps", "minburst": "1500"},
     {"peak_rate": 40_000_000}),
    ("replay", {"bw_type": "LinkLayer"}, {"overhead": 38}),
])
def test_an_upstream_config_body_changes_its_cell(client, cell, body, want):
    before = _runtime(client)
    status, answer = _post(client, f"/config/{cell}", body)
    assert status == 200, answer
    after = _runtime(client)
    assert {k: after[cell][k] for k in want} == pytest.approx(want)
    assert answer["cell"] == cell and answer["warnings"] == []
    assert {n: r for n, r in after.items() if n != cell} == {n: r for n, r in before.items() if n != cell}


@pytest.mark.parametrize("cell, body, field", [
    ("up_1", {"delay": "50ms"}, "bandwidth"),         # a Delay body on a Bw cell: 400 upstream too
    ("up_3", {"bandwidth": "100Mbps"}, "pattern"),    # a Bw body on a Loss cell: 400 upstream too
    ("up_1", {"bandwidth": "fast"}, "bandwidth"),
    ("up_1", {"bandwidth": 5000000}, "bandwidth"),    # human-bandwidth reads strings only
    ("up_1", {"bandwidth": None}, "bandwidth"),       # at least one of bandwidth, queue_config, bw_type
    ("up_1", {"bandwidth": "5Mbps", "queue_config": {"packet_limit": 10}}, "queue_config"),
    ("up_1", {"bandwidth": "5Mbps", "bw_type": "Ethernet"}, "bw_type"),
    ("up_2", {"delay": "soon"}, "delay"),
    ("up_2", {"delay": "50ms", "ingress_round_up": "1ms"}, "ingress_round_up"),
    ("up_3", {"pattern": [0.1, 0.5]}, "pattern"),
    ("up_3", {"pattern": "0.1"}, "pattern"),
    ("tb", {"rate": "5Mbps"}, "burst"),
    ("tb", {"rate": "5Mbps", "burst": "0B"}, "burst"),
    ("tb", {"rate": "5Mbps", "burst": "20KB", "limit": 5}, "limit"),
    ("tb", {"limit": 100_000}, "rate"),                # upstream would remove the bucket
    ("peak", {"rate": "5Mbps", "burst": "20KB"}, "peak_rate"),  # ... or the peak bucket
    ("peak", {"rate": "5Mbps", "burst": "20KB", "peak_rate": "30Mbps", "min_burst": "9000B"}, "min_burst"),
    ("replay", {"trace_config": {"type": "StaticBwConfig", "bw": "1Mbps"}}, "trace_config"),
    ("replay", {}, "trace_config"),
    ("dt", {"trace_config": {}}, "trace_config"),
    ("lt", {}, "trace_config"),
])
def test_a_bad_upstream_body_is_a_400_naming_the_field_and_changes_nothing(client, cell, body, field):
    before = _runtime(client)
    status, answer = _post(client, f"/config/{cell}", body)
    assert status == 400, answer
    assert field in [e["field"] for e in answer["errors"]] and field in answer["error"]
    assert _runtime(client) == before


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"Start"'])
def test_a_body_that_is_no_config_is_a_400(client, body):
    before = _runtime(client)
    status, answer = _post(client, "/config/up_1", body)
    assert status == 400 and answer["error"]
    assert _runtime(client) == before


def test_the_python_client_speaks_the_upstream_route(client):
    assert client.upstream_config("up_1", {"bandwidth": "7Mbps"})["changed"] == {"rate": 7_000_000}
    assert client.get("c", "up_1")["runtime"]["rate"] == 7_000_000
    with pytest.raises(ControlError) as e:
        client.upstream_config("up_1", {"bandwidth": "7 furlongs"})
    assert e.value.status == 400 and "bandwidth" in str(e.value)


def test_a_field_upstream_ignores_is_ignored_with_a_warning(client):
    status, answer = _post(client, "/config/up_2", {"delay": "30ms", "dealy": "1s"})
    assert status == 200
    assert client.get("c", "up_2")["runtime"]["delay"] == 30_000_000
    (warning,) = answer["warnings"]
    assert "`dealy`" in warning and "did you mean `delay`" in warning


def test_a_probability_beyond_0_and_1_means_what_it_means_upstream(client):
    status, answer = _post(client, "/config/up_3", {"pattern": [1.5]})
    assert status == 200 and client.get("c", "up_3")["runtime"]["rate"] == 1.0  # above 1 always drops
    assert "always drops" in answer["warnings"][0]
    status, _ = _post(client, "/config/up_3", {"pattern": [-0.5]})
    assert status == 200 and client.get("c", "up_3")["runtime"]["rate"] == 0.0


def test_an_unknown_id_is_a_404_and_a_wrong_method_a_405(client):
    status, answer = _post(client, "/config/wrong_id", {"delay": "50ms"})
    assert status == 404 and '"wrong_id"' in answer["error"] and "up_1" in answer["error"]
    with pytest.raises(ControlError) as e:
        client.request("GET", "/config/up_1")
    assert e.value.status == 405 and "POST" in str(e.value)


def test_notify_answers_as_upstream_for_a_running_instance(client):
    status, answer = _post(client, "/notify", "Start")
    assert status == 400 and "instead of Spawned" in answer["error"]
    assert _post(client, "/notify", "FirstPacket")[0] == 200
    assert _post(client, "/notify", "Stop")[0] == 400
    with pytest.raises(ControlError) as e:
        client.request("GET", "/notify")
    assert e.value.status == 405


def test_state_carries_upstreams_state_key(client):
    state = client.state()
    assert state["state"] == ("Running" if state["running"] else "Exited")


def test_the_openapi_document_describes_the_upstream_routes(client):
    doc = client.openapi()
    for cell in ("up_1", "up_2", "up_3", "tb", "peak", "replay", "dt", "lt"):
        assert "post" in doc["paths"][f"/config/{cell}"]
    assert doc["paths"]["/notify"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "enum": ["Start", "FirstPacket"]}
    assert doc["components"]["schemas"]["UpstreamBwCellConfig"]["required"] == ["bandwidth"]


UPSTREAM_TOML = """
[cells.up-1]
type = "Bw"
bandwidth = "10Mbps"
queue = "DropTail"
queue_config = { packet_limit = 100 }

[cells.up-delay]
type = "Delay"
delay = "10ms"

[links]
left = "up-1"
up-1 = "up-delay"
up-delay = "right"
right = "left"
"""


@pytest.mark.parametrize("cell_id", ["up-1", "up_1"])
def test_an_upstream_files_cell_ids_reach_their_cells(tmp_path, cell_id):
    api = virtual_api(UPSTREAM_TOML, "upstream.toml")  # the front end names `up-1` `up_1`
    with ControlServer(api, f"unix:{tmp_path}/api.sock") as server:
        client = Client(server.address)
        status, answer = _post(client, f"/config/{cell_id}", {"bandwidth": "3Mbps"})
        assert status == 200, answer
        assert client.get("upstream", "up_1")["runtime"]["rate"] == 3_000_000
        assert _post(client, "/config/up-delay", {"delay": "40ms"})[0] == 200
        assert client.get("upstream", "up_delay")["runtime"]["delay"] == 40_000_000
        api.engine.stop()

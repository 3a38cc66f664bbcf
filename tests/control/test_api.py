"""The control API over HTTP against the engine in virtual time: changes follow the schemas, apply
atomically at their logical time without losing packets, and a rejected request changes nothing."""
from __future__ import annotations

import json
import threading
import time

import pytest

from rattan.control import Client, ControlError, ControlServer
from rattan.registry import default_registry
from tests.control.conftest import every_runtime_cell, virtual_api
from tests.engine.test_control_and_threads import _other_value
from tests.engine.test_virtual_time import conserved

SEC, MS = 10**9, 10**6

PATH = """
channel c {
    endpoints left, right
    cell b: bw { rate = 10Mbps }
    cell o: outage { up = 5s, down = 1s }
    cell up: lossy_link
    left -> b -> up -> o -> right
    right -> delay { delay = 10ms } -> left
}
cell type lossy_link(d: time = 10ms) {
    in -> delay { delay = d } -> loss { rate = 0% } -> out
}
"""


@pytest.fixture
def served(tmp_path):
    """A channel loaded in an engine, its API on a Unix socket; yields (engine, nodes, client, api)."""
    api = virtual_api(PATH, "api.rtn")
    with ControlServer(api, f"unix:{tmp_path}/api.sock") as server:
        yield api.engine, api.targets[0].nodes, Client(server.address), api
        api.engine.stop()


def _runtime(client: Client) -> dict:
    return {c["name"]: client.get("c", c["name"])["runtime"] for c in client.cells()}


def test_a_rate_change_mid_flow_is_followed_within_one_rtt_and_loses_nothing(served):
    engine, nodes, client, _ = served
    flow = engine.add_flow(nodes["left"], nodes["right"], "cbr", 20_000_000, 1250, samples=True)  # 10,000-bit packets
    r = client.set("c", "b", rate="5Mbps", at="2s")
    assert r == {"applied_at_ns": 2 * SEC, "changed": {"rate": "5Mbps"}}
    engine.run_until(4 * SEC)
    delays, seqs = engine.flow_samples(flow)
    arrivals = sorted(s * 500_000 + d for s, d in zip(seqs, delays))  # sent every 0.5 ms
    def rate(t0, t1):
        return sum(t0 <= a < t1 for a in arrivals) * 10_000 / ((t1 - t0) / SEC)
    rtt = 20 * MS  # 10 ms each way
    assert rate(1 * SEC, 2 * SEC + 10 * MS) == pytest.approx(10e6, rel=0.01)  # until the change reaches `right`
    assert rate(2 * SEC + rtt, 4 * SEC) == pytest.approx(5e6, rel=0.01)       # the new rate, one RTT later
    for cell in ("b", "up.delay", "up.loss", "o"):
        conserved(engine, nodes[cell])
    assert engine.counters(nodes["b"]).dropped_packets == 0  # the change itself dropped nothing
    assert client.get("c", "b")["runtime"]["rate"] == 5_000_000


def test_several_parameters_change_at_one_instant(served):
    engine, nodes, client, _ = served
    client.set("c", "o", up="2s", down="500ms", at=SEC)
    engine.run_until(SEC)
    got = client.get("c", "o")["runtime"]
    assert (got["up"], got["down"]) == (2 * SEC, 500 * MS)


@pytest.mark.parametrize("body, field, words", [
    ({"rate": "10Mbqs"}, "rate", "wrong unit"),
    ({"rate": "fast"}, "rate", "not a quantity"),
    ({"rate": -5}, "rate", "at least 0"),
    ({"rate": True}, "rate", "not a boolean"),
    ({"queue": {"kind": "codel"}}, "queue", "cannot change while running"),
    ({"ratee": 5}, "ratee", "not a parameter of `bw`"),
    ({"rate": "5Mbps", "at": "soon"}, "at", "not a quantity"),
    ({"rate": "5Mbps", "at": -1}, "at", "between 0"),
    ({"rate": 1_000_000, "overhead": "38 furlongs"}, "overhead", "wrong unit"),  # the good one waits too
])
def test_a_rejected_change_names_the_field_and_changes_nothing(served, body, field, words):
    _, _, client, api = served
    before = _runtime(client)
    with pytest.raises(ControlError) as e:
        client.set("c", "b", **body)
    assert e.value.status == 422
    fields = {x["field"]: x["message"] for x in e.value.body["errors"]}
    assert field in fields and words in fields[field], fields
    assert _runtime(client) == before and api.changes == 0


def test_probabilities_symbols_and_compound_names(served):
    _, _, client, _ = served
    client.set("c", "up.loss", rate="2.5%")
    assert client.get("c", "up.loss")["runtime"]["rate"] == pytest.approx(0.025)
    with pytest.raises(ControlError, match="at most 1"):
        client.set("c", "up.loss", rate=1.5)
    client.set("c", "o", state="down")
    assert client.get("c", "o")["runtime"]["state"] == "down"
    with pytest.raises(ControlError, match='one of "up", "down"'):
        client.set("c", "o", state="sideways")


def test_errors_of_addressing_and_method(served):
    _, _, client, _ = served
    for path, status, words in [("/channels/c/cells/nope", 404, "cells: b, "), ("/channels/x/cells/b", 404, "channels: c"),
                                ("/nowhere", 404, "/openapi.json"), ("/channels/c/cells/b?instance=1", 422, "0 to 0"),
                                ("/channels/c/cells/b?instance=x", 422, "integer")]:
        with pytest.raises(ControlError) as e:
            client.request("GET", path)
        assert e.value.status == status and words in json.dumps(e.value.body), e.value.body
    with pytest.raises(ControlError) as e:
        client.request("DELETE", "/channels/c/cells/b")
    assert e.value.status == 405
    with pytest.raises(ControlError) as e:
        client.request("PATCH", "/channels/c/cells/b", ["rate"])
    assert e.value.status == 422


def test_a_change_in_the_past_is_refused(served):
    engine, _, client, _ = served
    engine.run_until(3 * SEC)
    with pytest.raises(ControlError, match="in the past"):
        client.set("c", "b", rate="1Mbps", at="1s")
    assert client.get("c", "b")["runtime"]["rate"] == 10_000_000


def test_the_openapi_document_comes_from_the_schemas(served):
    _, _, client, _ = served
    doc = client.openapi()
    assert "/channels/c/cells/up.delay" in doc["paths"] and "patch" in doc["paths"]["/channels/c/cells/up.delay"]
    assert "/channels/c/cells/b/telemetry" in doc["paths"]


def _api_value(prop: dict, current):
    """A value of the parameter's schema, as the API takes it, other than `current`."""
    if "enum" in prop:  # the API reads and writes a symbol by its name
        return prop["enum"][(prop["enum"].index(current) + 1) % len(prop["enum"])]
    value = _other_value(prop, current)
    return int(value) if prop.get("type") == "integer" else value


def test_every_runtime_parameter_of_every_cell_type_is_in_the_api(tmp_path):
    """One cell of each registry type with runtime parameters (the list comes from the schemas, so
    a new cell is covered with no edit here): its change body in the OpenAPI document is exactly its
    runtime parameters, and each of them can be set through the API to another value, read back."""
    source, types = every_runtime_cell(tmp_path)
    api = virtual_api(source, "every.rtn")
    reg = default_registry()
    with ControlServer(api, f"unix:{tmp_path}/api.sock") as server:
        client = Client(server.address)
        doc = client.openapi()
        set_ = set()
        for t in types:
            body = doc["components"]["schemas"][f"Change_{t}"]
            assert set(body["properties"]) == set(reg.get(t).runtime_params()) | {"at"}, t
            assert body["additionalProperties"] is False
            assert "patch" in doc["paths"][f"/channels/c/cells/{t}_1"]
            for param, current in client.get("c", f"{t}_1")["runtime"].items():
                value = _api_value(reg.get(t).properties[param], current)
                client.set("c", f"{t}_1", **{param: value})
                assert client.get("c", f"{t}_1")["runtime"][param] == pytest.approx(value), (t, param)
                set_.add((t, param))
        api.engine.stop()
    assert set_ == {(t, p) for t in reg.names() for p in reg.get(t).runtime_params()}
    assert len(types) >= 8 and api.changes == len(set_)


def test_a_thousand_changes_during_traffic_lose_nothing(served):
    """Virtual time paced by the clock in the engine thread, a flow through it, and 1,000 changes
    from four client threads meanwhile: every packet is accounted for, none dropped."""
    engine, nodes, client, api = served
    flow = engine.add_flow(nodes["left"], nodes["right"], "cbr", 8_000_000, 1000)
    engine.start(60 * SEC, clock="real")
    errors = []

    def hammer(k):
        try:
            for i in range(250):
                client.set("c", "b", rate=f"{5 + (i + k) % 10}Mbps")
                if i % 50 == 0:
                    client.telemetry("c", "b")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    time.sleep(0.2)
    engine.stop()
    assert not errors and api.changes == 1000
    assert client.state()["changes_applied"] == 1000
    for cell in ("b", "up.delay", "up.loss", "o"):
        conserved(engine, nodes[cell])
    st = engine.flow_stats(flow)
    inside = sum(engine.counters(nodes[c]).queued_packets for c in ("b", "up.delay", "up.loss", "o"))
    assert st["received_packets"] + inside == st["sent_packets"] > 0  # nothing lost (the outage is up)


def test_telemetry_gives_a_cells_first_and_last_frame_out(served):
    engine, nodes, client, _ = served
    assert (client.telemetry("c", "b")["first_out_ns"], client.telemetry("c", "b")["last_out_ns"]) == (None, None)
    # 1250 B every 2 ms from t=0 through 10 Mbit/s (1 ms a packet): out at 1, 3, ... 999 ms by 1 s
    engine.add_flow(nodes["left"], nodes["right"], "cbr", 5_000_000, 1250)
    engine.run_until(SEC)
    t = client.telemetry("c", "b")
    assert (t["out_packets"], t["first_out_ns"], t["last_out_ns"]) == (500, 1 * MS, 999 * MS)

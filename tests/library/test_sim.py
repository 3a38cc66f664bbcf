"""rattan.sim: the result objects hold what `rattan sim --json` prints, which is the same document."""
from __future__ import annotations

import json

import pytest

import rattan
from tests.conftest import EXAMPLES

FLOWS = ["left->right:cbr:30Mbps", "right->left:poisson:1Mbps:size=200B"]


def test_the_result_is_the_cli_s_json_document_as_objects(run_cli):
    path = EXAMPLES / "broadband.rtn"
    code, out, err = run_cli("sim", str(path), "--flow", FLOWS[0], "--flow", FLOWS[1], "--duration", "3s",
                             "--seed", "7", "--json")
    assert code == 0, err
    r = rattan.sim(rattan.compile(path), FLOWS, "3s", seed=7)
    assert r.document == json.loads(out) and r.json() == out
    assert (r.channel, r.seed, r.duration_s) == ("broadband", 7, 3.0)
    assert [(f.src, f.dst, f.kind) for f in r.flows] == [("left", "right", "cbr"), ("right", "left", "poisson")]
    for flow, doc in zip(r.flows, r.document["flows"]):
        assert (flow.throughput_bps, flow.sent_packets, flow.received_packets, flow.delay_ms) == \
            (doc["throughput_bps"], doc["sent_packets"], doc["received_packets"], doc["delay_ms"])
    up = r.flows[0]
    assert 0 < up.throughput_bps < 30e6 and up.loss > 0  # 30 Mbit/s into a slower uplink
    assert set(r.cells) == set(r.document["cells"])
    for name, cell in r.cells.items():
        doc = r.document["cells"][name]
        assert (cell.name, cell.in_packets, cell.out_packets, cell.dropped_packets, cell.dropped_by_reason) == \
            (name, doc["in_packets"], doc["out_packets"], doc["dropped_packets"], doc["dropped_by_reason"])
    assert sum(c.dropped_packets for c in r.cells.values()) > 0
    assert r.series == r.document["series"] and len(r.series["t_s"]) == 30


def test_a_path_or_a_plan_file_runs_too_and_differs_by_seed(tmp_path):
    c = rattan.compile(EXAMPLES / "broadband.rtn")
    plan = tmp_path / "plan.json"
    plan.write_text(c.plan_json())
    by_path = rattan.sim(EXAMPLES / "broadband.rtn", FLOWS[1], "2s")
    by_plan = rattan.sim(rattan.load_plan(plan), FLOWS[1], "2s")
    assert by_path.document == by_plan.document == rattan.sim(str(plan), FLOWS[1], "2s").document
    assert rattan.sim(c, FLOWS[1], "2s", seed=2).flows[0].sent_packets != by_path.flows[0].sent_packets


@pytest.mark.parametrize("kw, message", [
    ({"flows": ["left->nowhere:cbr:1Mbps"]}, "`nowhere` is not an endpoint"),
    ({"flows": ["left->right:cbr:fast"]}, "--flow `left->right:cbr:fast`"),
    ({"duration": "0s"}, "--duration must be longer than 0s"),
    ({"channel": "other"}, "no channel `other`"),
])
def test_what_cannot_run_is_a_sim_error(kw, message):
    args = {"flows": FLOWS, "duration": "1s", **kw}
    with pytest.raises(rattan.SimError, match=message.replace("(", r"\(").replace("$", r"\$")):
        rattan.sim(EXAMPLES / "broadband.rtn", **args)


def test_a_file_with_errors_is_a_compile_error_not_a_run():
    bad = rattan.compile(text="channel c { endpoints a, b\n a -> bw { rate = 1 } -> b\n b -> a }\n", name="bad.rtn")
    with pytest.raises(rattan.CompileError, match="RTN021"):
        rattan.sim(bad, ["a->b:cbr:1Mbps"], "1s")

"""The case study (examples/case-study): its experiment file (300 runs for `rattan batch`), its
topology in the four settings, and in virtual time the policer dropping and the shaper queueing at
2 Mbit/s."""

from pathlib import Path

import pytest

import rattan
from rattan.batch.experiment import load

CASE = Path(__file__).resolve().parent.parent / "examples" / "case-study"
SETTINGS = [{"queue": q, "jitter": j} for q in ("policer", "shaper") for j in ("constant", "variable")]


def _experiment():
    return load(CASE / "experiment.yaml")


def test_experiment_sweeps_what_the_issue_asks():
    exp = _experiment()  # ExperimentError (with its diagnostics) if the file does not validate
    assert set(exp.axes["cc"]) >= {"cubic", "bbr", "reno"}
    assert exp.axes["size"][0] == "100KB" and exp.axes["size"][-1] == "10MB"
    assert exp.axes["limiter"] == ["policer", "shaper"] and exp.axes["delay"] == ["constant", "variable"]
    assert exp.lets == {"queue": "{limiter}", "jitter": "{delay}"}
    assert len(exp.seeds) >= 5
    jobs = exp.jobs()
    assert len(jobs) == 2 * 2 * 3 * 5 * 5
    # 300 distinct runs: distinct parameters and distinct resume keys
    assert len({j.key for j in jobs}) == 300
    assert len({tuple(sorted(j.params.items())) for j in jobs}) == 300


def test_jobs_fill_lets_and_commands():
    jobs = _experiment().jobs()
    j = next(j for j in jobs if {k: j.params[k] for k in ("limiter", "delay", "cc", "size", "seed")}
             == {"limiter": "shaper", "delay": "variable", "cc": "bbr", "size": "3MB", "seed": 4})
    assert j.lets == {"queue": "shaper", "jitter": "variable"} and j.seed == 4
    transfer = next(w for w in j.workload if w["name"] == "transfer")
    assert transfer["endpoint"] == "phone" and transfer["extract"] == "iperf3"
    # -R: the server sends and the phone's client stops once it has received {size} bytes
    assert transfer["command"] == "iperf3 -c $RATTAN_SERVER_IP -R -n 3MB -C bbr -J"
    server = next(w for w in j.workload if w["endpoint"] == "server")
    assert server["background"] and server["command"] == "iperf3 -s -1"


def test_plots_goodput_and_loss_by_cc_faceted_by_queue_and_delay():
    exp = _experiment()
    docs = CASE.parent.parent / "docs"
    plots = {p["metric"]: p for p in exp.plots}
    assert set(plots) == {"transfer.goodput_bps", "transfer.retransmit_rate"}
    for name, p in zip(("goodput", "loss"), (plots["transfer.goodput_bps"], plots["transfer.retransmit_rate"])):
        assert (p["x"], p["lines"], p["facet"], p["facet_rows"]) == ("size", "cc", "limiter", "delay")
        assert p["output"] == [str(docs / f"case-study-{name}.png"), str(docs / f"case-study-{name}.svg")]


@pytest.mark.parametrize("lets", SETTINGS, ids=lambda s: f"{s['queue']}-{s['jitter']}")
def test_settings_check_and_compile(lets):
    c = rattan.compile(CASE / "mobile.rtn", lets=lets)
    assert c.ok, c.render()
    tb = next(x for x in c.plan["channels"][0]["cells"] if x["name"] == "limiter")
    assert tb["config"]["rate"] == 2_000_000
    assert tb["config"]["limit"] == (0 if lets["queue"] == "policer" else 100_000)
    down = next(x for x in c.plan["channels"][0]["cells"] if x["name"] == "down")
    assert down["config"]["jitter"] == (0 if lets["jitter"] == "constant" else 20_000_000)  # ns


@pytest.mark.parametrize("lets", SETTINGS, ids=lambda s: f"{s['queue']}-{s['jitter']}")
def test_policer_drops_and_shaper_queues(lets):
    c = rattan.compile(CASE / "mobile.rtn", lets=lets)
    r = rattan.sim(c, flows=["server->phone:cbr:4Mbps"], duration="5s", seed=1)
    flow = r.flows[0]
    # both let 2 Mbit/s through, whatever the delay
    assert 1.8e6 < flow.throughput_bps < 2.3e6
    p50 = flow.delay_ms["p50"]
    if lets["queue"] == "policer":
        assert p50 < 80            # policer: no queueing delay, base 30 ms + jitter
    else:
        assert p50 > 300           # shaper: ~400 ms of queue at 2 Mbit/s
    assert r.cells["limiter"].dropped_packets > 500
    tail = flow.delay_ms["p99"] - p50
    if lets["jitter"] == "constant":
        assert tail < 1            # every packet the same delay (the full queue's, for the shaper)
    else:
        assert tail > 15           # 20 ms standard deviation of jitter on top

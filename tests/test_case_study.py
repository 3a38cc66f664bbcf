"""The case study (examples/case-study): its experiment file, its topology in
the four settings, and in virtual time the policer dropping and the shaper
queueing at 2 Mbit/s."""

import itertools
from pathlib import Path

import pytest
import yaml

import rattan

CASE = Path(__file__).resolve().parent.parent / "examples" / "case-study"
SETTINGS = [{"queue": q, "jitter": j} for q in ("0B", "100KB") for j in ("0ms", "20ms")]


def _experiment():
    return yaml.safe_load((CASE / "experiment.yaml").read_text())


def test_experiment_sweeps_what_the_issue_asks():
    exp = _experiment()
    sweep = exp["sweep"]
    assert set(sweep["cc"]) >= {"cubic", "bbr", "reno"}
    assert sweep["size"][0] == "100KB" and sweep["size"][-1] == "10MB"
    assert exp["seeds"] >= 5
    runs = len(list(itertools.product(*sweep.values()))) * exp["seeds"]
    assert runs == 2 * 2 * 3 * 5 * 5
    # every let the sweep sets exists in the topology
    for name in exp["lets"]:
        assert rattan.compile(CASE / exp["topology"], lets={name: "0B" if name == "queue" else "0ms"}).ok


def test_experiment_expands_with_batch_dry_run():
    batch = pytest.importorskip("rattan.batch.experiment", reason="rattan batch not merged yet")
    exp = batch.load_experiment(CASE / "experiment.yaml")  # pragma: no cover - depends on h-batch
    assert len(list(exp.jobs())) == 300


@pytest.mark.parametrize("lets", SETTINGS, ids=lambda s: f"{s['queue']}-{s['jitter']}")
def test_settings_check_and_compile(lets):
    c = rattan.compile(CASE / "mobile.rtn", lets=lets)
    assert c.ok, c.render()
    tb = next(x for x in c.plan["channels"][0]["cells"] if x["name"] == "limiter")
    assert tb["config"]["rate"] == 2_000_000
    assert tb["config"]["limit"] == (0 if lets["queue"] == "0B" else 100_000)


@pytest.mark.parametrize("lets", SETTINGS, ids=lambda s: f"{s['queue']}-{s['jitter']}")
def test_policer_drops_and_shaper_queues(lets):
    c = rattan.compile(CASE / "mobile.rtn", lets=lets)
    r = rattan.sim(c, flows=["server->phone:cbr:4Mbps"], duration="5s", seed=1)
    flow = r.flows[0]
    # both let 2 Mbit/s through, whatever the delay
    assert 1.8e6 < flow.throughput_bps < 2.3e6
    p50 = flow.delay_ms["p50"]
    if lets["queue"] == "0B":
        assert p50 < 80            # policer: no queueing delay, base 30 ms + jitter
    else:
        assert p50 > 300           # shaper: ~400 ms of queue at 2 Mbit/s
    assert r.cells["limiter"].dropped_packets > 500


def _runner():
    import importlib.util
    spec = importlib.util.spec_from_file_location("case_study_run", CASE / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_py_expands_the_experiment_file(capsys):
    run = _runner()
    assert run.main([str(CASE / "experiment.yaml"), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == "300 runs"
    assert run.main([str(CASE / "experiment.yaml"), "--dry-run", "--axis", "size=100KB,10MB"]) == 0
    assert capsys.readouterr().out.strip() == "120 runs"
    jobs = run.jobs(run.load(CASE / "experiment.yaml"), str(CASE / "experiment.yaml"))
    assert len({j["key"] for j in jobs}) == 300
    j = next(j for j in jobs if j["params"] == {"queue": "100KB", "jitter": "20ms", "cc": "bbr",
                                                  "size": "3MB", "seed": 4})
    assert j["lets"] == {"queue": "100KB", "jitter": "20ms"}
    assert j["workload"][1]["command"] == "iperf3 -c $RATTAN_SERVER_IP -R -n 3MB -C bbr -J"


def test_run_py_reads_iperf3_goodput_and_retransmit_rate():
    import json
    doc = {"start": {"tcp_mss_default": 1448},
           "end": {"sum_sent": {"bytes": 1448000, "retransmits": 50},
                   "sum_received": {"bytes": 1048576, "bits_per_second": 1.9e6, "seconds": 4.4}}}
    m = _runner().iperf3_metrics(json.dumps(doc))
    assert m["goodput_bps"] == 1.9e6
    assert m["retransmits"] == 50
    assert m["retransmit_rate"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="unable to connect"):
        _runner().iperf3_metrics(json.dumps({"error": "unable to connect to server"}))

"""`rattan sim`: flags, errors and the result document of PRODUCT.md."""
from __future__ import annotations

import json

import pytest


def test_sim_json_document(run_cli):
    code, out, err = run_cli("sim", "examples/flaky.rtn", "--flow", "left->right:cbr:60Mbps",
                             "--duration", "12s", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["duration_s"] == 12.0 and r["seed"] == 1
    (f,) = r["flows"]
    for key in ("src", "dst", "kind", "sent_packets", "sent_bytes", "received_packets", "received_bytes",
                "misdelivered_packets", "reordered_packets", "throughput_bps", "delay_ms"):
        assert key in f
    assert set(f["delay_ms"]) == {"min", "p50", "p99", "max", "mean"}
    assert f["misdelivered_packets"] == 0 and "warnings" not in r and "samples" not in f
    assert r["endpoints"]["right"]["delivered_packets"] == f["received_packets"]
    assert r["endpoints"]["left"]["sent_packets"] == f["sent_packets"]
    # 50 Mbit/s for 10 s, then 5 Mbit/s (the `at 10s` change) for 2 s
    assert f["received_bytes"] * 8 == pytest.approx(50e6 * 10 + 5e6 * 2, rel=0.01)
    for name, c in r["cells"].items():
        assert c["in_packets"] == c["out_packets"] + c["dropped_packets"] + c["queued_packets"], name


def test_sim_outage_windows_carry_nothing(run_cli):
    code, out, err = run_cli("sim", "examples/flaky.rtn", "--flow", "left->right:cbr:4Mbps",
                             "--duration", "29s", "--json")
    assert code == 0, err
    a = json.loads(out)["flows"][0]["received_bytes"]
    code, out, _ = run_cli("sim", "examples/flaky.rtn", "--flow", "left->right:cbr:4Mbps",
                           "--duration", "31900ms", "--json")
    b = json.loads(out)["flows"][0]["received_bytes"]
    # from 30 s to 32 s the rate is 0: almost nothing arrives in [29 s, 31.9 s] beyond [29 s, 30 s] + 10 ms
    assert (b - a) * 8 <= 4e6 * 1.1


def test_sim_series_shows_every_outage_and_the_new_rate(run_cli):
    """flaky.rtn: 50 Mbit/s, 5 Mbit/s from 10 s, nothing in the 2-s outage every 30 s; sampled every 10 ms."""
    code, out, err = run_cli("sim", "examples/flaky.rtn", "--flow", "left->right:cbr:20Mbps",
                             "--duration", "95s", "--interval", "10ms", "--json")
    assert code == 0, err
    s = json.loads(out)["series"]
    assert s["interval_s"] == 0.01 and len(s["t_s"]) == 9500
    ms = [round(t * 1000) for t in s["t_s"]]  # each sample covers the 10 ms that end at its time
    rx = dict(zip(ms, s["flows"][0]["received_bps"]))
    configured = dict(zip(ms, s["cells"]["up"]["rate_bps"]))
    for start in (30_000, 60_000, 90_000):  # the outage, seen at `right` 10 ms later (the delay after `up`)
        window = [bps for t, bps in rx.items() if start + 20 <= t <= start + 2000]
        assert len(window) == 199 and all(bps == 0 for bps in window), start
        assert all(configured[t] == 0 for t in rx if start <= t < start + 2000)
    rx = {t / 1000: bps for t, bps in rx.items()}
    configured = {t / 1000: v for t, v in configured.items()}
    before = [bps for t, bps in rx.items() if 1 <= t < 10]
    assert sum(before) / len(before) == pytest.approx(20e6, rel=0.01)  # the offered load, under 50
    assert all(abs(bps - 20e6) <= 1500 * 8 / 0.01 for bps in before)
    after = [bps for t, bps in rx.items() if 11 <= t < 30]
    assert sum(after) / len(after) == pytest.approx(5e6, rel=0.01)  # the new rate after 10 s,
    assert all(abs(bps - 5e6) <= 1500 * 8 / 0.01 for bps in after)  # in every 10 ms within a packet
    assert all(configured[t] == 5e6 for t in rx if 10 < t < 30)


def test_sim_interval_errors(run_cli):
    code, _, err = run_cli("sim", "examples/flaky.rtn", "--flow", "left->right:cbr:1Mbps", "--duration", "10s",
                           "--interval", "1ns")
    assert code == 2 and "million samples" in err


def test_sim_table_for_people(run_cli):
    code, out, _ = run_cli("sim", "examples/compound.rtn", "--flow", "left->right:poisson:10Mbps",
                           "--duration", "2s")
    assert code == 0
    assert "left->right poisson" in out and "up.bw" in out


@pytest.mark.parametrize("flow, message", [
    ("left-right:cbr:1Mbps", "expected SRC->DST:KIND:RATE"),
    ("left->right:tcp:1Mbps", "`tcp` is not `cbr` or `poisson`"),
    ("left->right:cbr:1MB", "not a rate"),
    ("left->mars:cbr:1Mbps", "`mars` is not an endpoint"),
    ("left->right:cbr:1Mbps:size=10", "not a size"),
])
def test_sim_flag_errors(run_cli, flow, message):
    code, _, err = run_cli("sim", "examples/compound.rtn", "--flow", flow, "--duration", "1s")
    assert code == 2 and message in err


def test_sim_bad_duration(run_cli):
    code, _, err = run_cli("sim", "examples/compound.rtn", "--flow", "left->right:cbr:1Mbps", "--duration", "10")
    assert code == 2 and "--duration" in err


SWAPPED = """\
# The router's two routes are swapped: each flow reaches the other endpoint.
channel crossed {
    endpoints server, a, b
    cell back: router { routes = [route { prefix = a, port = 1 }, route { prefix = b, port = 0 }] }
    server -> back
    back[0] -> a
    back[1] -> b
    a -> server
    b -> server
}
"""


def test_sim_counts_and_warns_about_packets_that_reach_the_wrong_endpoint(run_cli, tmp_path):
    path = tmp_path / "crossed.rtn"
    path.write_text(SWAPPED)
    code, out, err = run_cli("sim", str(path), "--flow", "server->a:cbr:1Mbps", "--flow", "server->b:cbr:2Mbps",
                             "--duration", "1s", "--json")
    assert code == 0, err
    r = json.loads(out)
    to_a, to_b = r["flows"]
    assert to_a["received_packets"] == to_b["received_packets"] == 0
    assert to_a["misdelivered_packets"] == to_a["sent_packets"] > 0
    assert to_b["misdelivered_packets"] == to_b["sent_packets"] > 0
    assert r["endpoints"]["a"]["delivered_packets"] == to_b["sent_packets"]  # b's packets, at a
    assert r["endpoints"]["b"]["delivered_packets"] == to_a["sent_packets"]
    assert len(r["warnings"]) == 2 and "server->a" in r["warnings"][0]
    assert err.count("warning:") == 2 and "another endpoint than `a`" in err
    code, out, err = run_cli("sim", str(path), "--flow", "server->a:cbr:1Mbps", "--duration", "1s")
    assert code == 0 and "warning:" in err and "server->a" in err  # the table for people warns too


def test_sim_raw_samples_only_on_request(run_cli):
    args = ("sim", "examples/flaky.rtn", "--flow", "left->right:cbr:2Mbps", "--duration", "1s", "--json")
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert "samples" not in json.loads(out)["flows"][0]
    code, out, err = run_cli(*args, "--samples")
    assert code == 0, err
    f = json.loads(out)["flows"][0]
    s = f["samples"]
    assert len(s["seq"]) == len(s["delay_ns"]) == f["received_packets"] > 90
    assert s["seq"] == sorted(s["seq"])  # no reordering on this path
    assert min(s["delay_ns"]) / 1e6 == f["delay_ms"]["min"] and max(s["delay_ns"]) / 1e6 == f["delay_ms"]["max"]

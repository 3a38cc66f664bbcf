"""The packet log in virtual time: every event of the logged cells is recorded, the counts equal the
engine's counters, and it converts to CSV and to a pcap that tcpdump reads."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest

from rattan.runtime import packet_log


def _sim(run_cli, tmp_path, *extra):
    log = tmp_path / "run.log"
    code, out, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:poisson:25Mbps",
                             "--flow", "right->left:cbr:2Mbps", "--duration", "4s", "--json",
                             "--packet-log", str(log), *extra)
    assert code == 0, err
    return log, json.loads(out)


def test_the_log_counts_what_the_engine_counts(run_cli, tmp_path):
    log, result = _sim(run_cli, tmp_path)
    rows = {r["cell"]: r for r in packet_log.summary(str(log))}
    assert set(rows) == set(result["cells"])  # every cell by default
    for name, c in result["cells"].items():
        r = rows[name]
        assert (r["arrived"], r["departed"], r["dropped"]) == (c["in_packets"], c["out_packets"], c["dropped_packets"])
        assert r["dropped_by_reason"] == c["dropped_by_reason"]
    assert rows["up"]["dropped_by_reason"]["queue_full"] > 0  # 25 Mbit/s into 20: the queue overflows
    assert rows["delay_1"]["sojourn_ms"]["p50"] == pytest.approx(20.0)  # the delay cell's 20 ms


def test_csv_and_pcap(run_cli, tmp_path):
    log, result = _sim(run_cli, tmp_path)
    code, _, err = run_cli("log", str(log), "--to", "csv")
    assert code == 0, err
    with open(tmp_path / "run.csv") as f:
        rows = list(csv.DictReader(f))
    total = sum(c["in_packets"] + c["out_packets"] + c["dropped_packets"] for c in result["cells"].values())
    assert len(rows) == total
    drops = [r for r in rows if r["event"] == "drop"]
    assert drops and all(r["reason"] == "queue_full" and r["cell"] == "up" for r in drops)
    code, _, err = run_cli("log", str(log), "--to", "pcap", "--cell", "up", "-o", str(tmp_path / "up.pcap"))
    assert code == 0, err
    if shutil.which("tcpdump"):
        out = subprocess.run(["tcpdump", "-n", "-r", str(tmp_path / "up.pcap")], capture_output=True, text=True)
        lines = out.stdout.splitlines()
        assert len(lines) == result["cells"]["up"]["out_packets"]
        assert "IP 10.0.1.2.5000 > 10.0.2.2.5000: UDP, length 1472" in lines[0]


def test_only_chosen_cells_are_logged(run_cli, tmp_path):
    log, result = _sim(run_cli, tmp_path, "--log-cells", "up, down")
    assert {r["cell"] for r in packet_log.summary(str(log))} == {"up", "down"}
    code, _, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:cbr:1Mbps", "--duration", "1s",
                           "--packet-log", str(tmp_path / "x.log"), "--log-cells", "upp")
    assert code == 2 and "no cell upp" in err


def test_reading_refuses_what_is_not_a_log(run_cli, tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"hello world, not a log")
    code, _, err = run_cli("log", str(bad))
    assert code == 2 and "not a rattan packet log" in err
    log, _ = _sim(run_cli, tmp_path)
    code, _, err = run_cli("log", str(log), "--to", "pcap")
    assert code == 2 and "--cell" in err
    code, _, err = run_cli("log", str(log), "--cell", "nope", "--to", "csv")
    assert code == 2 and "no cell `nope`" in err

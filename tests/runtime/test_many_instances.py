"""Many channel instances from one `rattan run` (root): `-n N` copies of a channel and `--all`
channels of a file, each with its own namespaces, addresses, commands and output; all removed."""
from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys

import pytest

from tests.runtime.conftest import SERVER_UP, check_path_delay, ping_times_ms

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]

LINK = """
channel {name} {{
    endpoints left, right
    left -> bw {{ rate = {rate}, queue = droptail {{ bytes = 60KB }} }} -> delay {{ delay = {delay} }} -> right
    right -> delay {{ delay = {delay} }} -> left
}}
"""


def test_twenty_instances_each_carry_their_own_traffic(tmp_path, record_property):
    path = tmp_path / "one.rtn"
    path.write_text(LINK.format(name="access", rate="10Mbps", delay="5ms"))
    out = tmp_path / "out"
    out.mkdir()
    # Each instance writes what it saw under its own number: its environment, and iperf3's result.
    script = (f'cd {out} && env | grep ^RATTAN_ | sort > $RATTAN_INSTANCE.env && '
              f'ip netns identify > $RATTAN_INSTANCE.netns && '
              f'{SERVER_UP}iperf3 -c $RATTAN_RIGHT_IP -t 3 -J > $RATTAN_INSTANCE.json')
    r = subprocess.run([*RATTAN, "run", str(path), "-n", "20", "--right", "iperf3 -s -1 >/dev/null",
                        "--", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    envs = [dict(line.split("=", 1) for line in (out / f"{i}.env").read_text().split()) for i in range(20)]
    assert {e["RATTAN_INSTANCE"] for e in envs} == {str(i) for i in range(20)}
    assert all(e["RATTAN_CHANNEL"] == "access" for e in envs)
    addresses = [e["RATTAN_LEFT_IP"] for e in envs] + [e["RATTAN_RIGHT_IP"] for e in envs]
    assert len(set(addresses)) == 40  # no address is shared between instances
    # every command ran in its own instance's left namespace
    namespaces = [(out / f"{i}.netns").read_text().strip() for i in range(20)]
    assert namespaces == [e["RATTAN_LEFT_NETNS"] for e in envs] and len(set(namespaces)) == 20

    goodputs = [json.loads((out / f"{i}.json").read_text())["end"]["sum_received"]["bits_per_second"]
                for i in range(20)]
    record_property("goodput_min_bps", min(goodputs))
    record_property("goodput_median_bps", statistics.median(goodputs))
    # each had its own 10 Mbit/s path: never more, and far more than the 0.5 Mbit/s of a shared one;
    # 20 TCP senders and receivers on 2 cores, one hogged, got 6.1-9.3 Mbit/s at the slowest over
    # 10 runs (idle: 9.4)
    assert all(3.0e6 <= g <= 10.0e6 for g in goodputs), goodputs
    # the closing table names every instance and its exit status
    table = [line.split() for line in r.stderr.splitlines() if re.match(r"access#\d+\s", line)]
    assert sorted(row[0] for row in table) == sorted(f"access#{i}" for i in range(20))
    assert all(row[-1] == "0" for row in table)


def test_all_channels_of_a_file_at_once(tmp_path, record_property):
    path = tmp_path / "two.rtn"
    path.write_text(LINK.format(name="near", rate="100Mbps", delay="2ms")
                    + LINK.format(name="far", rate="100Mbps", delay="15ms"))
    r = subprocess.run([*RATTAN, "run", str(path), "--all", "--", "sh", "-c",
                        "ping -c 10 -i 0.1 $RATTAN_RIGHT_IP"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    for name, path_ms in (("near", 4.0), ("far", 30.0)):  # each channel has its own delay
        rtts = ping_times_ms(r.stdout, f"[{name}] ")
        assert len(rtts) == 10, r.stdout
        check_path_delay(rtts, path_ms, record_property, name)


def test_the_first_failure_is_the_exit_status(tmp_path):
    path = tmp_path / "one.rtn"
    path.write_text(LINK.format(name="c", rate="10Mbps", delay="1ms"))
    r = subprocess.run([*RATTAN, "run", str(path), "-n", "3", "--", "sh", "-c",
                        "exit $((RATTAN_INSTANCE == 1 ? 5 : 0))"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 5, r.stderr
    status = {row[0]: row[-1] for row in (line.split() for line in r.stderr.splitlines())
              if row and re.fullmatch(r"c#\d", row[0])}
    assert status == {"c#0": "0", "c#1": "5", "c#2": "0"}


def test_choosing_channels_is_checked(tmp_path):
    path = tmp_path / "two.rtn"
    path.write_text(LINK.format(name="a", rate="10Mbps", delay="1ms") + LINK.format(name="b", rate="10Mbps", delay="1ms"))
    r = subprocess.run([*RATTAN, "run", str(path), "--", "true"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--all" in r.stderr and "--channel" in r.stderr
    r = subprocess.run([*RATTAN, "run", str(path), "--all", "--channel", "a", "--", "true"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "one of them" in r.stderr
    r = subprocess.run([*RATTAN, "run", str(path), "-n", "0", "--", "true"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "at least 1" in r.stderr

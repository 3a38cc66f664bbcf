"""The Python cell plugins of examples/plugins, end to end: `cellular` (a workload-dependent cellular
link) and `leo` (a LEO satellite path), each pip-installed into a fresh virtual environment that
sees this environment's rattan; `rattan cells` lists them, their own tests pass from a folder
outside the repository, their READMEs' parameter tables are their schemas, and (as root, in namespaces) `leo` under `rattan run` shows its
reconfigurations on ping and on a TCP transfer.

The venv machinery (venv_seeing_this_rattan, _clean_env, _run) is tests/test_plugins_build.py's.
"""
from __future__ import annotations

import json
import re
import shutil
import statistics

import pytest

from tests.conftest import ROOT
from tests.runtime.conftest import WHY_NOT, no_leftovers  # noqa: F401  (a fixture: namespaces this test left)
from tests.test_plugins_build import _clean_env, _run, venv_seeing_this_rattan

PLUGINS = ("cellular", "leo")
MS = 1_000_000


@pytest.fixture(scope="module")
def py_plugins(tmp_path_factory):
    """(venv folder, its environment, the copied sources) with both plugins pip-installed. The
    sources are copied first: a build writes build/ and *.egg-info next to them."""
    base = tmp_path_factory.mktemp("py_plugins")
    env_dir = venv_seeing_this_rattan(base / "env")
    src = base / "src"
    for name in PLUGINS:
        shutil.copytree(ROOT / "examples" / "plugins" / name, src / name,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env = _clean_env(env_dir)
    r = _run([env_dir / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", *(src / n for n in PLUGINS)],
             base, env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return env_dir, env, src


def test_rattan_cells_lists_both_as_python_cells_of_their_plugins(py_plugins, tmp_path):
    env_dir, env, _ = py_plugins
    r = _run([env_dir / "bin" / "python", "-m", "rattan", "cells"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1:4] for line in r.stdout.splitlines() if line.strip()}
    assert rows["cellular"] == ["plugin", "rattan-cellular", "python"]
    assert rows["leo"] == ["plugin", "rattan-leo", "python"]
    r = _run([env_dir / "bin" / "python", "-m", "rattan", "cells", "leo"], tmp_path, env)
    assert "period: time (default 15s)" in r.stdout and "outage: time (default 50ms)" in r.stdout, r.stdout


@pytest.mark.parametrize("name", PLUGINS)
def test_each_readmes_parameter_table_is_its_schema(name):
    from tests.test_cell_readmes import params_table
    folder = ROOT / "examples" / "plugins" / name
    schema = json.loads((folder / "src" / f"rattan_{name}" / name / "cell.schema.json").read_text(encoding="utf-8"))
    text = (folder / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- params: generated from cell.schema.json -->\n(.*?)<!-- /params -->", text, re.S)
    assert m, f"{name}/README.md has no generated parameter table"
    assert m.group(1) == params_table(schema)


@pytest.mark.parametrize("project,outcome", [("cellular", "5 passed"), ("leo", "5 passed")])
def test_each_plugins_own_tests_pass_from_outside_the_repository(py_plugins, tmp_path, project, outcome):
    env_dir, env, src = py_plugins
    shutil.copytree(src / project / "tests", tmp_path / "tests")
    r = _run([env_dir / "bin" / "python", "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests"],
             tmp_path, env, timeout=600)
    assert r.returncode == 0 and outcome in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


# Reconfigurations every 3 s with 200 ms outages; seed 6 draws 44.25 ms, then 27.70 ms (after the
# 25 ms before the first): levels ping tells apart. For 7.5 s, a ping every 50 ms (150) and a TCP
# transfer paced at 20 Mbit/s, both at once, measured by the receiving iperf3 every 100 ms.
LEO_RTN = "channel c {\n    cell sat: leo { period = 3s, outage = 200ms }\n    left -> sat -> right\n    right -> left\n}\n"
SEED, PERIOD_S, OUTAGE_S = 6, 3.0, 0.2
CLIENT = ('i=0; until ip netns exec "$RATTAN_RIGHT_NETNS" ss -ltnH "sport = :5201" | grep -q . || [ $i -ge 200 ]; '
          'do i=$((i+1)); sleep 0.05; done; '
          'ping -n -D -c 150 -i 0.05 -W 1 "$RATTAN_RIGHT_IP" > {dir}/ping.txt & '
          'iperf3 -c "$RATTAN_RIGHT_IP" -t 7.5 -i 0.1 -b 20M -J --get-server-output > {dir}/iperf.json; wait')
# Measured over 6 runs on this 2-core machine, 3 idle and 3 with a core held by a busy loop: RTTs
# 0.0-0.2 ms over the one-way delay drawn (the way back has none) but for a reply or two at the start,
# up to 8.5 ms over, while iperf3 starts; 6 to 8 pings lost (4 per window); replies resume 0.20-0.31 s
# after the last before an outage; level changes 2.96-3.01 s apart; dips 2.5-2.6 s into the transfer; the receiver's 100 ms intervals
# near 0 bit/s from each reconfiguration for 200-300 ms (the outage, then TCP's retransmission timeout),
# at 20-21 Mbit/s elsewhere but for single intervals at 10-19 (iperf3's pacing, interval edges); dips
# 3.0 or 3.1 s apart.
RTT_OVER_MS = 10.0  # the median reply of each level over its delay, and no more
GAP_S = 0.16  # replies 50 ms apart; more than this without one is an outage
DIP_BPS = 4e6


def _levels(pings: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """The replies (time, RTT ms) split where none came for GAP_S: one run per reconfiguration."""
    runs = [[pings[0]]]
    for prev, cur in zip(pings, pings[1:]):
        if cur[0] - prev[0] > GAP_S:
            runs.append([])
        runs[-1].append(cur)
    return runs


def _dips(intervals: list[tuple[float, float]]) -> list[float]:
    """The start of each run of intervals below DIP_BPS."""
    out, prev = [], False
    for start, bps in intervals:
        low = bps < DIP_BPS
        if low and not prev:
            out.append(start)
        prev = low
    return out


@pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))  # before the fixtures, which need `ip`
def test_rattan_run_leo_shows_each_reconfiguration_on_ping_and_a_tcp_transfer(py_plugins, tmp_path, record_property,
                                                                             no_leftovers):
    env_dir, env, _ = py_plugins
    python = env_dir / "bin" / "python"
    r = _run([python, "-c", "from itertools import islice; from rattan_leo.leo.cell import delays; "
              f"print(*islice(delays({{'min_delay': 25_000_000, 'max_delay': 45_000_000}}, {SEED}), 2))"],
             tmp_path, env)
    drawn_ms = [25.0] + [int(x) / MS for x in r.stdout.split()]
    assert min(abs(a - b) for a, b in zip(drawn_ms, drawn_ms[1:])) > 10, drawn_ms  # levels apart
    (tmp_path / "r.rtn").write_text(LEO_RTN)
    r = _run([python, "-m", "rattan", "run", "r.rtn", "--seed", SEED, "-q", "--right",
              "iperf3 -s -1 -J -i 0.1 >/dev/null", "--", "sh", "-c", CLIENT.replace("{dir}", str(tmp_path))],
             tmp_path, env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

    text = (tmp_path / "ping.txt").read_text()
    pings = [(float(t), float(rtt)) for t, rtt in re.findall(r"^\[([\d.]+)\].*\btime=([\d.]+) ms$", text, re.M)]
    levels = _levels(pings)
    t0 = pings[0][0]
    record_property("rtt_levels", [(round(r[0][0] - t0, 2), round(r[-1][0] - t0, 2), min(x for _, x in r),
                                    statistics.median(x for _, x in r)) for r in levels])
    # three levels, in the order drawn: no reply earlier than its delay, most just after it
    assert len(levels) == 3, levels
    for run, delay in zip(levels, drawn_ms):
        rtts = [x for _, x in run]
        assert min(rtts) >= delay and statistics.median(rtts) < delay + RTT_OVER_MS, (delay, run)
    # the gaps between them: the outage's lost pings; the reconfigurations PERIOD_S apart
    changes = [run[0][0] for run in levels[1:]]
    assert changes[1] - changes[0] == pytest.approx(PERIOD_S, abs=0.2), levels
    for run, nxt in zip(levels, levels[1:]):
        assert OUTAGE_S - 0.05 <= nxt[0][0] - run[-1][0] <= OUTAGE_S + 0.2, levels
    lost = 150 - len(pings)
    record_property("pings_lost", lost)
    assert 2 * 3 <= lost <= 2 * 5, text[-400:]  # 200 ms / 50 ms = 4 per window, give or take one

    doc = json.loads((tmp_path / "iperf.json").read_text())
    received = [(iv["sum"]["start"], iv["sum"]["bits_per_second"]) for iv in doc["server_output_json"]["intervals"]]
    dips = _dips(received)
    record_property("dips_s", dips)
    assert len(dips) == 2 and dips[1] - dips[0] == pytest.approx(PERIOD_S, abs=0.3), received
    steady = [bps for start, bps in received if all(not (d - 0.2 <= start <= d + 0.5) for d in dips) and start >= 0.5]
    assert statistics.median(steady) == pytest.approx(20e6, rel=0.15), received  # it ran at its pace between
    # the same moments on both clocks: each started within milliseconds of the other
    ping_start = pings[0][0] - pings[0][1] / 1000
    for dip, change in zip(dips, changes):
        assert abs(dip - (change - ping_start - OUTAGE_S)) < 0.5, (dips, changes, ping_start)

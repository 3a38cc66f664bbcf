"""A real run on two engine threads (root): each thread forwards the channels it owns, on its own core."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]
PATH = """
channel access {
    endpoints left, right
    left -> delay { delay = 2ms } -> right
    right -> delay { delay = 2ms } -> left
}
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two engine threads need two cores")
def test_two_channels_on_two_threads_both_forward(tmp_path):
    path = tmp_path / "access.rtn"
    path.write_text(PATH)
    # each instance pings its own right side: 20 replies or the command fails
    r = subprocess.run([*RATTAN, "run", str(path), "-n", "2", "--cores", "2", "--",
                        "sh", "-c", "ping -c 20 -i 0.05 -W 1 -q $RATTAN_RIGHT_IP"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert len(re.findall(r"20 packets transmitted, 20 received", r.stdout)) == 2, r.stdout
    line = next(x for x in r.stderr.splitlines() if "engine threads:" in x)
    threads = re.findall(r"core (\d+) (\d+)% busy, (\d+) packets in", line)
    assert len(threads) == 2, line  # two threads, each pinned to a core of its own
    assert len({core for core, _, _ in threads}) == 2, line
    # each thread took in one instance's frames: 20 requests and 20 replies at least (ARP too)
    assert all(int(packets) >= 40 for _, _, packets in threads), line


def test_a_bad_core_count_is_refused():
    r = subprocess.run([*RATTAN, "run", "whatever.rtn", "--cores", "0", "--", "true"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--cores: 0 engine threads: give at least 1" in r.stderr, r.stderr


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two engine threads need two cores")
def test_a_channel_with_cuts_forwards_real_traffic_on_two_cores(tmp_path):
    # the plan cuts both delays (regions in virtual time); a real run keeps the channel whole on one of
    # its threads (docs/engine.md: hand-offs between real-time loops are not built) and forwards all of it
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    comp = compile_text(PATH, "access.rtn")
    assert len(build_plan(comp.program, comp.sources, default_registry())["channels"][0]["cuts"]) == 2
    path = tmp_path / "access.rtn"
    path.write_text(PATH)
    r = subprocess.run([*RATTAN, "run", str(path), "--cores", "2", "--",
                        "sh", "-c", "ping -c 20 -i 0.05 -W 1 -q $RATTAN_RIGHT_IP"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "20 packets transmitted, 20 received" in r.stdout, r.stdout
    rtt = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/", r.stdout)
    assert rtt and float(rtt.group(1)) >= 4.0, r.stdout  # both 2 ms delays on every round trip


def test_two_threads_timing_sums_the_counters_and_gives_the_figures_once():
    """Engine.timing on two threads: the counters are both threads' (every frame either sent is in
    tx_frames), the figures chosen are one thread's (a coalescing window of 20 us, not 40)."""
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.run import LiveRun
    comp = compile_text(PATH, "access.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    channel = plan["channels"][0]
    with LiveRun(plan, [channel, channel], cores=2, coalesce_ns=20_000) as live:
        for inst in live.instances:
            left, right = inst.net.endpoints["left"], inst.net.endpoints["right"]
            out = subprocess.run(["ip", "netns", "exec", left.netns, "ping", "-n", "-c", "10", "-i", "0.02",
                                  "-W", "1", "-q", right.address], capture_output=True, text=True, timeout=60)
            assert " 10 received" in out.stdout, out.stdout
        live.engine.stop()
        timing = live.timing()
        sent = [live.engine.lateness(inst.nodes[n]).sent for inst in live.instances for n in ("left", "right")]
    assert all(n >= 10 for n in sent), sent  # each thread sent its instance's frames
    assert timing["tx_frames"] == sum(sent)
    assert timing["tx_calls"] >= len(sent)
    assert timing["coalesce_ns"] == 20_000 and timing["precise"] == 0

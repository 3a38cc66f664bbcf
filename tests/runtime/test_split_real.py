"""A real run split over threads (`split=True`, root): a channel's regions (cut at its `delay` cells)
run on two engine threads and hand packets off through rings; a TCP stream arrives byte for byte, a
delay keeps its delay, counts add up, and a full ring drops and says so. On one thread the same run
keeps the channel whole (skipped elsewhere by conftest)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from rattan.compiler import compile_text
from rattan.control.api import ControlAPI
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.channel import choose_channel
from rattan.runtime.run import ChannelRun, in_namespace
from tests.runtime.test_gso import transfer

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

PATH = """
channel access {
    endpoints left, right
    left -> delay { delay = 5ms } -> right
    right -> delay { delay = 5ms } -> left
}
"""
PORT = 5241  # not the other real-run tests' port
TWO = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two engine threads need two cores")


def plan() -> dict:
    comp = compile_text(PATH, "access.rtn")
    assert comp.ok, comp.diagnostics
    p = build_plan(comp.program, comp.sources, default_registry())
    assert len(p["channels"][0]["cuts"]) == 2  # the links into both delays
    return p


def delays(live: ChannelRun) -> list:
    return [live.engine.counters(n) for k, n in live.nodes.items() if k.startswith("delay")]


def ping(live: ChannelRun, count: int) -> str:
    left, right = live.net.endpoints["left"], live.net.endpoints["right"]
    p = in_namespace(left.netns_path, ["ping", "-n", "-c", str(count), "-i", "0.02", "-W", "2", right.address],
                     dict(os.environ), stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=60)
    return out


def add_up(c) -> bool:
    return c.in_packets + c.created_packets == c.out_packets + c.dropped_packets + c.queued_packets


@pytest.mark.parametrize("cores", [pytest.param(2, marks=TWO), 1])
def test_a_split_channel_carries_a_tcp_stream_byte_exact(cores):
    """On 2 threads the regions are apart and every segment crosses a ring; on 1 the channel stays whole."""
    p = plan()
    with ChannelRun(p, choose_channel(p, None), seed=1, cores=cores, split=True) as live:
        sent, got = transfer(live, 20_000_000, PORT)
        live.stop()
        split = live.engine.split_stats()
        cells = delays(live)
    assert sent.split()[1] == "20000000" and sent == got, (sent, got)
    assert split.real == (cores == 2), split
    if cores == 2:
        assert split.cuts == 2 and split.handoffs >= 20_000_000 // 65536, split
        assert [t.regions for t in live.engine.thread_stats()] == [1, 1]
    else:
        assert split.handoffs == 0, split
    assert all(add_up(c) for c in cells), cells
    # every hand-off reached its delay (or was lost to a full ring, counted there): none is missing
    assert sum(c.in_packets for c in cells) >= split.handoffs, (cells, split)


@pytest.mark.parametrize("cores", [pytest.param(2, marks=TWO), 1])
def test_a_split_delay_keeps_its_delay(cores):
    """A packet handed over at t leaves its delay at t + 5 ms: the round trip is 10 ms, not less, and
    not much more on a loaded machine; every echo request and reply crossed both delays."""
    p = plan()
    with ChannelRun(p, choose_channel(p, None), seed=1, cores=cores, split=True) as live:
        out = ping(live, 40)
        live.stop()
        cells = delays(live)
        split = live.engine.split_stats()
    assert "40 packets transmitted, 40 received" in out, out
    rtts = sorted(float(x) for x in re.findall(r"time=([\d.]+) ms", out))
    assert rtts[0] >= 10.0, rtts  # never sooner than both delays
    assert rtts[len(rtts) // 2] < 10.0 + 8.0, rtts  # generous: the machine is shared
    assert all(c.in_packets >= 40 and add_up(c) and c.queued_packets == 0 for c in cells), cells
    if cores == 2:
        assert split.handoffs == sum(c.in_packets for c in cells), (split, cells)


@TWO
def test_a_full_ring_drops_and_counts_at_its_destination():
    """Rings of 2 entries and a burst of UDP datagrams: hand-offs beyond what the consumer's thread
    took meanwhile are dropped, each counted at the delay (reason `handoff`) and in the split stats;
    the delay's counts still add up, and the receiver gets what the delay sent."""
    p = plan()
    with ChannelRun(p, choose_channel(p, None), seed=1, cores=2, split=True, split_ring=2) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        burst = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                 "for i in range(3000):\n    s.sendto(b'x' * 64, (sys.argv[1], 9))\n")
        # the ARP exchange first, so that the burst is all datagrams
        in_namespace(left.netns_path, ["ping", "-n", "-c", "1", "-W", "2", right.address], dict(os.environ),
                     stdout=subprocess.DEVNULL).wait(30)
        sender = in_namespace(left.netns_path, ["timeout", "30", sys.executable, "-c", burst, right.address],
                              dict(os.environ))
        assert sender.wait(40) == 0
        time.sleep(0.3)
        live.stop()
        split = live.engine.split_stats()
        up = live.engine.counters(live.nodes[next(k for k in live.nodes if k.startswith("delay"))])
        state = ControlAPI(live.engine, [], default_registry(), "real").state()  # GET /state's document
    assert split.ring_full > 0, split
    handoff_drops = sum(c.dropped_by_reason.get("handoff", 0) for c in delays(live))
    assert handoff_drops == split.ring_full, (split, delays(live))
    assert up.dropped_by_reason.get("handoff", 0) > 0 and add_up(up), up
    assert up.in_packets >= 3000, up  # every datagram reached the delay, lost to the ring or not
    assert state["split"] == {"cuts": 2, "handoffs": split.handoffs, "ring_full": split.ring_full}, state

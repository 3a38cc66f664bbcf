"""rattan.run drives a real run (root): commands in the endpoints' namespaces with their status and
output, a live `set` that shows in iperf3's intervals, the packet log, a network handed in, and a
teardown after an exception that leaves no process and no namespace behind."""
from __future__ import annotations

import json
import os
import time

import pytest

import rattan
from rattan.runtime.netns import NETNS_DIR, ChannelNetwork, _pids_inside

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

PATH = """
channel c {
    endpoints left, right
    cell up: bw { rate = 20Mbps, queue = droptail { bytes = 60KB } }
    left -> up -> delay { delay = 5ms } -> right
    right -> delay { delay = 5ms } -> left
}
"""


@pytest.fixture(scope="module")
def path():
    return rattan.compile(text=PATH, name="lib.rtn").raise_for_errors()


def _gone(pid: int, zombie_ok: bool = False, wait_s: float = 5.0) -> bool:
    """The process has exited: no /proc entry (or, with `zombie_ok`, only a zombie its new parent,
    not rattan, has yet to reap), within `wait_s` for a loaded machine's reaping."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if zombie_ok and state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_exec_runs_in_the_endpoint_with_its_status_and_output(path):
    with rattan.run(path) as run:
        left, right = run.endpoints["left"], run.endpoints["right"]
        assert run.address("right") == right.address != left.address
        assert run.environment("left")["RATTAN_RIGHT_IP"] == right.address
        assert run.cells == ["up", "delay_1", "delay_2"]
        ping = run.exec("left", "ping -c 5 -i 0.2 -W 2 $RATTAN_RIGHT_IP", timeout=30).check()
        rtts = [float(x.split("time=")[1].split()[0]) for x in ping.stdout.splitlines() if "time=" in x]
        assert len(rtts) == 5 and min(rtts) >= 10.0, ping.stdout  # both delays, never early
        # the command runs in the endpoint's namespace (its address is there) and a PID namespace of its own
        inside = run.exec("right", ["sh", "-c", "ip -o -4 addr show; echo pid $$"], timeout=20)
        assert right.address in inside.stdout and "pid 1\n" not in inside.stdout and inside.returncode == 0
        failed = run.exec("left", "echo out; echo err >&2; exit 3", timeout=20)
        assert (failed.returncode, failed.stdout, failed.stderr, failed.timed_out) == (3, "out\n", "err\n", False)
        with pytest.raises(rattan.RunError, match="exited with 3"):
            failed.check()
        start = time.monotonic()
        slow = run.exec("left", "sleep 60", timeout=1)
        assert slow.timed_out and slow.returncode != 0 and time.monotonic() - start < 15
        assert _gone(run.processes[-1].pid)
        with pytest.raises(rattan.RunError, match="no endpoint `middle`"):
            run.exec("middle", "true")


SETTLE_S = 2.0  # the change is made this long after the shaper is seen forwarding


def test_a_live_set_shows_in_iperf3_s_intervals(path, record_property):
    with rattan.run(path) as run:
        server = run.spawn("right", "iperf3 -s -1 -J -i 0.5")
        assert run.wait_listening(server, timeout=20, port=5201)
        client = run.spawn("left", "iperf3 -c $RATTAN_RIGHT_IP -t 6 -i 0.5")
        deadline = time.monotonic() + 20  # the transfer has begun: the shaper forwards
        while run.telemetry("up")["out_bytes"] < 200_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(SETTLE_S)
        t_set = time.monotonic()
        assert run.set("up", rate="4Mbps")["changed"] == {"rate": "4Mbps"}
        assert client.wait(60) == 0, client.stderr
        assert server.wait(30) == 0, server.stderr
        started = client.started
        assert run.get("up")["runtime"]["rate"] == 4_000_000
        assert run.state()["changes_applied"] == 1
    report = json.loads(server.stdout)  # the receiver's intervals
    intervals = [(i["sum"]["start"], i["sum"]["end"], i["sum"]["bytes"]) for i in report["intervals"]]

    def rate(window):
        return 8 * sum(b for *_, b in window) / sum(e - s for s, e, _ in window)
    # iperf3's clock starts after the client did, and before the shaper forwarded: on that clock the
    # change came after SETTLE_S and before t_set - started
    changed_by = t_set - started
    before = [i for i in intervals if i[0] >= 0.5 and i[1] <= SETTLE_S + 0.01]
    after = [i for i in intervals if i[0] >= changed_by + 1.0]
    assert before and after, (changed_by, intervals)
    record_property("before_bps", rate(before))
    record_property("after_bps", rate(after))
    # as tests/runtime/test_control_real.py, generous for a loaded machine: 20 Mbit/s before, 4 after
    assert rate(before) > 12e6, intervals
    assert rate(after) < 8e6, intervals


def test_bad_changes_are_refused_and_change_nothing(path):
    with rattan.run(path) as run:
        with pytest.raises(rattan.RunError, match="no cell `shaper`"):
            run.set("shaper", rate="5Mbps")
        with pytest.raises(rattan.RunError, match="rate"):
            run.set("up", {"rate": "fast"})
        with pytest.raises(rattan.RunError, match="`colour`"):
            run.set("up", rate="5Mbps", colour=1)
        assert run.get("up")["runtime"]["rate"] == 20_000_000 and run.state()["changes_applied"] == 0


def test_teardown_after_an_exception_leaves_nothing(path):
    seen = {}
    with pytest.raises(ZeroDivisionError):
        with rattan.run(path) as run:
            namespaces = [ep.netns for ep in run.endpoints.values()] + [run.live.instances[0].net.engine_netns]
            # a command that leaves a child behind, and a background one
            run.spawn("left", "sleep 300 & sleep 300")
            run.spawn("right", ["sleep", "300"])
            deadline = time.monotonic() + 10
            while len(_pids_inside(namespaces)) < 4 and time.monotonic() < deadline:  # nsexec + sleep each
                time.sleep(0.05)
            seen = {"pids": _pids_inside(namespaces), "ours": [p.pid for p in run.processes],
                    "namespaces": namespaces, "index": run.live.instances[0].net.index}
            assert len(seen["pids"]) >= 4
            1 / 0
    # rattan's own children are reaped by it; what they left (the background `sleep`) is reparented
    assert all(_gone(pid) for pid in seen["ours"]), seen
    assert all(_gone(pid, zombie_ok=pid not in seen["ours"]) for pid in seen["pids"]), seen
    assert not any(os.path.exists(os.path.join(NETNS_DIR, n)) for n in seen["namespaces"]), seen
    assert not os.path.exists(f"/run/rattan/instances/{seen['index']}.json")


def test_the_packet_log_is_read_back_once_forwarding_stopped(path, tmp_path):
    log = tmp_path / "run.log"
    with rattan.run(path, packet_log=str(log), log_cells=["up"]) as run:
        run.exec("left", "ping -c 3 -i 0.2 $RATTAN_RIGHT_IP", timeout=30).check()
        with pytest.raises(rattan.RunError, match="run.stop"):
            run.read_packet_log()
        run.stop()
        up = run.telemetry("up")
        got = run.read_packet_log()
    assert set(got.cells.values()) == {"up"}
    departed = [r for r in got.of("up") if r.event == "depart"]
    assert len(departed) == up["out_packets"] >= 3
    assert got.summary()[0]["departed"] == len(departed)


def test_a_network_handed_in_is_used_and_left_open(path):
    channel = path.plan["channels"][0]
    with ChannelNetwork(channel["endpoints"], channel["name"]) as net:
        with rattan.run(path, network=net) as run:
            assert run.endpoints["right"].address == net.endpoints["right"].address
            run.exec("left", "ping -c 2 -i 0.2 $RATTAN_RIGHT_IP", timeout=30).check()
        assert all(os.path.exists(ep.netns_path) for ep in net.endpoints.values())
        with rattan.run(path, network=net) as run:  # and serves another run
            run.exec("left", "ping -c 1 $RATTAN_RIGHT_IP", timeout=30).check()
    assert not any(os.path.exists(ep.netns_path) for ep in net.endpoints.values())


def test_what_cannot_start_is_a_run_error(path):
    with pytest.raises(rattan.RunError, match="no channel `nope`"):
        rattan.run(path, channel="nope")
    with pytest.raises(rattan.RunError, match="--http"):
        with rattan.run(path, http="unix:/nonexistent-dir/api.sock"):
            pass

"""Warm resources (rattan.runtime.warm, root): a network reused from the pool carries the next
experiment as a fresh one would (no process, queue, counter, address, qdisc or sysctl of the last
one); a failed run's network is closed, not reused; closing the pool, SIGTERM to its process or
killing it leaves nothing; LocalExecutor reuses networks between runs only with reuse=True."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.runtime.conftest import check_path_delay, ping_times_ms

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

# 10 ms each way; the forward bw cell is slow with a short queue, so a burst fills it
PATH = """
channel warm {
    endpoints left, right
    cell slow: bw { rate = 200kbps, queue = droptail { packets = 20 } }
    left -> slow -> delay { delay = 10ms } -> right
    right -> delay { delay = 10ms } -> left
}
"""


def _plan():
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    comp = compile_text(PATH, "warm.rtn")
    assert comp.ok, comp.diagnostics
    return build_plan(comp.program, comp.sources, default_registry())


def _in(net, endpoint: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", net.endpoints[endpoint].netns, *argv],
                          capture_output=True, text=True, timeout=60, **kw)


def _ping(net, count: int = 10) -> list[float]:
    r = _in(net, "left", "ping", "-c", str(count), "-i", "0.05", "-W", "2", net.endpoints["right"].address)
    return ping_times_ms(r.stdout)


def _all_counters(live) -> dict:
    inst = live.instances[0]
    return {name: live.engine.counters(node) for name, node in inst.nodes.items()}


def _still_ours(names, pids) -> list[str]:
    """Those of `names` still there and owned by one of `pids` or by nobody (no record, or a dead
    owner's). Other test sessions run at the same time: once freed, an index and so its names may
    be taken again at once by another process, which has its own record."""
    from rattan.runtime import netns
    out = []
    for name in names:
        if not os.path.exists(os.path.join(netns.NETNS_DIR, name)):
            continue
        try:
            with open(netns._state_path(int(name.split("-")[1]))) as f:
                owner = json.load(f)["pid"]
        except (OSError, ValueError, KeyError):
            owner = None
        if owner is None or owner in pids or not netns._alive(owner):
            out.append(name)
    return out


def _records_of(indices, pids) -> list[int]:
    """Those of the instance records `indices` that still name one of `pids`."""
    from rattan.runtime import netns
    out = []
    for i in indices:
        try:
            with open(netns._state_path(i)) as f:
                if json.load(f)["pid"] in pids:
                    out.append(i)
        except (OSError, ValueError, KeyError):
            pass
    return out


def test_a_reused_network_carries_the_next_experiment_as_a_fresh_one(record_property):
    from rattan.runtime import netns
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.run import LiveRun
    from rattan.runtime.warm import Pool
    plan = _plan()
    ch = choose_channel(plan, None)
    pool = Pool()
    try:
        net = pool.acquire(plan, ch)
        # a route the experiment adds (before it starts, as a workload's set-up would)
        assert _in(net, "left", "ip", "route", "add", "10.98.0.0/16", "dev", net.endpoints["left"].ifname).returncode == 0
        with LiveRun(plan, [ch], networks=[net]) as live:
            first = _ping(net)
            # what an experiment leaves: a process, a qdisc, an address, a sysctl, a full queue
            _in(net, "left", "ping", "-c", "60", "-i", "0.002", "-s", "1200", "-W", "0.01",
                net.endpoints["right"].address)
            left_over = subprocess.Popen(["ip", "netns", "exec", net.endpoints["left"].netns, "sleep", "600"],
                                         start_new_session=True)
            assert _in(net, "left", "tc", "qdisc", "add", "dev", net.endpoints["left"].ifname, "root",
                       "tbf", "rate", "100kbit", "burst", "1600", "latency", "100ms").returncode == 0
            assert _in(net, "left", "ip", "addr", "add", "10.99.0.1/32", "dev", "lo").returncode == 0
            assert _in(net, "left", "sysctl", "-qw", "net.ipv4.ip_default_ttl=7").returncode == 0
            live.stop()
            counters = _all_counters(live)
        assert counters["slow"].queued_packets > 0 and counters["slow"].dropped_packets > 0, counters["slow"]
        assert counters["left"].in_packets > 0
        # frames that reach the ring between two experiments (the engine stopped, the ring still open)
        _in(net, "left", "ping", "-c", "5", "-i", "0.01", "-W", "0.1", net.endpoints["right"].address)
        time.sleep(0.1)
        pool.release(net)
        pool.settle()
        left_over.wait(timeout=10)  # stopped by the reset (a sleep of 600 s does not end by itself)
        assert not netns._pids_inside(list(net._namespaces))

        again = pool.acquire(plan, ch)
        assert again is net and pool.reused == 1 and pool.opened == 1  # the same veths and rings
        with LiveRun(plan, [ch], networks=[again]) as live:
            time.sleep(0.3)  # what the ring still held would have been forwarded by now
            fresh = _all_counters(live)
            assert all(c.in_packets == c.out_packets == c.queued_packets == c.dropped_packets == 0
                       for c in fresh.values()), fresh
            assert _in(again, "left", "sysctl", "-n", "net.ipv4.ip_default_ttl").stdout.strip() == "64"
            assert "tbf" not in _in(again, "left", "tc", "qdisc", "show").stdout
            assert "10.99.0.1" not in _in(again, "left", "ip", "addr", "show").stdout
            assert "10.98.0.0" not in _in(again, "left", "ip", "route", "show", "table", "all").stdout
            assert not netns._pids_inside(list(again._namespaces))
            second = _ping(again)
        pool.release(again)
    finally:
        pool.close()
    assert len(first) == len(second) == 10
    # the same path both times: 20 ms and the bw cell's 3.4 ms for a ping
    check_path_delay(first, 20.0, record_property, "first")
    check_path_delay(second, 20.0, record_property, "second")
    assert min(second) < min(first) + 10.0, (first, second)


def test_closing_the_pool_leaves_nothing():
    from rattan.runtime import netns
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.warm import Pool
    plan = _plan()
    ch = choose_channel(plan, None)

    def sockets() -> int:
        return sum(os.readlink(f"/proc/self/fd/{fd}").startswith("socket:") for fd in os.listdir("/proc/self/fd")
                   if os.path.exists(f"/proc/self/fd/{fd}"))

    before = sockets()
    pool = Pool()
    idle, held = pool.acquire(plan, ch), pool.acquire(plan, ch)
    pool.release(idle)
    assert pool.idle == 1
    pool.settle()
    names = list(idle._namespaces) + list(held._namespaces)
    indices = [idle.index, held.index]
    assert all(os.path.exists(os.path.join(netns.NETNS_DIR, n)) for n in names)
    assert sockets() >= before + 4  # a ring and a transmit socket per endpoint of each network
    pool.close()
    assert not _still_ours(names, {os.getpid()}), names
    assert not _records_of(indices, {os.getpid()})
    assert sockets() == before
    assert pool.idle == 0


HOLDER = """
import json, sys, time
from rattan.compiler import compile_text
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.warm import close_on_signals, pool
comp = compile_text(sys.argv[1], "warm.rtn")
plan = build_plan(comp.program, comp.sources, default_registry())
p = pool()
if len(sys.argv) > 2:
    close_on_signals(p)
idle, held = p.acquire(plan, None), p.acquire(plan, None)
p.release(idle)
p.settle()
print(json.dumps({"namespaces": idle._namespaces + held._namespaces, "indices": [idle.index, held.index]}), flush=True)
time.sleep(600)
"""


def _holder(*args: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, PATH, *args], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait()
        pytest.fail("the pool's process did not start")
    return proc, json.loads(line)


def test_sigterm_to_a_worker_closes_its_pool():
    from rattan.runtime import netns
    proc, held = _holder("close-on-signals")
    try:
        assert all(os.path.exists(os.path.join(netns.NETNS_DIR, n)) for n in held["namespaces"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    # gone at its exit, not left for the next start's clean_stale
    assert not _still_ours(held["namespaces"], {proc.pid})
    assert not _records_of(held["indices"], {proc.pid})


def test_a_killed_process_s_pool_is_removed_by_the_next_start():
    from rattan.runtime import netns
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, PATH], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        line = proc.stdout.readline()
        assert line, "the pool's process did not start"
        held = json.loads(line)
    finally:
        proc.send_signal(signal.SIGKILL)  # no atexit, no cleanup of its own
        proc.wait()
        proc.stdout.close()
    names = held["namespaces"]
    assert all(os.path.exists(os.path.join(netns.NETNS_DIR, n)) for n in names)  # SIGKILL left them
    freed = netns.clean_stale()  # what the next start (ChannelNetwork.open) does first
    assert set(held["indices"]) <= set(freed)
    assert not _still_ours(names, {proc.pid})


def test_a_warm_network_starts_a_run_much_sooner_than_a_cold_one():
    """Start to first packet: a pooled network is there already; a cold one makes namespaces, veths
    and rings (a loose ratio: the benchmark measures it, benchmarks/batch_overhead.py)."""
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.run import LiveRun
    from rattan.runtime.warm import Pool
    plan = _plan()
    ch = choose_channel(plan, None)
    cold, warm = [], []
    pool = Pool()
    try:
        pool.release(pool.acquire(plan, ch))
        for _ in range(3):
            t = time.monotonic()
            with LiveRun(plan, [ch]):
                cold.append(time.monotonic() - t)
            pool.settle()
            t = time.monotonic()
            net = pool.acquire(plan, ch)
            with LiveRun(plan, [ch], networks=[net]):
                warm.append(time.monotonic() - t)
            pool.release(net)
        assert pool.opened == 1 and pool.reused == 3
    finally:
        pool.close()
    assert sorted(warm)[1] < 0.5 * sorted(cold)[1], (warm, cold)


TOPOLOGY = PATH


def _job(tmp_path, key: str, command: str):
    from rattan.batch.job import Job
    topo = tmp_path / "warm.rtn"
    topo.write_text(TOPOLOGY)
    return Job(experiment="warm", key=key, topology=str(topo), channel=None, params={"k": key}, lets={},
               seed=1, repetition=0, timeout_s=60.0,
               workload=[{"endpoint": "left", "name": "probe", "background": False, "extract": None,
                          "command": command}])


MAC = "ip -o link show rt-left | sed 's/.*link.ether \\([^ ]*\\).*/\\1/'"


def test_a_failed_run_s_network_is_closed_not_reused(tmp_path):
    from rattan.batch.job import run_job
    from rattan.runtime import netns
    from rattan.runtime.warm import Pool
    pool = Pool()
    try:
        ok = run_job(_job(tmp_path, "a", MAC), network_pool=pool)
        assert ok["status"] == "ok", ok["error"]
        pool.settle()
        assert pool.idle == 1
        names = list(pool._free[0][1]._namespaces)
        failed = run_job(_job(tmp_path, "b", "sleep 600 >/dev/null 2>&1 & false"), network_pool=pool)
        assert failed["status"] == "failed" and "exited with status 1" in failed["error"], failed["error"]
        assert pool.reused == 1 and pool.idle == 0 and pool.discarded == 1  # closed, not kept
        assert not _still_ours(names, {os.getpid()})
        again = run_job(_job(tmp_path, "c", MAC), network_pool=pool)
        assert again["status"] == "ok" and pool.opened == 2 and pool.idle == 1  # a new one
        macs = [r["outputs"]["probe"]["stdout"].strip() for r in (ok, again)]
        assert macs[0] != macs[1], macs  # other veths
    finally:
        pool.close()


def test_local_executor_reuses_networks_only_with_reuse(tmp_path):
    """With reuse, a one-slot LocalExecutor's runs take turns on its pool's networks (a veth, by
    its MAC, carries two of three runs: one network is reset while the next run uses the other);
    without, each run has a new one."""
    from rattan.batch.local import LocalExecutor
    seen = {}
    for reuse in (True, False):
        with LocalExecutor(slots=1, reuse=reuse) as ex:
            results = [ex.submit(_job(tmp_path, f"{reuse}{i}", MAC).to_dict()).result(timeout=120) for i in range(3)]
        assert all(r["status"] == "ok" for r in results), [r["error"] for r in results]
        seen[reuse] = [r["outputs"]["probe"]["stdout"].strip() for r in results]
        assert all(len(m) == 17 for m in seen[reuse]), seen
    assert len(set(seen[True])) < 3, seen
    assert len(set(seen[False])) == 3, seen


def test_ray_workers_reuse_networks_with_reuse_and_close_them_at_shutdown(tmp_path, monkeypatch):
    """RayExecutor(reuse=True): a worker's runs take turns on its pool's networks; the embedded
    Ray's close leaves none of them (not even for the next start's clean_stale)."""
    pytest.importorskip("ray", reason="needs Ray (the cluster extra)")
    from rattan.batch.ray_executor import RayExecutor
    from rattan.runtime import netns
    monkeypatch.setenv("HOME", str(tmp_path))  # the embedded Ray writes no token to ~/.ray
    # the veth's MAC, the namespace and the instance record (the worker's PID)
    command = MAC + "; echo $RATTAN_LEFT_NETNS; cat /run/rattan/instances/$(echo $RATTAN_LEFT_NETNS | cut -d- -f2).json"
    ex = RayExecutor(cores=1, instances=1, reuse=True)
    try:
        results = [ex.submit(_job(tmp_path, f"r{i}", command).to_dict()).result(timeout=120) for i in range(3)]
    finally:
        ex.close()
    assert all(r["status"] == "ok" for r in results), [r["error"] for r in results]
    macs, names, records = zip(*(r["outputs"]["probe"]["stdout"].split("\n", 2) for r in results))
    workers = {json.loads(r)["pid"] for r in records}
    assert len(set(macs)) < 3, macs
    # gone when close returns (Ray's workers end without atexit: close removes what they held)
    assert not _still_ours(names, workers), names

"""Time on several engine threads: every virtual-time result is the same with 1, 2 and 4 threads; the
threads are pinned to their cores; their load figures add up to the engine's."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from rattan.compiler import compile_path
from rattan.engine import Engine, EngineError
from rattan.engine.load import load_channel
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.channel import schedule_timeline

from tests.conftest import EXAMPLES, SHARED_EXAMPLES, run_cli  # noqa: F401 (a fixture)

SEC = 10**9
DURATION = 3 * SEC
COPIES = 3  # of every channel in one engine: several shards for the threads to share


def _examples() -> list[Path]:
    """The shared reference examples and this repository's own (the same name once)."""
    seen, out = set(), []
    for base in (SHARED_EXAMPLES, EXAMPLES):
        if base.is_dir():
            for p in sorted(base.iterdir()):
                if p.suffix in (".rtn", ".toml", ".yaml") and p.name not in seen:
                    seen.add(p.name)
                    out.append(p)
    return out


def _plan(path: Path) -> dict:
    comp = compile_path(str(path))
    assert comp.ok, path
    return build_plan(comp.program, comp.sources, default_registry())


def _everything(plan: dict, threads: int, log: str | None = None, slice_ns: int = 0) -> dict:
    """Every channel of the plan COPIES times in one engine on `threads` threads, with a flow each way
    per channel, its timeline, and a change at a time of its own; every counter and flow figure."""
    e = Engine(11)
    e.set_threads(threads)
    if log:
        e.open_packet_log(log)
    flows, nodes_all, change = [], [], None
    for _ in range(COPIES):
        for ch in plan["channels"]:
            if any("python" in c for c in ch["cells"]):
                continue  # a Python cell ticks in Python, driven by the caller: not the engine's
            nodes = load_channel(e, ch)
            eps = ch["endpoints"]
            flows.append(e.add_flow(nodes[eps[0]], nodes[eps[-1]], "poisson", 6_000_000, 1200))
            flows.append(e.add_flow(nodes[eps[-1]], nodes[eps[0]], "cbr", 3_000_000, 400))
            schedule_timeline(e, nodes, ch, DURATION)
            nodes_all += list(nodes.values())
            if log:
                for n in nodes.values():
                    e.log_node(n)
            for c in ch["cells"]:  # one runtime change, at 1.2345 s, per copy: applied at the barrier
                if change is None and c["type"] in ("bw", "delay"):
                    change = (nodes[c["name"]], "rate" if c["type"] == "bw" else "delay",
                              7e6 if c["type"] == "bw" else 4e6)
    if change:
        e.set(*change, at_ns=1_234_500_000)
    if slice_ns:
        for t in range(slice_ns, DURATION, slice_ns):
            e.run_until(t)
    e.run_until(DURATION)
    if log:
        e.flush_packet_log()
    return {"counters": [e.counters(n) for n in nodes_all],
            "flows": [(e.flow_stats(f), e.flow_delay(f)) for f in flows],
            "threads": e.thread_stats(), "now": e.now}


@pytest.mark.parametrize("path", _examples(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_example_gives_the_same_results_on_1_2_and_4_threads(path):
    plan = _plan(path)
    one = _everything(plan, 1)
    assert len(one["threads"]) == 1 and one["threads"][0].shards >= COPIES
    for n, slice_ns in ((2, 0), (4, 50_000_000)):
        other = _everything(plan, n, slice_ns=slice_ns)
        assert len(other["threads"]) == min(n, one["threads"][0].shards)
        assert other["counters"] == one["counters"], f"{n} threads"
        assert other["flows"] == one["flows"], f"{n} threads"
        assert other["now"] == one["now"]


def test_thread_loads_add_up_to_the_engine():
    plan = _plan(EXAMPLES / "broadband.rtn")
    results = {n: _everything(plan, n) for n in (1, 2, 4)}
    sent = sum(f["sent_packets"] for f, _ in results[1]["flows"])
    for n, r in results.items():
        ts = r["threads"]
        assert sum(t.packets for t in ts) == sent, n  # every flow's packet entered some thread's shard
        assert sum(t.events for t in ts) == results[1]["threads"][0].events, n
        assert sum(t.shards for t in ts) == results[1]["threads"][0].shards
        assert sum(t.nodes for t in ts) == results[1]["threads"][0].nodes
        assert len({t.wall_ns for t in ts}) == 1
        assert all(0 < t.busy_ns <= t.wall_ns and t.events > 0 for t in ts), ts
        assert max(t.nodes for t in ts) - min(t.nodes for t in ts) <= max(t.nodes for t in ts) // 2


def test_the_packet_log_holds_the_same_records_on_4_threads(tmp_path):
    plan = _plan(EXAMPLES / "bursty_loss.rtn")
    from rattan.runtime.packet_log import _records
    logs = {}
    for n in (1, 4):
        path = str(tmp_path / f"{n}.log")
        _everything(plan, n, log=path)
        logs[n] = list(_records(open(path, "rb")))  # the engine's records alone, no header
    assert len(logs[1]) > 1000
    assert logs[4] != logs[1]  # the threads' records interleave in another order ...
    key = lambda r: (r.t_ns, r.node, r.flow, r.fseq, r.event, r.sojourn_ns, r.size, r.reason or "", r.data)  # noqa: E731
    assert sorted(logs[4], key=key) == sorted(logs[1], key=key)  # ... and are the same records


def _task_cpus() -> dict[str, str]:
    """Cpus_allowed_list of this process's threads, by thread name."""
    out = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # it ended
        name = re.search(r"^Name:\s*(.*)$", status, re.M).group(1)
        out[name] = re.search(r"^Cpus_allowed_list:\s*(.*)$", status, re.M).group(1)
    return out


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning two threads needs two cores")
def test_engine_threads_are_pinned_to_their_cores():
    cores = sorted(os.sched_getaffinity(0))[:2]
    e = Engine(1)
    for _ in range(4):
        l, r = e.add_endpoint(), e.add_endpoint()
        e.link(l, 0, r)
        e.add_flow(l, r, "cbr", 10**6, 100)
    e.set_threads(2, cores[::-1])
    e.start(10**6 * SEC, clock="real")  # paced: the threads stay up while we look
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            seen = _task_cpus()
            if "rattan-eng0" in seen and "rattan-eng1" in seen:
                break
            time.sleep(0.01)
        assert seen.get("rattan-eng0") == str(cores[1]) and seen.get("rattan-eng1") == str(cores[0]), seen
        assert [t.cpu for t in e.thread_stats()] == cores[::-1]
    finally:
        e.stop()


def test_thread_requests_are_checked():
    e = Engine(1)
    with pytest.raises(EngineError, match="between 1 and"):
        e.set_threads(0)
    with pytest.raises(EngineError, match="may run on"):
        e.set_threads(1, [4096])
    if len(os.sched_getaffinity(0)) >= 1:
        c = min(os.sched_getaffinity(0))
        with pytest.raises(EngineError, match="twice"):
            e.set_threads(2, [c, c])
    assert e.threads == 1
    e.set_threads(3)
    assert e.threads == 3
    l, r = e.add_endpoint(), e.add_endpoint()
    e.link(l, 0, r)
    e.run_until(SEC)
    assert e.threads == 1  # one shard: one thread has all there is
    with pytest.raises(EngineError, match="fixed once time has run"):
        e.set_threads(2)


def test_the_control_api_state_lists_the_threads_load():
    from tests.control.conftest import virtual_api
    api = virtual_api("channel c {\n endpoints left, right\n left -> delay { delay = 5ms } -> right\n}\n", "c.rtn")
    api.engine.add_flow(0, 1, "cbr", 10**6, 100)
    api.engine.run_until(SEC)
    threads = api.state()["threads"]
    # the delay's link is a cut: two regions (left; delay and right), with no rebalancing on one thread
    assert len(threads) == 1 and threads[0]["cpu"] is None and threads[0]["shards"] == 2
    assert threads[0]["regions"] == 2 and threads[0]["rebalances"] == 0
    assert threads[0]["packets"] == api.engine.flow_stats(0)["sent_packets"] > 0
    assert 0 < threads[0]["busy_ns"] <= threads[0]["wall_ns"] and 0 < threads[0]["load"] <= 1


def test_rattan_sim_takes_cores_and_gives_the_same_document(run_cli):
    args = ["sim", str(EXAMPLES / "multipath.rtn"), "--flow", "wifi->server:poisson:9Mbps",
            "--flow", "server->wired:cbr:3Mbps", "--duration", "2s", "--json"]
    code1, one, _ = run_cli(*args, "--cores", "1")
    code2, two, _ = run_cli(*args, "--cores", str(len(os.sched_getaffinity(0))))
    assert code1 == code2 == 0 and one == two
    with pytest.raises(SystemExit):
        run_cli(*args, "--cores", "0")


# ---- one channel's DAG over several threads (the plan's cuts, rattan/passes/mark_cuts.py)

def _plan_text(text: str, **kw) -> dict:
    from rattan.compiler import compile_text
    comp = compile_text(text, "split.rtn", **kw)
    assert comp.ok, comp.diagnostics
    return build_plan(comp.program, comp.sources, default_registry())


def _split_run(plan: dict, threads: int, cuts: bool = True, rebalance: int | None = None,
               samples: bool = False, until: int = DURATION) -> dict:
    """Every channel of the plan once, a Poisson flow each way (none in a channel named `idle`), its
    timeline; every figure."""
    e = Engine(5)
    e.set_threads(threads)
    if rebalance is not None:
        e.set_rebalance(rebalance)
    flows, nodes_all = [], []
    for ch in plan["channels"]:
        nodes = load_channel(e, ch, cuts=cuts)
        eps = ch["endpoints"]
        if ch["name"] != "idle":  # a channel without traffic
            flows.append(e.add_flow(nodes[eps[0]], nodes[eps[-1]], "poisson", 12_000_000, 1200, samples=samples))
            flows.append(e.add_flow(nodes[eps[-1]], nodes[eps[0]], "poisson", 2_000_000, 300, samples=samples))
        schedule_timeline(e, nodes, ch, until)
        nodes_all += list(nodes.values())
    for t in range(100_000_000, until + 1, 100_000_000):
        e.run_until(t)
    return {"counters": [e.counters(n) for n in nodes_all], "flows": [(e.flow_stats(f), e.flow_delay(f)) for f in flows],
            "samples": [e.flow_samples(f) for f in flows] if samples else None,
            "threads": e.thread_stats(), "split": e.split_stats(), "now": e.now}


BROADBAND_ONE = "channel c {\n endpoints left, right\n left -> bw { rate = 20Mbps } -> delay { delay = 20ms } -> right\n" \
                " right -> bw { rate = 100Mbps } -> delay { delay = 20ms } -> loss { rate = 1% } -> left\n}\n"


def test_one_channel_split_over_two_threads_gives_the_same_results():
    plan = _plan_text(BROADBAND_ONE)
    assert len(plan["channels"][0]["cuts"]) == 2  # both delays: the bw cells' links into them
    one, two = _split_run(plan, 1), _split_run(plan, 2)
    assert [t.shards for t in one["threads"]] == [2] and [t.regions for t in one["threads"]] == [2]
    assert len(two["threads"]) == 2 and all(t.regions == 1 and t.events > 0 for t in two["threads"]), two["threads"]
    assert one["split"].handoffs == two["split"].handoffs > 1000 and one["split"].windows == two["split"].windows
    assert one["split"].late_handoffs == 0 and one["split"].lookahead_ns == 20_000_000  # the delays' hold
    assert two["counters"] == one["counters"] and two["flows"] == one["flows"] and two["now"] == one["now"]
    whole = _split_run(plan, 1, cuts=False)  # no simultaneous events here: the very same results uncut
    assert whole["split"].cuts == 0 and whole["counters"] == one["counters"] and whole["flows"] == one["flows"]


def test_a_lowered_delay_keeps_causality_across_a_cut():
    text = ("channel c {\n endpoints left, right\n cell d: delay { delay = 50ms }\n"
            " left -> bw { rate = 20Mbps } -> d -> right\n right -> bw { rate = 20Mbps } -> delay { delay = 30ms } -> left\n"
            " at 1s { d.delay = 1ms }\n}\n")
    plan = _plan_text(text)
    one = _split_run(plan, 1, samples=True)
    two = _split_run(plan, 2, samples=True)
    for r in (one, two):
        assert r["split"].lookahead_ns == 1_000_000  # read again after the change: the next windows are 1 ms
        assert r["split"].late_handoffs == 0  # no packet reached the delay after its region had passed its time
    assert two["counters"] == one["counters"] and two["flows"] == one["flows"] and two["samples"] == one["samples"]
    whole = _split_run(plan, 1, cuts=False, samples=True)
    assert whole["samples"] == one["samples"] and whole["counters"] == one["counters"]
    delays, _ = one["samples"][0]
    assert min(delays) < 5_000_000 < 50_000_000 <= max(delays)  # both delays were in force


def test_rebalancing_moves_a_region_by_measured_time_without_changing_results():
    # by nodes, the idle chain's region weighs most and gets a thread alone while both busy regions share
    # the other; by measured time the busy regions go to different threads
    idle = " -> ".join(["pass {}"] * 12)
    text = BROADBAND_ONE + f"channel idle {{\n endpoints a, b\n a -> {idle} -> b\n}}\n"
    from rattan.passes.context import Options
    plan = _plan_text(text, options=Options(optimize=False))  # the pass cells stay
    fixed = _split_run(plan, 2, rebalance=0)
    moved = _split_run(plan, 2, rebalance=8)
    one = _split_run(plan, 1)
    assert fixed["split"].rebalances == 0 and all(t.rebalances == 0 for t in fixed["threads"])
    busy = lambda r: sorted(t.events > 1000 for t in r["threads"])  # noqa: E731
    assert busy(fixed) == [False, True]  # the idle region alone on one thread, both busy ones on the other
    assert moved["split"].rebalances >= 1 and all(t.rebalances == moved["split"].rebalances for t in moved["threads"])
    assert busy(moved) == [True, True]  # the busy regions now on a thread each
    assert moved["split"].late_handoffs == 0  # the moves kept every hand-off in its window
    assert sum(t.shards for t in moved["threads"]) == sum(t.shards for t in fixed["threads"]) == 3
    assert moved["counters"] == fixed["counters"] == one["counters"]
    assert moved["flows"] == fixed["flows"] == one["flows"]

"""Runtime changes at exact logical times, the engine's own thread, and shard-independent results."""
from __future__ import annotations

import json
import threading
import time

import pytest

from rattan.engine import Engine, EngineError
from rattan.registry import default_registry

from tests.engine.cells import SEC, cell, chain, conserved

MS = 10**6


# A value of each unit for a required parameter, as `.rtn` writes it.
_REQUIRED_VALUE = {"rate": "10Mbps", "time": "10ms", "size": "3000B", "probability": "10%"}
# A small trace file of each kind the schemas name (x-trace), in the formats of passes/load_traces.py.
_TRACE_FILE = {"bw": "1\n2\n", "delay": "0 10ms\n1s 20ms\n", "loss": "0 1%\n1s 2%\n"}


def _rtn_value(cell_type: str, name: str, prop: dict, folder) -> str:
    """A valid `.rtn` value for a required parameter, derived from its schema."""
    if prop.get("x-unit") == "path":
        path = folder / f"{cell_type}.{prop.get('x-trace', 'pcap')}"
        path.write_text(_TRACE_FILE.get(prop.get("x-trace"), ""))
        return json.dumps(str(path))
    if prop.get("x-unit") in _REQUIRED_VALUE:
        return _REQUIRED_VALUE[prop["x-unit"]]
    pytest.fail(f"`{cell_type}.{name}` is required and its schema gives no way to make a value: teach this test")


def _other_value(prop: dict, current: float) -> float:
    """A value of the parameter's schema type and range that differs from `current` (the engine's code for
    an enum member is its position in the schema's `enum`)."""
    if "enum" in prop:
        return float((int(current) + 1) % len(prop["enum"]))
    if prop.get("type") == "boolean":
        return 0.0 if current else 1.0
    lo, hi = prop.get("minimum", 0), prop.get("maximum", float("inf"))
    if prop.get("type") == "integer":
        candidates = [current * 2, current + 1, current - 1, lo]
    else:
        candidates = [current + 0.25, current - 0.25, current / 2, (current + hi) / 2 if hi < float("inf") else 1.0]
    return float(next(v for v in candidates if lo <= v <= hi and v != current))


def test_every_runtime_parameter_of_the_schemas_can_be_changed_in_the_engine(tmp_path):
    """Every cell type the registry lists is built from its schema (required parameters only) through the
    compiler and load_channel; each of its runtime parameters is set to a value other than the one in
    force and read back: a `control` that ignores a write fails here."""
    from rattan.compiler import compile_text
    from rattan.engine.load import load_channel
    from rattan.plan import build_plan

    reg = default_registry()
    runtime = {t: {n: p for n, p in reg.get(t).properties.items() if p.get("x-runtime")} for t in reg.names()}
    cells = [t for t in reg.names() if runtime[t]]

    def required(t: str) -> list[str]:  # the schema's `required`, and the first choice of a `oneOf`
        choice = reg.get(t).schema.get("oneOf", [{}])[0].get("required", [])
        return list(reg.get(t).required) + [n for n in choice if n not in reg.get(t).required]

    body = "\n".join(f"    cell c_{t}: {t} {{ " + ", ".join(
        f"{n} = {_rtn_value(t, n, reg.get(t).properties[n], tmp_path)}" for n in required(t)) + " }" for t in cells)
    text = "channel all {\n" + body + "\n    left -> " + " -> ".join(f"c_{t}" for t in cells) + " -> right\n}\n"
    comp = compile_text(text, "all.rtn", path=str(tmp_path / "all.rtn"))
    assert comp.ok, (text, comp.diagnostics)
    (channel,) = build_plan(comp.program, comp.sources, reg)["channels"]
    e = Engine(1)
    nodes = load_channel(e, channel)
    checked = set()
    for t in cells:
        node = nodes[f"c_{t}"]
        for name, prop in runtime[t].items():
            before = e.get(node, name)
            value = _other_value(prop, before)
            e.set(node, name, value)
            assert e.get(node, name) == pytest.approx(value), (t, name, before)
            checked.add((t, name))
    # every (type, parameter) the schemas mark, not a list kept here
    assert checked == {(t, n) for t in reg.names() for n in runtime[t]} and len(checked) >= 15
    with pytest.raises(EngineError, match="no such runtime parameter"):
        e.set(nodes["c_delay"], "reorder", 1)


def test_a_rate_change_applies_at_its_exact_time_and_loses_nothing():
    e = Engine(1)
    bw = cell(e, "bw", rate=10_000_000)  # infinite queue: every packet must come out eventually
    left, right = chain(e, bw)
    f = e.add_flow(left, right, "cbr", 20_000_000, 1250, samples=True)  # 10,000-bit packets: 1 ms each at 10 Mbit/s
    e.set(bw, "rate", 5_000_000, at_ns=SEC + MS // 2)  # half-way through a packet
    e.run_until(SEC)
    assert e.get(bw, "rate") == 10_000_000
    e.run_until(2 * SEC)
    assert e.get(bw, "rate") == 5_000_000
    delays, seqs = e.flow_samples(f)
    # packet 1000 started at 1.000 s: half its bits at 10 Mbit/s, half at 5: it leaves at 1.0015 s
    sent = {s: s * 500_000 for s in seqs}  # a packet every 0.5 ms
    leave = sorted(sent[s] + d for s, d in zip(seqs, delays))
    assert leave[999] == SEC
    assert leave[1000] == SEC + 3 * MS // 2
    assert leave[1001] == SEC + 3 * MS // 2 + 2 * MS
    c = e.counters(bw)
    assert c.dropped_packets == 0 and c.in_packets == c.out_packets + c.queued_packets
    conserved(e, bw)


def test_changes_at_the_same_time_apply_in_the_order_given():
    e = Engine(1)
    d = cell(e, "delay", delay=MS)
    chain(e, d)
    e.set(d, "delay", 5 * MS, at_ns=SEC)
    e.set(d, "delay", 7 * MS, at_ns=SEC)
    e.run_until(SEC)
    assert e.get(d, "delay") == 7 * MS


def test_changes_given_together_are_checked_first_and_apply_at_one_instant():
    e = Engine(1)
    bw, d = cell(e, "bw", rate=10_000_000), cell(e, "delay", delay=MS)
    chain(e, bw, d)
    with pytest.raises(EngineError, match="no such runtime parameter"):
        e.set_many([(bw, "rate", 1_000_000), (d, "reorder", 1)])
    assert e.get(bw, "rate") == 10_000_000  # the good half did not apply either
    e.start(10 * SEC)  # in the engine thread: both arrive in one hand-over
    e.set_many([(bw, "rate", 2_000_000), (d, "delay", 3 * MS)], at_ns=2 * SEC)
    e.wait()
    assert (e.get(bw, "rate"), e.get(d, "delay")) == (2_000_000, 3 * MS)


def test_bad_values_are_refused_and_change_nothing():
    e = Engine(1)
    loss = cell(e, "loss", rate=0.1)
    chain(e, loss)
    with pytest.raises(EngineError, match="invalid"):
        e.set(loss, "rate", 1.5)
    assert e.get(loss, "rate") == pytest.approx(0.1)


def _build_channels(e: Engine, n: int) -> list[int]:
    flows = []
    for i in range(n):
        cells = [cell(e, "bw", rate=8_000_000 + i * 100_000, queue={"kind": "droptail", "packets": 50}),
                 cell(e, "delay", delay=10 * MS, jitter=2 * MS, distribution="normal"), cell(e, "loss", rate=0.01)]
        left, right = chain(e, *cells)
        flows.append(e.add_flow(left, right, "poisson", 9_000_000, 1200, samples=True))
    return flows


def _results(e: Engine, flows: list[int]) -> str:
    return json.dumps([[e.flow_stats(f), e.flow_samples(f)] for f in flows])


def test_results_do_not_depend_on_how_time_is_cut_or_which_thread_runs_it():
    whole = Engine(9)
    flows = _build_channels(whole, 10)
    whole.run_until(3 * SEC)
    sliced = Engine(9)
    _build_channels(sliced, 10)
    for t in range(7 * MS, 3 * SEC, 7 * MS):
        sliced.run_until(t)
    sliced.run_until(3 * SEC)
    threaded = Engine(9)
    _build_channels(threaded, 10)
    threaded.start(3 * SEC)
    assert threaded.wait(timeout=60)
    assert threaded.now == 3 * SEC
    assert _results(whole, flows) == _results(sliced, flows) == _results(threaded, flows)


def test_counters_are_consistent_while_the_engine_thread_runs():
    e = Engine(4)
    bw = cell(e, "bw", rate=50_000_000, queue={"kind": "droptail", "packets": 200})
    delay = cell(e, "delay", delay=20 * MS, jitter=5 * MS, reorder=True)
    left, right = chain(e, bw, delay)
    e.add_flow(left, right, "poisson", 80_000_000, 1500)
    e.start(10**6 * SEC)  # far longer than the test: it is stopped below
    for snapshot in range(1, 301):
        assert e.running
        for node in (bw, delay, right):
            conserved(e, node)
        if snapshot % 50 == 0:
            e.set(bw, "rate", 30_000_000 + snapshot * 1000)
    deadline = time.monotonic() + 10  # on a loaded machine the thread may not have run a slice yet
    while e.now == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    e.stop()
    assert not e.running and 0 < e.now < 10**6 * SEC
    assert e.get(bw, "rate") == 30_000_000 + 300 * 1000  # every change was applied, the last one last
    conserved(e, bw, delay, right)
    with pytest.raises(EngineError):
        cell(e, "pass")  # the graph is fixed once time has run


def test_the_engine_thread_releases_python_and_stops_on_request():
    e = Engine(1)
    bw = cell(e, "bw", rate=1_000_000_000)
    left, right = chain(e, bw)
    e.add_flow(left, right, "cbr", 1_000_000_000, 1500)
    e.start(10**6 * SEC)  # far longer than the test
    ticks = []
    t = threading.Thread(target=lambda: [ticks.append(time.sleep(0.001)) for _ in range(20)])
    t.start()
    t.join(timeout=10)
    assert len(ticks) == 20  # Python threads ran while the engine did
    assert e.running
    with pytest.raises(EngineError):
        e.run_until(e.now + 1)
    e.stop()
    assert not e.running
    assert e.now < 10**6 * SEC
    conserved(e, bw)


def test_real_clock_paces_logical_time():
    e = Engine(1)
    d = cell(e, "delay", delay=50 * MS)
    left, right = chain(e, d)
    f = e.add_flow(left, right, "cbr", 1_200_000, 1500)  # 100 packets/s
    t0 = time.monotonic()
    e.start(300 * MS, clock="real")
    mid = e.flow_stats(f)["received_packets"]
    mid_s = time.monotonic() - t0
    assert e.wait(timeout=10)
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.3  # logical time never runs ahead of the wall clock
    # nor had it at the first look: by then at most the packets sent 50 ms before it were delivered.
    # (A fixed count would fail whenever this thread is descheduled after start on a busy machine.)
    assert mid <= max(0, int((mid_s - 0.050) / 0.010) + 1), (mid, mid_s)
    assert e.flow_stats(f)["received_packets"] == 26  # sent at 0..250 ms, delivered by 300 ms

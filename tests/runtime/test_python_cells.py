"""Python cells in virtual and real time: ticks at exact logical times, their changes in force from
that time, determinism, the control API, and clear messages when a model is broken."""
from __future__ import annotations

import json
import random
import re
import subprocess
import time

import pytest

from rattan import PythonCell
from rattan.compiler import compile_text
from rattan.plan import build_plan
from rattan.registry import Registry
from rattan.runtime import sim

HERE = "tests.runtime.test_python_cells"


def schema(title: str, cls: str, props: dict, required=(), **meta) -> dict:
    """The cell.schema.json of a test Python cell (a time parameter `interval` gives the tick)."""
    props = {"interval": {"type": "integer", "minimum": 0, "x-unit": "time", "default": 10_000_000,
                          "description": "Tick period."}, **props}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
            "description": f"Test Python cell {title}.", "type": "object", "properties": props,
            "required": list(required), "additionalProperties": False,
            "x-rattan": {"python": f"{HERE}:{cls}", "tick": "interval", **meta}}


RATE = {"type": "integer", "minimum": 0, "x-unit": "rate", "description": "A rate."}
TIME = {"type": "integer", "minimum": 0, "x-unit": "time", "description": "A time."}


class Throttle(PythonCell):
    """A bw link whose rate drops to `to` at the first tick at or after `after`; records its ticks."""
    ticks: list[int] = []
    sets: list[tuple[str, object]] = []

    def inner(self, config):
        return [("link", "bw", {"rate": config["rate"]})]

    def start(self, config, seed):
        type(self).ticks, type(self).sets = [], []

    def tick(self, now_ns, cells):
        type(self).ticks.append(now_ns)
        if now_ns >= self.config["after"] and cells["link"].get("rate") != self.config["to"]:
            cells["link"].set("rate", self.config["to"])

    def set(self, name, value):
        type(self).sets.append((name, value, len(type(self).ticks)))  # and how many ticks came before
        super().set(name, value)


class Wander(PythonCell):
    """A delay drawn afresh at every tick from a seeded generator (determinism)."""

    def inner(self, config):
        return [("path", "delay", {"delay": 10_000_000}), ("link", "bw", {"rate": config["rate"]})]

    def start(self, config, seed):
        self.rng = random.Random(seed)

    def tick(self, now_ns, cells):
        cells["path"].set("delay", self.rng.randrange(5_000_000, 50_000_000))
        if cells["link"].counters().queued_packets > 3:
            cells["link"].set("rate", cells["link"].get("rate") // 2)


class Failing(PythonCell):
    def inner(self, config):
        return [("link", "bw", {"rate": config["rate"]})]

    def tick(self, now_ns, cells):
        if now_ns >= 30_000_000:
            raise ZeroDivisionError("model broke")


class BadInner(PythonCell):
    def inner(self, config):
        return [("link", "bw", {"rate": -5}), ("d", "delay", {})]


class Refuses(PythonCell):
    def inner(self, config):
        raise ValueError("rate too low for this model")


def registry(*schemas) -> Registry:
    reg = Registry()
    reg.load_builtins()
    for s in schemas:
        reg.add_cell(s, "plugin test-python-cells")
    return reg


THROTTLE = schema("throttle", "Throttle", {"rate": {**RATE, "x-runtime": True}, "after": {**TIME, "x-runtime": True},
                                           "to": RATE}, ["rate", "after", "to"])
WANDER = schema("wander", "Wander", {"rate": RATE}, ["rate"])
FAILING = schema("failing", "Failing", {"rate": RATE}, ["rate"])
BAD_INNER = schema("bad_inner", "BadInner", {})
REFUSES = schema("refuses", "Refuses", {})
MISSING = schema("missing", "Nowhere", {})
MISSING["x-rattan"]["python"] = "rattan_no_such_plugin.model:Cell"
ALL = registry(THROTTLE, WANDER, FAILING, BAD_INNER, REFUSES, MISSING)


def plan_of(text: str, reg: Registry = ALL) -> dict:
    comp = compile_text(text, registry=reg)
    assert comp.ok, [d.message for d in comp.diagnostics]
    return build_plan(comp.program, comp.sources, reg)


def errors_of(text: str, reg: Registry = ALL) -> list:
    comp = compile_text(text, registry=reg)
    return [d for d in comp.diagnostics if d.is_error]


THROTTLED = """channel c {
  cell t: throttle { rate = 20Mbps, after = 1s, to = 5Mbps }
  left -> t -> right
  right -> left
}
"""


def test_ticks_run_at_exact_logical_times_and_changes_apply_from_then():
    """CBR 10 Mbit/s into a 20 Mbit/s link that the tick at 1 s sets to 5 Mbit/s: in 3 s, one
    second at the offered rate, then two at 5 Mbit/s (one 1500 B packet every 2.4 ms)."""
    plan = plan_of(THROTTLED)
    doc = sim.run(plan, None, ["left->right:cbr:10Mbps"], "3s", seed=1)
    assert Throttle.ticks == [k * 10_000_000 for k in range(1, 301)]
    delivered = doc["flows"][0]["received_bytes"]
    sent_by_1s = doc["flows"][0]["sent_bytes"] / 3  # CBR: a third of it in the first second
    analytic = sent_by_1s + 5e6 / 8 * 2
    assert abs(delivered - analytic) <= 2 * 1500, (delivered, analytic)
    assert doc["python_cells"]["t"]["ticks"] == 300
    assert doc["cells"]["t.link"]["queued_packets"] > 0  # 10 Mbit/s into 5: the rest waits


def test_the_change_is_in_force_from_the_tick_time_not_before():
    """The rate changes at the 1 s tick: delivered bytes over [0, 1 s] are the offered ones."""
    plan = plan_of(THROTTLED.replace("after = 1s", "after = 500ms"))
    doc = sim.run(plan, None, ["left->right:cbr:10Mbps"], "1s", seed=1, interval="100ms")
    out = doc["series"]["cells"]["t.link"]["out_bps"]
    assert all(abs(x - 10e6) < 0.2e6 for x in out[:5]), out   # before 500 ms: all of it
    assert all(abs(x - 5e6) < 0.2e6 for x in out[6:]), out    # after: 5 Mbit/s
    assert doc["series"]["cells"]["t.link"]["rate_bps"][3:5] == [20e6, 5e6]  # the 0.5 s sample: after its tick


def test_plan_names_inner_cells_and_lists_the_controller():
    plan = plan_of(THROTTLED)
    ch = plan["channels"][0]
    assert [c["name"] for c in ch["cells"]] == ["t.link"]
    assert ch["cells"][0]["config"] == {"rate": 20_000_000, "queue": {"kind": "infinite"}, "overhead": 0}
    assert ch["cells"][0]["origin"] == "t"
    assert {"from": "left", "port": 0, "to": "t.link"} in ch["links"]
    assert {"from": "t.link", "port": 0, "to": "right"} in ch["links"]
    (k,) = ch["controllers"]
    assert k == {"cell": "t", "type": "throttle", "class": f"{HERE}:Throttle", "tick_ns": 10_000_000,
                 "config": {"rate": 20_000_000, "after": 1_000_000_000, "to": 5_000_000, "interval": 10_000_000},
                 "cells": {"link": "t.link"}, "source": "<input>.rtn:2:3"}
    from jsonschema import Draft202012Validator
    from importlib import resources
    plan_schema = json.loads(resources.files("rattan.schemas").joinpath("plan.schema.json").read_text())
    Draft202012Validator(plan_schema).validate(plan)


def test_a_timeline_reaches_the_python_cells_own_set_at_its_exact_time():
    plan = plan_of(THROTTLED.replace("  right -> left\n", "  right -> left\n  at 250ms { t.after = 0s }\n"))
    sim.run(plan, None, ["left->right:cbr:10Mbps"], "500ms", seed=1)
    # after the 24 ticks up to 240 ms, before the one at 250 ms: at one logical time, set comes first
    assert Throttle.sets == [("after", 0, 24)]
    assert Throttle.ticks[24] == 250_000_000


def test_a_timeline_on_an_inner_cell_and_its_checks():
    plan = plan_of(THROTTLED.replace("  right -> left\n", "  right -> left\n  at 2s { t.link.rate = 1Mbps }\n"))
    assert plan["channels"][0]["timeline"][0]["cell"] == "t.link"
    errs = errors_of(THROTTLED.replace("  right -> left\n", "  right -> left\n  at 2s { t.to = 1Mbps }\n"))
    assert [d.code for d in errs] == ["RTN061"] and "throttle.to" in errs[0].message


def test_same_seed_same_result_and_another_seed_differs():
    text = "channel c {\n  cell w: wander { rate = 8Mbps }\n  left -> w -> right\n  right -> left\n}\n"
    plan = plan_of(text)
    run = lambda seed: json.dumps(sim.run(plan, None, ["left->right:poisson:10Mbps"], "2s", seed=seed,
                                          samples=True), sort_keys=True)
    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert a != c


def test_exception_in_tick_stops_the_sim_with_the_cell_time_and_place():
    plan = plan_of("channel c {\n  cell f: failing { rate = 8Mbps }\n  left -> f -> right\n  right -> left\n}\n")
    with pytest.raises(sim.SimError) as e:
        sim.run(plan, None, ["left->right:cbr:1Mbps"], "1s", seed=1)
    msg = str(e.value)
    assert "Python cell `f`" in msg and "Failing" in msg and "tick at 0.030 s" in msg
    assert "ZeroDivisionError: model broke" in msg and "test_python_cells.py" in msg


def test_broken_python_cells_get_diagnostics_at_the_instance():
    errs = errors_of("channel c {\n  left -> missing {} -> right\n  right -> left\n}\n")
    assert [d.code for d in errs] == ["RTN012"]
    assert "rattan_no_such_plugin.model:Cell" in errs[0].message and "test-python-cells" in errs[0].message
    assert "ModuleNotFoundError" in errs[0].message
    text = "channel c {\n  cell b: bad_inner {}\n  left -> b -> right\n  right -> left\n}\n"
    errs = errors_of(text)
    msgs = sorted((d.code, d.message) for d in errs)
    assert [c for c, _ in msgs] == ["RTN014", "RTN022"], msgs
    assert "inner cell `link` (bw), `rate`" in msgs[1][1] and "inner cell `d` (delay)" in msgs[0][1]
    assert {text[d.span.start:d.span.end] for d in errs} == {"cell b: bad_inner {}"}  # the user's instance
    errs = errors_of("channel c {\n  left -> refuses {} -> right\n  right -> left\n}\n")
    assert [d.code for d in errs] == ["RTN025"] and "rate too low for this model" in errs[0].message


def test_params_are_checked_against_the_python_cells_schema():
    errs = errors_of(THROTTLED.replace("to = 5Mbps", "to = 5ms"))
    assert [d.code for d in errs] == ["RTN021"]
    errs = errors_of(THROTTLED.replace("to = 5Mbps", "tu = 5Mbps"))
    assert [d.code for d in errs] == ["RTN013"] and "`interval`, `rate`, `after`, `to`" in errs[0].help[0]
    errs = errors_of(THROTTLED.replace("rate = 20Mbps, ", "interval = 0s, rate = 20Mbps, "))
    assert [d.code for d in errs] == ["RTN022"] and "tick period" in errs[0].message


# -- real time (root): ticks off the engine thread, their changes through the engine's inbox

class Stepper(PythonCell):
    """A delay that follows the cell's own `delay` at every tick; records its tick times."""
    ticks: list[int] = []

    def inner(self, config):
        return [("path", "delay", {"delay": config["delay"]})]

    def start(self, config, seed):
        type(self).ticks = []

    def tick(self, now_ns, cells):
        type(self).ticks.append(now_ns)
        if cells["path"].get("delay") != self.config["delay"]:
            cells["path"].set("delay", self.config["delay"])


class Crashing(Stepper):
    def tick(self, now_ns, cells):
        super().tick(now_ns, cells)
        if len(type(self).ticks) == 3:
            raise RuntimeError("lost the model")


STEPPER = schema("stepper", "Stepper", {"delay": {**TIME, "x-runtime": True}}, ["delay"])
CRASHING = schema("crashing", "Crashing", {"delay": TIME}, ["delay"])
REAL = registry(STEPPER, CRASHING)


def _ping(live, count: int) -> list[float]:
    from tests.runtime.conftest import ping_times_ms
    left, right = live.net.endpoints["left"], live.net.endpoints["right"]
    out = subprocess.run(["ip", "netns", "exec", left.netns, "ping", "-n", "-c", str(count), "-i", "0.05",
                          right.address], capture_output=True, text=True, timeout=30).stdout
    return ping_times_ms(out)


def _live(cell: str):
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.run import ChannelRun
    plan = plan_of(f"channel c {{\n  cell s: {cell}\n  left -> s -> right\n  right -> left\n}}\n", REAL)
    return ChannelRun(plan, choose_channel(plan, None))


def test_real_run_ticks_and_a_change_through_the_control_api_shows_in_ping(no_leftovers, record_property):
    from rattan.control import ControlAPI
    from tests.runtime.conftest import check_path_delay
    with _live("stepper { delay = 10ms, interval = 20ms }") as live:
        check_path_delay(_ping(live, 10), 10.0, record_property, "before")
        api = ControlAPI(live.engine, live.instances, REAL, "real")
        r = api.handle("PATCH", "/channels/c/cells/s", json.dumps({"delay": "40ms"}).encode())
        assert r.status == 200, r.body
        time.sleep(0.1)  # the model's `set` comes before its next tick, 20 ms later at most
        assert api.handle("GET", "/channels/c/cells/s").body["runtime"] == {"delay": 40_000_000}
        check_path_delay(_ping(live, 10), 40.0, record_property, "after")
        tele = api.handle("GET", "/channels/c/cells/s/telemetry").body
        now = live.engine.now
    ticks = Stepper.ticks
    assert ticks[:3] == [20_000_000, 40_000_000, 60_000_000] or tele["skipped_ticks"], ticks[:5]
    assert all(t % 20_000_000 == 0 for t in ticks) and ticks == sorted(set(ticks))
    # a tick for every 20 ms of the run, but for the last one under way and any skipped when late
    assert now // 20_000_000 - 2 <= len(ticks) + tele["skipped_ticks"] <= now // 20_000_000 + 1
    assert tele["cells"] == {"path": "s.path"} and tele["failed"] is None


def test_real_run_reports_a_failing_tick_once_and_goes_on(no_leftovers, record_property, capsys):
    from tests.runtime.conftest import check_path_delay
    with _live("crashing { delay = 10ms }") as live:
        while len(Crashing.ticks) < 3:
            time.sleep(0.01)
        time.sleep(0.1)
        check_path_delay(_ping(live, 5), 10.0, record_property)  # the cells it drove still forward
    assert len(Crashing.ticks) == 3  # no tick after the failure
    err = capsys.readouterr().err
    assert err.count("rattan: Python cell `s`") == 1, err
    assert re.search(r"Python cell `s` \(tests\.runtime\.test_python_cells:Crashing\): tick at 0\.030 s raised "
                     r"RuntimeError: lost the model \(.*test_python_cells\.py:\d+ in tick\); the run goes on "
                     r"without it", err), err


def test_a_plan_whose_python_class_is_gone_is_refused_before_time_runs():
    plan = plan_of(THROTTLED)
    plan["channels"][0]["controllers"][0]["class"] = "rattan_no_such_plugin:Gone"
    with pytest.raises(sim.SimError, match=r"cannot import `rattan_no_such_plugin:Gone` \(Python cell `t`\): "
                                           r"ModuleNotFoundError"):
        sim.run(plan, None, ["left->right:cbr:1Mbps"], "1s", seed=1)

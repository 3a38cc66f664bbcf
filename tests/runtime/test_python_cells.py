"""Python cells in real time (root): ticks off the engine thread, their changes through the engine's
inbox with their logical time, the control API on a Python cell's own parameters, a failing tick."""
from __future__ import annotations

import json
import re
import subprocess
import time

from rattan import PythonCell
from tests.passes.test_python_cells import TIME, plan_of, registry, schema

HERE = "tests.runtime.test_python_cells"


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


STEPPER = schema("stepper", "Stepper", {"delay": {**TIME, "x-runtime": True}}, ["delay"], module=HERE)
CRASHING = schema("crashing", "Crashing", {"delay": TIME}, ["delay"], module=HERE)
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
        deadline = time.monotonic() + 10
        while len(Crashing.ticks) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        check_path_delay(_ping(live, 5), 10.0, record_property)  # the cells it drove still forward
    assert len(Crashing.ticks) == 3  # no tick after the failure
    err = capsys.readouterr().err
    assert err.count("rattan: Python cell `s`") == 1, err
    assert re.search(r"Python cell `s` \(tests\.runtime\.test_python_cells:Crashing\): tick at 0\.030 s raised "
                     r"RuntimeError: lost the model \(.*test_python_cells\.py:\d+ in tick\); the run goes on "
                     r"without it", err), err

"""Python cells in virtual time: ticks at exact logical times, their changes in force from that
time, their own parameters changed by a timeline at its exact time, determinism, and failures."""
from __future__ import annotations

import json

import pytest

from rattan.runtime import sim
from tests.passes.test_python_cells import THROTTLED, Throttle, plan_of


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



def test_a_timeline_reaches_the_python_cells_own_set_at_its_exact_time():
    plan = plan_of(THROTTLED.replace("  right -> left\n", "  right -> left\n  at 250ms { t.after = 0s }\n"))
    sim.run(plan, None, ["left->right:cbr:10Mbps"], "500ms", seed=1)
    # after the 24 ticks up to 240 ms, before the one at 250 ms: at one logical time, set comes first
    assert Throttle.sets == [("after", 0, 24)]
    assert Throttle.ticks[24] == 250_000_000



def test_same_seed_same_result_and_another_seed_differs():
    """A CBR flow through a delay and a bw is the same whatever the seed; the model draws its delays
    from the run's seed, so the seed alone makes runs differ."""
    text = "channel c {\n  cell w: wander { rate = 8Mbps }\n  left -> w -> right\n  right -> left\n}\n"
    plan = plan_of(text)
    run = lambda seed: json.dumps(sim.run(plan, None, ["left->right:cbr:4Mbps"], "2s", seed=seed,
                                          samples=True), sort_keys=True)
    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert a != c
    delays = json.loads(a)["flows"][0]["delay_ms"]
    assert delays["max"] - delays["min"] > 20  # the model's delays, from 5 ms to 50 ms


def test_exception_in_tick_stops_the_sim_with_the_cell_time_and_place():
    plan = plan_of("channel c {\n  cell f: failing { rate = 8Mbps }\n  left -> f -> right\n  right -> left\n}\n")
    with pytest.raises(sim.SimError) as e:
        sim.run(plan, None, ["left->right:cbr:1Mbps"], "1s", seed=1)
    msg = str(e.value)
    assert "Python cell `f`" in msg and "Failing" in msg and "tick at 0.030 s" in msg
    assert "ZeroDivisionError: model broke" in msg and "test_python_cells.py" in msg



def test_a_plan_whose_python_class_is_gone_is_refused_before_time_runs():
    plan = plan_of(THROTTLED)
    plan["channels"][0]["controllers"][0]["class"] = "rattan_no_such_plugin:Gone"
    with pytest.raises(sim.SimError, match=r"cannot import `rattan_no_such_plugin:Gone` \(Python cell `t`\): "
                                           r"ModuleNotFoundError"):
        sim.run(plan, None, ["left->right:cbr:1Mbps"], "1s", seed=1)

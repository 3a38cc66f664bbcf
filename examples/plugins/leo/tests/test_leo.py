"""The `leo` cell in `rattan sim` (run with the plugin installed): reconfigurations at exactly
k × period, each packet delayed by the draw in force when it arrived, packets lost only in the
windows [k × period, k × period + outage), and the draws fixed by the seed."""
import json
import subprocess
import sys
from itertools import islice

import pytest

MS = 1_000_000


def _why_not() -> str | None:
    try:
        import rattan.pycell  # noqa: F401
    except ImportError:
        return "this rattan has no Python cells (rattan.pycell): upgrade rattan"
    from rattan.registry import default_registry
    if default_registry().get("leo") is None:
        return "the `leo` plugin is not installed: `pip install .` first"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


def sim(tmp_path, params: str, duration: str, seed: int, flow="left->right:cbr:1200kbps") -> dict:
    """`left -> leo -> right` with every received packet's sequence number and one-way delay."""
    path = tmp_path / "path.rtn"
    path.write_text(f"channel c {{\n    cell sat: leo {{ {params} }}\n    left -> sat -> right\n    right -> left\n}}\n")
    r = subprocess.run([sys.executable, "-m", "rattan", "sim", str(path), "--flow", flow, "--duration", duration,
                        "--seed", str(seed), "--json", "--samples"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def per_packet(doc: dict) -> dict[int, int]:
    s = doc["flows"][0]["samples"]
    return dict(zip(s["seq"], s["delay_ns"]))


def expected(period: int, outage: int, first: int, draws: list[int], interval: int, sent: int) -> dict[int, int]:
    """Packet i arrives at i × interval: lost in a window, else delayed by the draw in force then."""
    out = {}
    for i in range(sent):
        t = i * interval
        k = t // period  # reconfigurations so far
        if k and t - k * period < outage:
            continue
        out[i] = draws[k - 1] if k else first
    return out


@pytest.mark.parametrize("seed", [1, 7])
def test_reconfigurations_at_each_period_with_the_seeded_delays_and_losses_only_in_the_windows(tmp_path, seed):
    """A packet every 10 ms for 3.5 s, a reconfiguration every second, 100 ms outages: 10 packets
    lost at each of 1, 2 and 3 s, and each other packet delayed by exactly the delay then in force."""
    from rattan_leo.leo.cell import delays
    config = {"min_delay": 25 * MS, "max_delay": 45 * MS}
    doc = sim(tmp_path, "period = 1s, outage = 100ms", "3500ms", seed)
    draws = list(islice(delays(config, seed), 3))
    assert all(25 * MS <= d <= 45 * MS for d in draws) and len(set(draws)) == 3
    sent = doc["flows"][0]["sent_packets"]
    in_flight = doc["cells"]["sat.path"]["queued_packets"]  # the last ones, still in the delay at 3.5 s
    want = expected(1000 * MS, 100 * MS, 25 * MS, draws, 10 * MS, sent)
    got = per_packet(doc)
    assert got == {i: d for i, d in want.items() if i < sent - in_flight}
    assert doc["cells"]["sat.gap"]["dropped_by_reason"] == {"outage": 30}
    assert doc["python_cells"]["sat"]["ticks"] == 3


def test_the_same_seed_draws_the_same_delays_and_another_seed_others(tmp_path):
    def run(seed):
        doc = sim(tmp_path, "period = 1s, outage = 100ms", "3500ms", seed)
        d = per_packet(doc)
        return [d[110], d[210], d[310]]  # one packet after each reconfiguration's window
    one, again, other = run(3), run(3), run(4)
    assert one == again and len(set(one)) == 3
    assert other != one and all(25 * MS <= d <= 45 * MS for d in one + other)


def test_the_defaults_reconfigure_every_15s_with_50ms_outages(tmp_path):
    """31 s at a packet every 10 ms: reconfigurations at 15 and 30 s, 5 packets lost at each."""
    from rattan_leo.leo.cell import delays
    doc = sim(tmp_path, "", "31s", 1)
    draws = list(islice(delays({"min_delay": 25 * MS, "max_delay": 45 * MS}, 1), 2))
    got = per_packet(doc)
    assert doc["cells"]["sat.gap"]["dropped_by_reason"] == {"outage": 10}
    assert set(range(3101)) - set(got) - set(range(3100 - 10, 3101)) == {*range(1500, 1505), *range(3000, 3005)}
    assert (got[1499], got[1505], got[2999], got[3005]) == (25 * MS, draws[0], draws[0], draws[1])


def test_an_outage_as_long_as_the_period_is_refused_at_the_instance(tmp_path):
    path = tmp_path / "w.rtn"
    path.write_text("channel c {\n    cell sat: leo { period = 1s, outage = 1s }\n    left -> sat -> right\n"
                    "    right -> left\n}\n")
    r = subprocess.run([sys.executable, "-m", "rattan", "check", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "RTN025" in r.stdout + r.stderr and "shorter than `period`" in r.stdout + r.stderr

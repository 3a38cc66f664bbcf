"""The `policer` cell in `rattan sim` against its analytic answer (run with the plugin installed)."""
import json
import subprocess
import sys

import pytest

PACKET = 1500  # bytes, the flows' default size


def _installed() -> bool:
    from rattan.registry import default_registry
    ct = default_registry().get("policer")
    return ct is not None and ct.library is not None


pytestmark = pytest.mark.skipif(not _installed(), reason="the `policer` plugin is not installed with its "
                                                         "library: `pip install .` first")


def sim(tmp_path, body: str, flow: str, duration: str) -> dict:
    path = tmp_path / "path.rtn"
    path.write_text("channel c {\n" + body + "\n    right -> left\n}\n")
    r = subprocess.run([sys.executable, "-m", "rattan", "sim", str(path), "--flow", flow, "--duration", duration,
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_saturated_link_delivers_rate_times_time(tmp_path):
    """Offered twice its rate, the link sends back to back: floor(T * rate / (8 * size)) packets by T."""
    rate, seconds = 10_000_000, 2
    r = sim(tmp_path, "    left -> policer { rate = 10Mbps, queue = 15000B } -> right",
            "left->right:cbr:20Mbps", f"{seconds}s")
    (flow,) = r["flows"]
    cell = r["cells"]["policer_1"]
    assert flow["received_packets"] == seconds * rate // (8 * PACKET)
    assert cell["queued_packets"] == 15000 // PACKET  # full at the end
    assert cell["in_packets"] == cell["out_packets"] + cell["dropped_packets"] + cell["queued_packets"]
    assert cell["dropped_by_reason"] == {"queue_full": cell["dropped_packets"]}


def test_a_timeline_changes_the_rate(tmp_path):
    """10 Mbit/s for 1 s, then 5 Mbit/s for 1 s: (10 + 5) Mbit / (8 * size) packets, within one."""
    r = sim(tmp_path, "    cell link: policer { rate = 10Mbps }\n    left -> link -> right\n"
                      "    at 1s { link.rate = 5Mbps }", "left->right:cbr:20Mbps", "2s")
    expected = (10_000_000 + 5_000_000) / (8 * PACKET)
    assert abs(r["flows"][0]["received_packets"] - expected) <= 1

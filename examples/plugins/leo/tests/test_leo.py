"""The `leo` cell in `rattan sim` against its analytic answer (run with the plugin installed).

It needs a rattan with Python cells (rattan.pycell); with an older one the tests skip and say so."""
import json
import subprocess
import sys

import pytest

PACKET = 1500  # bytes, the flows' default size


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


def sim(tmp_path, body: str, flow: str, duration: str) -> dict:
    path = tmp_path / "path.rtn"
    path.write_text("channel c {\n" + body + "\n    right -> left\n}\n")
    r = subprocess.run([sys.executable, "-m", "rattan", "sim", str(path), "--flow", flow, "--duration", duration,
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_saturated_link_delivers_the_mean_rate(tmp_path):
    """1 s at 10 Mbit/s, 1 s at 5 Mbit/s, 1 s at 10 again: (10 + 5 + 10) Mbit / (8 * size) packets."""
    r = sim(tmp_path, "    cell x: leo { rate = 10Mbps, low_rate = 5Mbps, period = 1s }\n    left -> x -> right",
            "left->right:cbr:20Mbps", "3s")
    expected = 25_000_000 / (8 * PACKET)
    assert abs(r["flows"][0]["received_packets"] - expected) <= 2
    assert r["cells"]["x.link"]["queued_packets"] > 0  # offered more than it sends

"""The control API in a real run (root): a rate change through `rattan ctl`, made from inside the
run's command over the Unix socket, shows in iperf3's interval report within a second."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]

LINK = """
channel c {
    endpoints left, right
    cell up: bw { rate = 20Mbps, queue = droptail { bytes = 60KB } }
    left -> up -> delay { delay = 5ms } -> right
    right -> delay { delay = 5ms } -> left
}
"""


def test_a_rate_change_shows_in_iperf3_within_a_second(tmp_path):
    path = tmp_path / "c.rtn"
    path.write_text(LINK)
    sock = tmp_path / "api.sock"
    script = (f"iperf3 -c $RATTAN_RIGHT_IP -t 5 -i 0.5 -J --get-server-output > {tmp_path}/iperf.json & "
              f"sleep 2; {sys.executable} -m rattan ctl set up rate=5Mbps > {tmp_path}/ctl.json; wait; "
              f"{sys.executable} -m rattan ctl state > {tmp_path}/state.json")
    r = subprocess.run([*RATTAN, "run", str(path), "--http", f"unix:{sock}", "--right", "iperf3 -s -1 -J -i 0.5 >/dev/null",
                        "--", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "control API on unix:" in r.stderr and not sock.exists()  # the socket goes with the run
    assert json.loads((tmp_path / "ctl.json").read_text())["changed"] == {"rate": "5Mbps"}
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["clock"] == "real" and state["changes_applied"] == 1
    assert state["frames"]["sent"] > 1000 and state["frames"]["late"] <= state["frames"]["sent"]
    # the receiver's intervals (the sender's count socket writes, in 128 KB steps)
    server = json.loads((tmp_path / "iperf.json").read_text())["server_output_json"]
    intervals = [(i["sum"]["start"], i["sum"]["bits_per_second"]) for i in server["intervals"]]
    before = [bps for start, bps in intervals if 0.5 <= start < 1.5]
    after = [bps for start, bps in intervals if start >= 3.0]  # the change was at about 2 s
    assert before and after
    assert all(bps > 15e6 for bps in before), intervals
    # within a second of the change every interval is near the new rate (the receiver's 0.5-s
    # intervals vary by a few hundred kbit/s with its read timing), and so is their mean
    assert all(bps < 6.5e6 for bps in after), intervals
    assert sum(after) / len(after) < 5.3e6, intervals

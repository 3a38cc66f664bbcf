"""A real `rattan link` with upstream Rattan's flags, changed while it runs the way upstream's own HTTP
test changes it (rattan-core/tests/integration/http.rs: poll GET /state, then POST /config/<id> with a
cell's config body): pings see the new delay. Needs root (skipped otherwise, see conftest)."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time

from tests.runtime.conftest import check_path_delay, ping_times_ms

RATTAN = [sys.executable, "-m", "rattan"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, method: str, path: str, body=None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_an_upstream_link_changed_through_upstreams_config_route(tmp_path, record_property, no_leftovers):
    port, go = _free_port(), tmp_path / "go"
    # the command pings, waits (at most 20 s) for the test to change the uplink delay, and pings again
    script = (f"ping -n -c 5 -i 0.1 $RATTAN_RIGHT_IP; echo PHASE2; i=0; "
              f"while [ ! -e {go} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
              f"ping -n -c 5 -i 0.1 $RATTAN_RIGHT_IP")
    proc = subprocess.Popen([*RATTAN, "link", "--uplink-bandwidth", "100Mbps", "--uplink-queue", "droptail",
                             "--uplink-queue-args", '{"packet_limit": 1000}', "--uplink-delay", "15ms",
                             "--downlink-delay", "5ms", "--uplink-loss", "0", "--seed", "1",
                             "--http", "-p", str(port), "--", "sh", "-c", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        for line in proc.stdout:  # until the first pings are done
            lines.append(line)
            if line.startswith("PHASE2") or time.monotonic() > deadline:
                break
        status, state = _request(port, "GET", "/state")
        assert status == 200 and state["state"] == "Running"
        # a Bw body on the delay cell is refused, as upstream's test expects, and changes nothing
        status, answer = _request(port, "POST", "/config/up_2", {"bandwidth": "100Mbps"})
        assert status == 400 and "delay" in answer["error"]
        status, answer = _request(port, "POST", "/config/up_2", {"delay": "40ms"})
        assert status == 200, answer
        go.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(lines) + out + err
    before, after = ping_times_ms("".join(lines)), ping_times_ms(out)
    assert len(before) >= 4 and len(after) >= 4, (before, after)
    check_path_delay(before, 20.0, record_property, "rtt_before")  # 15 ms up + 5 ms down
    check_path_delay(after, 45.0, record_property, "rtt_after")    # 40 ms up + 5 ms down

"""Upstream Rattan TOML files on real packets (root): their `[commands]`, their `shell`, and the
`Compatible` mode, whose left endpoint lives in the namespace rattan runs in (here one the test made)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.runtime.conftest import SERVER_UP, check_path_delay, ping_times_ms

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _with_commands(tmp_path: Path, commands: str) -> str:
    text = (EXAMPLES / "broadband.toml").read_text()
    assert "[commands]" not in text
    p = tmp_path / "broadband.toml"
    p.write_text(text + "\n[commands]\n" + commands)
    return str(p)


def test_the_files_commands_run_on_both_sides(tmp_path, record_property):
    # broadband.toml: 20 Mbit/s and 20 ms up, 100 Mbit/s and 20 ms down
    client = SERVER_UP + "ping -c 10 -i 0.1 $RATTAN_RIGHT_IP; iperf3 -c $RATTAN_RIGHT_IP -t 4 -J"
    path = _with_commands(tmp_path, 'right = ["sh", "-c", "iperf3 -s -1 >/dev/null"]\n'
                                    f'left = {json.dumps(["sh", "-c", client])}\n')  # a TOML array too
    r = subprocess.run([*RATTAN, "run", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    head, _, js = r.stdout.partition("{")
    rtts = ping_times_ms(head)
    assert len(rtts) == 10, head
    check_path_delay(rtts, 40.0, record_property)  # 20 ms each way
    goodput = json.loads("{" + js)["end"]["sum_received"]["bits_per_second"]
    record_property("goodput_bps", goodput)
    assert 12e6 <= goodput <= 20e6  # 16.7-18.7 Mbit/s over 10 runs with one core hogged


def test_a_command_line_command_overrides_the_files_and_shell_runs_them(tmp_path):
    path = _with_commands(tmp_path, 'shell = "Bash"\nleft = ["echo", "from the file: $RATTAN_CHANNEL"]\n')
    r = subprocess.run([*RATTAN, "run", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "from the file: broadband"  # Bash expanded the variable
    r = subprocess.run([*RATTAN, "run", path, "--", "echo", "from the command line"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "from the command line"


@pytest.fixture
def host_namespace():
    """A namespace made by this test, where rattan runs as if it were the host's own."""
    name = f"rtt-host-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_compatible_mode_puts_the_left_endpoint_where_rattan_runs(tmp_path, host_namespace):
    text = (EXAMPLES / "broadband.toml").read_text().replace('mode = "Isolated"', 'mode = "Compatible"')
    path = tmp_path / "compatible.toml"
    path.write_text(text)
    script = "ip -o -4 addr show; ip netns identify; ping -c 5 -i 0.1 $RATTAN_RIGHT_IP"
    r = subprocess.run(["ip", "netns", "exec", host_namespace, *RATTAN, "run", str(path), "--", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # the command ran in the namespace rattan ran in, next to the left endpoint's interface
    assert re.search(r"rt\d+-left\s+inet 10\.\d+\.\d+\.1/24", r.stdout), r.stdout
    assert host_namespace in r.stdout.split()
    assert " 0% packet loss" in r.stdout
    # and nothing of rattan is left in that namespace afterwards
    links = subprocess.run(["ip", "netns", "exec", host_namespace, "ip", "-o", "link"],
                           capture_output=True, text=True, check=True).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]

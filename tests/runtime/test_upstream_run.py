"""Upstream Rattan documents on real packets (root), with upstream's meaning (stack-rs/rattan a18829c:
rattan-env/src/env.rs, src/main.rs, src/env_var.rs): Compatible mode keeps the right side in the
namespace rattan runs in (here always one the test made), one namespace a side with 10.1.i.x and
10.2.i.x /32 addresses, upstream's command variables, `[commands]` as upstream runs them, and the
file's `[general]` packet log and `[http]` server."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from rattan.runtime import packet_log
from tests.runtime.conftest import SERVER_UP, check_path_delay, ping_times_ms

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT = 90  # seconds, for one `rattan run` on a loaded machine

UPSTREAM = Path(__file__).resolve().parents[1] / "frontends" / "upstream"  # the corpus of upstream files
# upstream's examples/public-server/rattan.toml (its [commands] come from the command line there:
# `rattan run -c rattan.toml --left inner.sh UUID`)
PUBLIC_SERVER = (UPSTREAM / "public_server.toml").read_text()
# the configuration upstream's multipath integration test builds (rattan-core/tests/integration/
# multipath.rs, test_multipath_ping): four left veths, two right ones, a router
MULTIPATH = (UPSTREAM / "it_multipath.toml").read_text()

# upstream's `ping_right_from_left(l, r)`: ping right veth r from left veth l (`-I` its interface)
PING_PAIRS = r"""
for pair in "1 1" "1 2" "2 1" "2 2" "3 1"; do set -- $pair
  dev=$(ip -o link | sed -n "s/^[0-9]*: \(vL$1-L-[A-Za-z0-9]*\)@.*/\1/p")
  dst=$(eval echo "\$RATTAN_IP_$2")
  if ping -c 3 -i 0.2 -W 2 -I "$dev" "$dst" >/dev/null 2>&1; then r=ok; else r=fail; fi
  echo "ping left$1 right$2 $r"
done
"""


def _doc(tmp_path: Path, text: str, commands: dict | None = None, name: str = "up.toml",
         mode: str | None = None) -> Path:
    if mode:
        text = re.sub(r'mode = "\w+"', f'mode = "{mode}"', text)
    if commands:
        text += "\n[commands]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in commands.items())
    p = tmp_path / name
    p.write_text(text)
    return p


def _run(args: list, cwd: Path | None = None, netns: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, *RATTAN, "run", *map(str, args)], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, cwd=cwd)


@pytest.fixture
def host_namespace():
    """A namespace made by this test, where rattan runs as if it were the host's own."""
    name = f"rtt-host-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def _links(netns: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "exec", netns, "ip", "-o", "link"], capture_output=True, text=True,
                         check=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def test_public_server_keeps_the_right_side_in_the_namespace_rattan_runs_in(tmp_path, host_namespace):
    # upstream's public-server example: the left command (inner.sh) writes its address, where the host,
    # which is the right side, reaches it through the path
    addr, stop = tmp_path / "inner.addr", tmp_path / "stop"
    inner = ("INTERFACE=$(ip route | grep default | awk '{print $5}'); "
             "ip addr show \"$INTERFACE\" | grep 'inet ' | awk '{print $2}' | cut -d/ -f1 > " + f"{addr}.tmp; "
             f"mv {addr}.tmp {addr}; ip netns identify > {tmp_path}/left.netns; "
             f"i=0; while [ ! -e {stop} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done")
    path = _doc(tmp_path, PUBLIC_SERVER)
    rattan = subprocess.Popen(["ip", "netns", "exec", host_namespace, *RATTAN, "run", str(path), "-q",
                               "--", "sh", "-c", inner], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not addr.exists() and time.monotonic() < deadline and rattan.poll() is None:
            time.sleep(0.05)
        assert addr.exists(), rattan.communicate(timeout=10)
        assert addr.read_text().strip() == "10.1.1.1"
        # the right veth (10.2.1.1/32) and the route to the left side are in the host's namespace ...
        here = subprocess.run(["ip", "netns", "exec", host_namespace, "sh", "-c", "ip -o -4 addr; ip route"],
                              capture_output=True, text=True, check=True).stdout
        assert re.search(r"vR1-R-[A-Za-z0-9]{6}\s+inet 10\.2\.1\.1/32", here), here
        assert re.search(r"^10\.1\.1\.1 dev vR1-R-\w+ .*scope link", here, re.M), here
        # ... which reaches the left command through the path: 20 ms each way
        ping = subprocess.run(["ip", "netns", "exec", host_namespace, "ping", "-c", "3", "-i", "0.2", "10.1.1.1"],
                              capture_output=True, text=True, timeout=30)
        assert " 0% packet loss" in ping.stdout, ping.stdout + ping.stderr
        assert min(ping_times_ms(ping.stdout)) >= 40.0
        # and the left command ran in a namespace of its own (upstream's ns-left)
        assert re.fullmatch(r"rattan-\d+-left", (tmp_path / "left.netns").read_text().strip())
    finally:
        stop.touch()
        out, err = rattan.communicate(timeout=RUN_TIMEOUT)
    assert rattan.returncode == 0, out + err
    assert _links(host_namespace) == ["lo"]  # nothing of rattan is left in the host's namespace


def test_commands_see_upstreams_variables_and_the_externals_are_unwired_veths(tmp_path):
    # Isolated, two right veths, and veth 0 on both sides (left_external/right_external = "Veth"):
    # each side sees the other side's addresses (RATTAN_IP_<i>, RATTAN_BASE = veth 1's, RATTAN_EXT =
    # veth 0's) and RATTAN_ID
    text = ('[env]\nmode = "Isolated"\nright_veth_count = 2\nleft_external = "Veth"\nright_external = "Veth"\n\n'
            '[cells.d]\ntype = "Delay"\ndelay = "5ms"\n\n[links]\nleft = "d"\nd = "right1"\nright1 = "left"\n')
    show = ("env | grep -E '^RATTAN_(IP_[0-9]+|BASE|EXT|ID)=' | sort > {out}; "
            "ip -o -4 addr show | awk '{{print $2, $4}}' >> {out}")
    doc = _doc(tmp_path, text, {"left": ["sh", "-c", show.format(out=tmp_path / "left.env")],
                                "right": ["sh", "-c", show.format(out=tmp_path / "right.env")]})
    r = _run([doc, "-q"])
    assert r.returncode == 0, r.stdout + r.stderr
    left = (tmp_path / "left.env").read_text().splitlines()
    right = (tmp_path / "right.env").read_text().splitlines()
    rid = next(v.split("=")[1] for v in left if v.startswith("RATTAN_ID="))
    assert re.fullmatch(r"[A-Za-z0-9]{6}", rid)
    assert [v for v in left if v.startswith("RATTAN_") and "ID=" not in v] == [
        "RATTAN_BASE=10.2.1.1", "RATTAN_EXT=192.168.2.1",
        "RATTAN_IP_0=192.168.2.1", "RATTAN_IP_1=10.2.1.1", "RATTAN_IP_2=10.2.2.1"]
    assert [v for v in right if v.startswith("RATTAN_") and "ID=" not in v] == [
        "RATTAN_BASE=10.1.1.1", "RATTAN_EXT=192.168.1.1", "RATTAN_IP_0=192.168.1.1", "RATTAN_IP_1=10.1.1.1"]
    assert f"RATTAN_ID={rid}" in right  # one instance, one id
    # one namespace a side, upstream's names and /32 addresses, veth 0 included
    assert {f"vL0-L-{rid} 192.168.1.1/32", f"vL1-L-{rid} 10.1.1.1/32"} <= set(left), left
    assert {f"vR0-R-{rid} 192.168.2.1/32", f"vR1-R-{rid} 10.2.1.1/32", f"vR2-R-{rid} 10.2.2.1/32"} <= set(right), right


def test_a_general_packet_log_is_written_and_the_flag_wins(tmp_path):
    # [general] packet_log relative to the working directory (upstream's PathBuf), its folder made
    text = PUBLIC_SERVER.replace("[links]", '[general]\npacket_log = "logs/run.log"\n\n[links]')
    doc = _doc(tmp_path, text, {"left": ["ping", "-c", "3", "-i", "0.2", "10.2.1.1"]}, mode="Isolated")
    doc.write_text(doc.read_text() + 'right = ["sleep", "0.1"]\n')
    r = _run([doc, "-q"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    log = tmp_path / "logs" / "run.log"
    header, records = packet_log.read(str(log))
    names = {int(k): v["name"] for k, v in header["nodes"].items()}
    departs = Counter(names[x.node] for x in records if x.event == "depart")
    # three echo requests left through `up_delay`, three replies through `down_delay`
    assert departs["up_delay"] == 3 and departs["down_delay"] == 3, departs
    # packet_log_mode (CompactTCP when absent) logs headers upstream: the first 120 bytes here
    assert packet_log.recorded_snaplen(header) == 120
    assert all(len(x.data) <= 120 for x in records)
    log.unlink()
    r = _run([doc, "-q", "--packet-log", tmp_path / "flag.log"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "flag.log").stat().st_size > 0 and not log.exists()


def test_isolated_runs_right_then_left_and_waits_for_both(tmp_path):
    right = f"echo up > {tmp_path}/right.started; sleep 1; echo done > {tmp_path}/right.done"
    left = f"test -e {tmp_path}/right.started && echo right-was-first"
    doc = _doc(tmp_path, PUBLIC_SERVER, {"left": ["sh", "-c", left], "right": ["sh", "-c", right]},
               mode="Isolated")
    r = _run([doc, "-q"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "right-was-first"
    assert (tmp_path / "right.done").read_text() == "done\n"  # the run lasted until right ended
    # a failing right command is the run's failure when left succeeded, as upstream reports it
    doc = _doc(tmp_path, PUBLIC_SERVER, {"left": ["true"], "right": ["sh", "-c", "exit 3"]}, mode="Isolated")
    assert _run([doc, "-q"]).returncode == 3
    # Isolated mode needs a command on each side, before anything is built
    doc = _doc(tmp_path, PUBLIC_SERVER, {"left": ["true"]}, mode="Isolated")
    r = _run([doc, "-q"])
    assert r.returncode == 2 and "Isolated mode" in r.stderr and "no right command" in r.stderr, r.stderr


def test_compatible_runs_left_unchanged_through_env_and_ignores_right(tmp_path, host_namespace):
    marker = tmp_path / "right-ran"
    left = ["printf", "[%s]", "a b", "$HOME", "it's", "", "*"]
    doc = _doc(tmp_path, PUBLIC_SERVER, {"left": ["A_VAR=set", "sh", "-c", 'printf "$A_VAR"; "$@"', "sh", *left],
                                         "right": ["touch", str(marker)], "shell": "Bash"})
    r = _run([doc, "-q"], netns=host_namespace)
    assert r.returncode == 0, r.stdout + r.stderr
    # /usr/bin/env took A_VAR=set; every argument arrived as written: no shell joined or expanded them
    assert r.stdout == "set[a b][$HOME][it's][][*]"
    assert not marker.exists()
    assert r.stderr.count("[commands] right is ignored in Compatible mode") == 1, r.stderr


def test_the_files_commands_run_on_both_sides(tmp_path, record_property):
    # broadband.toml (Isolated): 20 Mbit/s and 20 ms up, 100 Mbit/s and 20 ms down
    client = SERVER_UP + "ping -c 10 -i 0.1 $RATTAN_BASE; iperf3 -c $RATTAN_BASE -t 4 -J"
    text = (EXAMPLES / "broadband.toml").read_text()
    doc = _doc(tmp_path, text, {"right": ["sh", "-c", "iperf3 -s -1 >/dev/null"], "left": ["sh", "-c", client]})
    r = _run([doc])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    head, _, js = r.stdout.partition("{")
    rtts = ping_times_ms(head)
    assert len(rtts) == 10, head
    check_path_delay(rtts, 40.0, record_property)  # 20 ms each way
    goodput = json.loads("{" + js)["end"]["sum_received"]["bits_per_second"]
    record_property("goodput_bps", goodput)
    assert 12e6 <= goodput <= 20e6  # 16.7-18.7 Mbit/s over 10 runs with one core hogged


def test_two_instances_do_not_clash(tmp_path, host_namespace):
    ping = ["sh", "-c", "ping -c 2 -i 0.2 -W 2 $RATTAN_BASE >/dev/null && echo $RATTAN_LEFT_IP $RATTAN_BASE"]
    # Isolated: namespaces of their own, the same addresses in each
    doc = _doc(tmp_path, PUBLIC_SERVER, {"left": ping, "right": ["true"]}, mode="Isolated")
    r = _run([doc, "-q", "-n", "2"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(r.stdout.splitlines()) == ["[up#0] 10.1.1.1 10.2.1.1", "[up#1] 10.1.1.1 10.2.1.1"]
    # Compatible: both right sides are the host's namespace; the second takes the next free suffix
    doc = _doc(tmp_path, PUBLIC_SERVER, {"left": ping})
    r = _run([doc, "-q", "-n", "2"], netns=host_namespace)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(r.stdout.splitlines()) == ["[up#0] 10.1.1.1 10.2.1.1", "[up#1] 10.1.1.3 10.2.1.3"]
    # ... which a router written for 10.x.1.1 would misroute: refused, saying why
    doc = _doc(tmp_path, MULTIPATH, {"left": ["true"]}, name="routed.toml", mode="Compatible")
    r = _run([doc, "-q", "-n", "2"], netns=host_namespace)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "10.1.1.3, not 10.1.1.1" in r.stderr and "Isolated" in r.stderr, r.stderr
    assert _links(host_namespace) == ["lo"]


def test_the_file_starts_its_http_server_and_the_flag_wins(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = tmp_path / "stop"
    wait = f"i=0; while [ ! -e {stop} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"
    text = PUBLIC_SERVER.replace("[links]", f"[http]\nenable = true\nport = {port}\n\n[links]")
    doc = _doc(tmp_path, text, {"left": ["sh", "-c", wait], "right": ["true"]}, mode="Isolated")
    rattan = subprocess.Popen([*RATTAN, "run", str(doc), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        lines = [rattan.stderr.readline() for _ in range(1)]
        while "control API on" not in lines[-1] and lines[-1] and len(lines) < 50:
            lines.append(rattan.stderr.readline())
        assert f"control API on http://127.0.0.1:{port}" in lines[-1], lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/state", timeout=10) as resp:
            assert resp.status == 200
    finally:
        stop.touch()
        out, err = rattan.communicate(timeout=RUN_TIMEOUT)
    assert rattan.returncode == 0, out + err
    sock = tmp_path / "c.sock"
    r = _run([doc, "-q", "--http", f"unix:{sock}"])
    assert r.returncode == 0 and f"control API on unix:{sock}" in r.stderr, r.stderr


# The multipath test: upstream's own assertions. Merged with h-fe and h-cells it also holds with the
# router's upstream semantics (drop routes, only IPv4); it needs neither for this configuration.
def test_upstreams_multipath_configuration_pings_through_its_router(tmp_path):
    doc = _doc(tmp_path, MULTIPATH, {"left": ["sh", "-c", PING_PAIRS], "right": ["true"]})
    r = _run([doc, "-q"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["ping left1 right1 ok", "ping left1 right2 ok", "ping left2 right1 ok",
                                     "ping left2 right2 ok", "ping left3 right1 fail"]


def test_without_left_the_files_shell_is_the_session(tmp_path, host_namespace):
    # upstream's TaskShell: `shell` picks the interactive shell when there is no `left` (here it reads
    # its commands from stdin); bash's prompt gets upstream's `[rattan]` PROMPT_COMMAND
    for shell, expected in (("Sh", "/bin/sh|"), ("Bash", '/bin/bash|PS1="[rattan] $PS1" PROMPT_COMMAND=')):
        doc = _doc(tmp_path, PUBLIC_SERVER, {"shell": shell})
        r = subprocess.run(["ip", "netns", "exec", host_namespace, *RATTAN, "run", str(doc), "-q"],
                           input='echo "$0|$PROMPT_COMMAND"\n', capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.strip() == expected

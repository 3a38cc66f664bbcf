"""No process of a `rattan run` outlives it (root): after a SIGKILL of rattan, every process its
commands started is gone within a second; a SIGINT to rattan alone stops the run like Ctrl-C, and
the terminal's Ctrl-C (to the whole process group) still belongs to the command."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rattan.runtime import netns

pytestmark = [pytest.mark.netns]

RATTAN = [sys.executable, "-m", "rattan"]
PASS = """channel c {
    endpoints left, right
    left -> pass {} -> right
    right -> pass {} -> left
}
"""
# what each side starts: a process in the background, a server, and a shell waiting for both
SIDE = "sleep 300 & iperf3 -s -p {port} >/dev/null & wait"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[19])


def _descendants(pid: int) -> dict[int, int]:
    """Every descendant of `pid`, with its start time (to tell a reused PID)."""
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            for k in kids:
                if (s := _stat(k)) is not None:
                    out[k] = s[1]
                    todo.append(k)
    return out


def _alive(pid: int, start: int) -> bool:
    s = _stat(pid)
    return s is not None and s[1] == start and s[0] not in ("Z", "X")  # a zombie is dead


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _owned_by(pid: int) -> dict[str, int]:
    """The namespaces of the instances this rattan process recorded, by name and inode (other runs
    go on meanwhile, and may take the same instance number, so the same names, once it is free)."""
    out = {}
    for p in Path(netns.STATE_DIR, "instances").glob("*.json"):
        try:
            state = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if state.get("pid") == pid:
            for name in state["namespaces"]:
                try:
                    out[name] = os.stat(f"/run/netns/{name}").st_ino
                except OSError:
                    pass
    return out


def _existing(mine: dict[str, int]) -> set[str]:
    """Which of these namespaces still exist (`ip netns list`, then the same namespace by inode),
    and interfaces of the host (`ip link`) named after their instance."""
    listed = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    out = set()
    for name, inode in mine.items():
        try:
            if name in listed and os.stat(f"/run/netns/{name}").st_ino == inode:
                out.add(name)
        except OSError:
            pass
    links = {line.split(":")[1].strip().split("@")[0] for line in
             subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()}
    prefixes = {"rt" + n.split("-")[1] + "-" for n in mine}
    return out | {l for l in links if any(l.startswith(p) for p in prefixes)}


def _start(tmp_path: Path, main: list[str], right: str | None, **kw) -> subprocess.Popen:
    path = tmp_path / "c.rtn"
    path.write_text(PASS)
    args = [*RATTAN, "run", str(path), "-q"] + (["--right", right] if right else []) + ["--", *main]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(proc: subprocess.Popen, names: list[str], timeout: float = 20) -> dict[int, int]:
    """The descendants of the run once processes with all these names run among them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _descendants(proc.pid)
        comms = [_comm(p) for p in kids]
        if all(comms.count(n) >= names.count(n) for n in set(names)):
            return kids
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the commands did not start: {[_comm(p) for p in _descendants(proc.pid)]}")


def test_after_sigkill_no_process_of_the_run_is_alive_within_a_second(tmp_path, record_property):
    proc = _start(tmp_path, ["sh", "-c", SIDE.format(port=5202)], SIDE.format(port=5201))
    kids: dict[int, int] = {}
    mine: dict[str, int] = {}
    try:
        kids = _wait_for(proc, ["sleep", "sleep", "iperf3", "iperf3", "sh", "sh"])
        mine = _owned_by(proc.pid)
        assert len(mine) == 3, "the run's instance record and its namespaces"
        time.sleep(0.2)  # anything else they start by now counts too
        kids.update(_descendants(proc.pid))
        proc.kill()
        killed = time.monotonic()
        proc.wait(10)
        while time.monotonic() - killed < 1.0 and any(_alive(p, s) for p, s in kids.items()):
            time.sleep(0.01)
        record_property("dead_after_s", round(time.monotonic() - killed, 3))
        alive = {p: _comm(p) for p, s in kids.items() if _alive(p, s)}
        # on the old nsexec the shells died (PR_SET_PDEATHSIG) and sleep and iperf3 lived on; here
        # the last was gone 0.08-0.14 s after the SIGKILL (ten runs, a CPU hog on one core)
        assert not alive, alive
    finally:
        for p, s in kids.items():
            if _alive(p, s):
                os.kill(p, signal.SIGKILL)
        # the namespaces and veths wait for the next start, which removes them: do what it does
        netns.clean_stale()
    assert not _existing(mine)


def test_sigint_to_rattan_alone_stops_the_run(tmp_path):
    # a session of its own, as under `nohup` or a service manager: only rattan gets the signal
    proc = _start(tmp_path, ["sh", "-c", "sleep 300 & wait"], SIDE.format(port=5201), start_new_session=True)
    kids = _wait_for(proc, ["sleep", "sleep", "iperf3"])
    mine = _owned_by(proc.pid)
    assert len(mine) == 3, "the run's instance record and its namespaces"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130, proc.stderr.read()  # it was ignored before: the run went on
    assert "interrupted" in proc.stderr.read()
    assert not {p: _comm(p) for p, s in kids.items() if _alive(p, s)}
    assert not _existing(mine)  # removed by rattan itself this time


def test_ctrl_c_of_the_terminal_still_goes_to_the_command(tmp_path):
    # the whole process group gets SIGINT, as from a terminal: the command decides, here to exit 7
    proc = _start(tmp_path, ["sh", "-c", "trap 'exit 7' INT; sleep 300 & wait"], None, start_new_session=True)
    kids = _wait_for(proc, ["sleep"])
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(20) == 7, proc.stderr.read()
    assert not {p: _comm(p) for p, s in kids.items() if _alive(p, s)}


def test_the_command_keeps_its_exit_status_and_its_signal(tmp_path):
    path = tmp_path / "c.rtn"
    path.write_text(PASS)
    run = lambda *cmd: subprocess.run([*RATTAN, "run", str(path), "-q", "--", *cmd], capture_output=True,
                                      text=True, timeout=60)
    assert run("sh", "-c", "exit 3").returncode == 3
    r = run("sh", "-c", "echo $$; ip netns identify $$; ping -c 1 -W 5 $RATTAN_RIGHT_IP >/dev/null && kill -TERM $$")
    # in a PID namespace of its own, whose init is 1, with a /proc that agrees
    assert r.stdout.split()[0] == "2" and r.stdout.split()[1].endswith("-left"), r.stdout + r.stderr
    assert r.returncode == 128 + signal.SIGTERM, r.stderr  # died by SIGTERM: 143, as a shell reports it
    r = run("no-such-command")
    assert r.returncode == 127 and "no-such-command" in r.stderr


def test_the_command_gets_default_signal_dispositions(tmp_path):
    # Python ignores SIGPIPE and SIGXFSZ, and exec keeps what is ignored: a pipeline such as
    # `yes | head` would then see EPIPE errors instead of ending quietly
    path = tmp_path / "c.rtn"
    path.write_text(PASS)
    r = subprocess.run([*RATTAN, "run", str(path), "-q", "--", "sh", "-c",
                        "yes | head -n 1 >/dev/null; grep SigIgn /proc/self/status"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ignored = int(r.stdout.split()[-1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1)), r.stdout
    assert "Broken pipe" not in r.stderr, r.stderr


@pytest.mark.parametrize("network", [
    lambda: netns.ChannelNetwork(["left", "right"], "c"),
    lambda: netns.UpstreamNetwork(["left", "right"], "c", {"mode": "Isolated"}),
], ids=["rtn", "upstream"])
def test_a_network_that_fails_half_built_leaves_nothing(monkeypatch, network):
    """A failure while the namespaces are built is a NetnsError naming the instance, and removes
    what was already made (namespaces, veths, the instance's record)."""
    def broken(ep, *mode):
        raise OSError("no more veths")
    monkeypatch.setattr(netns, "_tune", broken)
    def made():  # namespaces and instance records
        names = set(os.listdir(netns.NETNS_DIR)) if os.path.isdir(netns.NETNS_DIR) else set()
        return names | set(os.listdir(os.path.join(netns.STATE_DIR, "instances")))
    before = made()
    net = network()
    with pytest.raises(netns.NetnsError, match=r"cannot build the namespaces of instance \d+: no more veths"):
        net.open()
    assert made() <= before

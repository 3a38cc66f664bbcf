"""`rattan run` on real packets (root): delay, rate, loss and policing seen by ping and iperf3;
several instances at once; nothing left behind after exit, SIGTERM or SIGKILL."""
from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runtime.conftest import SERVER_UP, check_path_delay, ping_times_ms

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "t.rtn"
    p.write_text(text)
    return str(p)


def rattan_run(path: str, *cmd: str, right: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    args = [*RATTAN, "run", path] + (["--right", right] if right else []) + ["--", *cmd]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def check_ping(out: str, path_ms: float, count: int, record_property) -> None:
    """Ping's `count` replies show a path of `path_ms` (see `check_path_delay`)."""
    rtts = ping_times_ms(out)
    assert len(rtts) == count, out
    check_path_delay(rtts, path_ms, record_property)


SYMMETRIC = """
channel c {{
    endpoints left, right
    left -> {up} -> right
    right -> {down} -> left
}}
"""


def test_exit_status_and_environment(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="pass {}", down="pass {}"))
    r = rattan_run(path, "sh", "-c", 'echo "$RATTAN_CHANNEL $RATTAN_LEFT_IP $RATTAN_RIGHT_IP"; exit 7')
    assert r.returncode == 7, r.stderr
    channel, left, right = r.stdout.split()
    assert channel == "c" and left != right and left.startswith("10.")


def test_delay_each_way_shows_in_ping(tmp_path, record_property):
    path = write(tmp_path, SYMMETRIC.format(up="delay { delay = 10ms }", down="delay { delay = 10ms }"))
    r = rattan_run(path, "sh", "-c", "ping -c 10 -i 0.1 $RATTAN_RIGHT_IP")
    assert r.returncode == 0, r.stdout + r.stderr
    check_ping(r.stdout, 20.0, 10, record_property)


def test_rate_and_delay_with_iperf3_and_ping(tmp_path, record_property):
    link = "bw { rate = 50Mbps, queue = droptail { bytes = 250KB } } -> delay { delay = 20ms }"
    path = write(tmp_path, SYMMETRIC.format(up=link, down=link))
    r = rattan_run(path, "sh", "-c", SERVER_UP + "ping -c 10 -i 0.1 $RATTAN_RIGHT_IP && iperf3 -c $RATTAN_RIGHT_IP -t 6 -J",
                   right="iperf3 -s -1 >/dev/null")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    head, _, js = r.stdout.partition("{")
    check_ping(head, 40.0, 10, record_property)
    goodput = json.loads("{" + js)["end"]["sum_received"]["bits_per_second"]
    record_property("goodput_bps", goodput)
    # never above the rate; with one core hogged, 31.9-46.9 Mbit/s over 10 runs (idle: 46.7), the
    # sender and receiver short of CPU
    assert 20e6 <= goodput <= 50e6


def test_loss_with_iperf3_udp(tmp_path, record_property):
    path = write(tmp_path, SYMMETRIC.format(up="loss { rate = 1% }", down="pass {}"))
    r = rattan_run(path, "sh", "-c", SERVER_UP + "iperf3 -c $RATTAN_RIGHT_IP -u -b 40M -l 1200 -t 5 -J",
                   right="iperf3 -s -1 >/dev/null")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    end = json.loads(r.stdout)["end"]["sum"]
    arrived, _, dropped = (int(x) for x in re.search(r"^\s+loss_1\s+(\d+)\s+(\d+)\s+(\d+)", r.stderr, re.M).groups())
    record_property("packets", end["packets"])
    record_property("cell_lost_percent", 100 * dropped / arrived)
    record_property("lost_percent", end["lost_percent"])
    assert end["packets"] > 15_000
    # The cell drops 1 % of what reaches it (0.873 % in every run: its generator is seeded; over
    # ~20,000 packets one standard deviation of a 1 % draw is 0.07 %).
    assert 0.7 <= 100 * dropped / arrived <= 1.3, r.stderr
    # The receiver misses each of those. It may miss more: with one core hogged and other tests
    # running, iperf3 counted 0.87-7.4 % lost over 10 runs (the engine's rings and iperf3's socket
    # overflowing while their threads waited for a CPU); that is the machine's figure, not the cell's.
    assert end["lost_packets"] >= dropped - 5, (end, dropped)


def test_policer_holds_tcp_to_its_rate(tmp_path, record_property):
    up = "token_bucket { rate = 2Mbps, burst = 64KiB, limit = 0B } -> delay { delay = 10ms }"
    path = write(tmp_path, SYMMETRIC.format(up=up, down="delay { delay = 10ms }"))
    r = rattan_run(path, "sh", "-c", SERVER_UP + "iperf3 -c $RATTAN_RIGHT_IP -C cubic -t 12 -J",
                   right="iperf3 -s -1 >/dev/null")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    intervals = json.loads(r.stdout)["intervals"]
    after_start = [i["sum"]["bits_per_second"] for i in intervals[3:]]
    rate = sum(after_start) / len(after_start)
    record_property("rate_bps", rate)
    # 1.84-1.97 Mbit/s over 10 runs with one core hogged
    assert 1.5e6 < rate <= 2.0e6 * 1.01


def _namespaces() -> set[str]:
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())


def _index_of(pid: int) -> int | None:
    """The instance index that run `pid` recorded (other runs may be going on at the same time)."""
    d = Path("/run/rattan/instances")
    for p in d.glob("*.json") if d.is_dir() else ():
        try:
            if json.loads(p.read_text())["pid"] == pid:
                return int(p.stem)
        except (OSError, ValueError, KeyError):
            continue
    return None


def _left_by(index: int, pid: int) -> set[str]:
    """Instance `index`'s namespaces (and "record" for its registry entry) that run `pid` left behind.
    Once they are removed, another run going on at the same time may take the index; what its live
    owner recorded is not this run's."""
    try:
        with open(f"/run/rattan/instances/{index}.json") as f:
            owner = json.load(f)["pid"]
    except (OSError, ValueError, KeyError):
        owner = None
    if owner is not None and owner != pid:
        try:
            os.kill(owner, 0)
            return set()
        except OSError:
            pass
    left = {n for n in _namespaces() if n.startswith(f"rattan-{index}-")}
    return left | ({"record"} if owner is not None else set())


def _start_sleeping(path: str) -> tuple[subprocess.Popen, int]:
    """A run whose command (`sleep 60`) is running in its left namespace, and the run's index."""
    proc = subprocess.Popen([*RATTAN, "run", path, "--", "sleep", "60"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30  # a start takes about a second; far longer on a loaded machine
    while time.monotonic() < deadline:
        index = _index_of(proc.pid)
        if index is not None:
            netns = _inode(f"/run/netns/rattan-{index}-left")
            if netns and any(_comm(p) == "sleep" for p in os.listdir("/proc")
                             if p.isdigit() and _inode(f"/proc/{p}/ns/net") == netns):
                return proc, index
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the instance did not start")


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _comm(pid: str) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def test_sigterm_removes_everything(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="pass {}", down="pass {}"))
    proc, index = _start_sleeping(path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 128 + signal.SIGTERM
    assert not _left_by(index, proc.pid)


def test_after_sigkill_the_next_start_removes_what_was_left(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="pass {}", down="pass {}"))
    proc, index = _start_sleeping(path)
    netns_inode = os.stat(f"/run/netns/rattan-{index}-left").st_ino
    proc.kill()
    proc.wait(10)
    assert any(n.startswith(f"rattan-{index}-") for n in _namespaces())  # left behind by the dead run
    r = rattan_run(path, "true")
    assert r.returncode == 0, r.stderr
    assert not _left_by(index, proc.pid)
    # the dead run's command is gone too: the start SIGKILLs it without waiting, and a killed
    # process may take a moment to exit on a busy machine (a CPU hog and other tests ran here)
    deadline = time.monotonic() + 5
    while (inside := [p for p in os.listdir("/proc") if p.isdigit() and _inode(f"/proc/{p}/ns/net") == netns_inode]) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not inside, [_comm(p) for p in inside]


def test_two_runs_at_once_do_not_clash(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="delay { delay = 5ms }", down="pass {}"))
    args = [*RATTAN, "run", path, "--", "sh", "-c", "echo $RATTAN_LEFT_IP; ping -c 20 -i 0.05 $RATTAN_RIGHT_IP"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    addresses = [o[0].split()[0] for o in outs]
    assert addresses[0] != addresses[1]
    assert all(" 0% packet loss" in o[0] for o in outs)


def test_rattan_link_from_flags(tmp_path, record_property):
    r = subprocess.run([*RATTAN, "link", "--uplink-delay", "15ms", "--downlink-delay", "5ms", "--uplink-rate",
                        "100Mbps", "--", "sh", "-c", "ping -c 10 -i 0.1 $RATTAN_RIGHT_IP"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    check_ping(r.stdout, 20.0, 10, record_property)


def _ping_rtts(netns: str, dst: str, count: int = 200) -> list[float]:
    out = subprocess.run(["ip", "netns", "exec", netns, "ping", "-n", "-c", str(count), "-i", "0.005", dst],
                         capture_output=True, text=True, timeout=30).stdout
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def test_pass_through_adds_little_to_the_kernels_own_forwarding(record_property):
    """Ping through `pass` cells, then through a kernel bridge of the same veths in the same
    namespaces (the engine stopped): at the median rattan adds less than 0.5 ms, which a 1 ms timer
    in the forwarding path would exceed. The precise figure depends on the machine's load, so it is
    a benchmark's: `benchmarks/real_forwarding.py` prints pass-through's added RTT against the
    kernel's forwarding measured in the same run ("pass-through added RTT", its goal 0.1 ms)."""
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.netns import netlink
    from rattan.runtime.run import ChannelRun
    comp = compile_text(SYMMETRIC.format(up="pass {}", down="pass {}"), "pass.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    with ChannelRun(plan, choose_channel(plan, None)) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        rattan = _ping_rtts(left.netns, right.address)
        live.engine.stop()
        with netlink(live.net.engine_netns) as ip:
            ip.link("add", ifname="br0", kind="bridge")
            bridge = ip.link_lookup(ifname="br0")[0]
            for ep in (left, right):
                ip.link("set", index=ip.link_lookup(ifname=ep.engine_ifname)[0], master=bridge)
            ip.link("set", index=bridge, state="up")
        kernel = _ping_rtts(left.netns, right.address)
    assert len(rattan) == len(kernel) == 200
    record_property("added_median_ms", statistics.median(rattan) - statistics.median(kernel))
    record_property("added_mean_ms", statistics.mean(rattan) - statistics.mean(kernel))
    # -0.006 to 0.122 ms over 10 runs with one core hogged; the mean, which one reply that waited
    # for a CPU moves, added up to 2 ms, and is not asserted
    assert statistics.median(rattan) - statistics.median(kernel) < 0.5


def test_lateness_is_counted_for_every_frame_and_warned_over_the_threshold(tmp_path):
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.run import ChannelRun
    comp = compile_text(SYMMETRIC.format(up="delay { delay = 2ms }", down="pass {}"), "late.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    with ChannelRun(plan, choose_channel(plan, None)) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        assert len(_ping_rtts(left.netns, right.address, count=50)) == 50
        late = live.lateness()
    # 50 echo requests and 50 replies, and nothing else (no ARP, no IPv6 in rattan's namespaces)
    assert late.sent == 100 and sum(late.hist) == late.sent
    assert late.sum_ns <= late.max_ns * late.sent
    # a threshold no frame can meet: every one is late, and the run says so
    path = write(tmp_path, SYMMETRIC.format(up="pass {}", down="pass {}"))
    r = subprocess.run([*RATTAN, "run", path, "--late-threshold", "1ns", "--", "sh", "-c",
                        "ping -c 5 -i 0.05 $RATTAN_RIGHT_IP"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"warning: 10 of 10 frames \(100%\) left more than 1e-06 ms later than planned", r.stderr), r.stderr


def test_frames_the_engine_never_saw_are_counted_not_lost_silently():
    """Plain mode: a frame larger than the ring's slots (jumbo MTU on both veth ends) cannot be
    forwarded whole: it is counted at the endpoint as dropped, reason `ring`, with in = out + dropped
    + queued. (GSO mode's buffers hold 64 KiB: such a frame passes.)"""
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.netns import netlink
    from rattan.runtime.run import ChannelRun
    comp = compile_text(SYMMETRIC.format(up="pass {}", down="pass {}"), "ring.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    plan["run"]["offload"] = "plain"
    with ChannelRun(plan, choose_channel(plan, None)) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        for ns, ifname in ((left.netns, left.ifname), (live.net.engine_netns, left.engine_ifname)):
            with netlink(ns) as ip:
                ip.link("set", index=ip.link_lookup(ifname=ifname)[0], mtu=4000)
        big = subprocess.run(["ip", "netns", "exec", left.netns, "ping", "-n", "-c", "3", "-i", "0.05", "-W", "1",
                              "-M", "do", "-s", "3000", right.address], capture_output=True, text=True)
        small = _ping_rtts(left.netns, right.address, count=5)
        c = live.engine.counters(live.nodes["left"])
    assert " 100% packet loss" in big.stdout and len(small) == 5
    assert c.dropped_by_reason == {"ring": 3}
    assert c.in_packets == c.out_packets + c.dropped_packets + c.queued_packets


def _thread_nices() -> dict[int, int]:
    """This process's threads and their nice values, as the kernel reports them (/proc, field 19)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            out[int(tid)] = int(f.read().rsplit(")", 1)[1].split()[16])
    return out


@pytest.mark.parametrize("nice", [-5, 0, 3])
def test_the_forwarding_thread_takes_its_nice_value_and_nothing_else_does(nice):
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.run import ChannelRun
    comp = compile_text(SYMMETRIC.format(up="pass {}", down="pass {}"), "nice.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    before = _thread_nices()
    with ChannelRun(plan, choose_channel(plan, None), engine_nice=nice) as live:
        during = _thread_nices()
        assert live.engine.nice == nice
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        assert len(_ping_rtts(left.netns, right.address, count=5)) == 5  # it forwards at that value
    new = {t: n for t, n in during.items() if t not in before}
    assert list(new.values()) == [nice]  # the engine thread, and only it
    assert all(during[t] == n for t, n in before.items())  # the caller's threads (and its commands) keep theirs


def test_without_cap_sys_nice_the_run_says_its_engine_was_not_raised(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="pass {}", down="pass {}"))
    r = subprocess.run(["setpriv", "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice", "--",
                        *RATTAN, "run", path, "--", "sh", "-c", "ping -c 3 -i 0.05 -q $RATTAN_RIGHT_IP"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "warning: the engine thread runs at nice 0, not -5 (raising a priority needs CAP_SYS_NICE)" in r.stderr


def test_engine_nice_out_of_range_is_a_usage_error(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="pass {}", down="pass {}"))
    r = subprocess.run([*RATTAN, "run", path, "--engine-nice", "-21", "--", "true"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--engine-nice: -21 is outside -20..19" in r.stderr

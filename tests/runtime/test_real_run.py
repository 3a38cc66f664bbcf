"""`rattan run` on real packets (root): delay, rate, loss and policing seen by ping and iperf3;
several instances at once; nothing left behind after exit, SIGTERM or SIGKILL."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "t.rtn"
    p.write_text(text)
    return str(p)


def rattan_run(path: str, *cmd: str, right: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    args = [*RATTAN, "run", path] + (["--right", right] if right else []) + ["--", *cmd]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def ping_avg_ms(out: str) -> float:
    m = re.search(r"= [\d.]+/([\d.]+)/", out)
    assert m, out
    return float(m.group(1))


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


def test_delay_each_way_shows_in_ping(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="delay { delay = 10ms }", down="delay { delay = 10ms }"))
    r = rattan_run(path, "sh", "-c", "ping -c 10 -i 0.1 $RATTAN_RIGHT_IP")
    assert r.returncode == 0, r.stdout + r.stderr
    assert 20.0 <= ping_avg_ms(r.stdout) < 21.0


def test_rate_and_delay_with_iperf3_and_ping(tmp_path):
    link = "bw { rate = 50Mbps, queue = droptail { bytes = 250KB } } -> delay { delay = 20ms }"
    path = write(tmp_path, SYMMETRIC.format(up=link, down=link))
    r = rattan_run(path, "sh", "-c", "ping -c 10 -i 0.1 $RATTAN_RIGHT_IP && iperf3 -c $RATTAN_RIGHT_IP -t 6 -J",
                   right="iperf3 -s -1 >/dev/null")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    head, _, js = r.stdout.partition("{")
    assert 39.0 <= ping_avg_ms(head) <= 41.0
    goodput = json.loads("{" + js)["end"]["sum_received"]["bits_per_second"]
    assert 45e6 <= goodput <= 50e6


def test_loss_with_iperf3_udp(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="loss { rate = 1% }", down="pass {}"))
    r = rattan_run(path, "sh", "-c", "iperf3 -c $RATTAN_RIGHT_IP -u -b 40M -l 1200 -t 5 -J",
                   right="iperf3 -s -1 >/dev/null")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    end = json.loads(r.stdout)["end"]["sum"]
    assert end["packets"] > 15_000
    assert 0.7 <= end["lost_percent"] <= 1.3


def test_policer_holds_tcp_to_its_rate(tmp_path):
    up = "token_bucket { rate = 2Mbps, burst = 64KiB, limit = 0B } -> delay { delay = 10ms }"
    path = write(tmp_path, SYMMETRIC.format(up=up, down="delay { delay = 10ms }"))
    r = rattan_run(path, "sh", "-c", "iperf3 -c $RATTAN_RIGHT_IP -C cubic -t 12 -J",
                   right="iperf3 -s -1 >/dev/null")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    intervals = json.loads(r.stdout)["intervals"]
    after_start = [i["sum"]["bits_per_second"] for i in intervals[3:]]
    rate = sum(after_start) / len(after_start)
    assert 1.5e6 < rate <= 2.0e6 * 1.01


def _instances() -> set[int]:
    d = Path("/run/rattan/instances")
    return {int(p.stem) for p in d.glob("*.json")} if d.is_dir() else set()


def _namespaces() -> set[str]:
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())


def _start_sleeping(path: str) -> tuple[subprocess.Popen, int]:
    before = _instances()
    proc = subprocess.Popen([*RATTAN, "run", path, "--", "sleep", "60"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    for _ in range(200):
        new = _instances() - before
        if new and any(n.startswith(f"rattan-{min(new)}-left") for n in _namespaces()):
            return proc, min(new)
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the instance did not start")


def test_sigterm_removes_everything(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="pass {}", down="pass {}"))
    proc, index = _start_sleeping(path)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 128 + signal.SIGTERM
    assert not {n for n in _namespaces() if n.startswith(f"rattan-{index}-")}
    assert index not in _instances()


def test_after_sigkill_the_next_start_removes_what_was_left(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="pass {}", down="pass {}"))
    proc, index = _start_sleeping(path)
    netns_inode = os.stat(f"/run/netns/rattan-{index}-left").st_ino
    proc.kill()
    proc.wait(10)
    assert any(n.startswith(f"rattan-{index}-") for n in _namespaces())  # left behind by the dead run
    r = rattan_run(path, "true")
    assert r.returncode == 0, r.stderr
    assert not {n for n in _namespaces() if n.startswith(f"rattan-{index}-")}
    assert index not in _instances()
    inside = [p for p in os.listdir("/proc") if p.isdigit() and _netns_inode(p) == netns_inode]
    assert not inside  # the dead run's command is gone too


def _netns_inode(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def test_two_runs_at_once_do_not_clash(tmp_path):
    path = write(tmp_path, SYMMETRIC.format(up="delay { delay = 5ms }", down="pass {}"))
    args = [*RATTAN, "run", path, "--", "sh", "-c", "echo $RATTAN_LEFT_IP; ping -c 20 -i 0.05 $RATTAN_RIGHT_IP"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    addresses = [o[0].split()[0] for o in outs]
    assert addresses[0] != addresses[1]
    assert all(" 0% packet loss" in o[0] for o in outs)


def test_rattan_link_from_flags(tmp_path):
    r = subprocess.run([*RATTAN, "link", "--uplink-delay", "15ms", "--downlink-delay", "5ms", "--uplink-rate",
                        "100Mbps", "--", "sh", "-c", "ping -c 10 -i 0.1 $RATTAN_RIGHT_IP"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 20.0 <= ping_avg_ms(r.stdout) < 21.0


def _ping_rtts(netns: str, dst: str, count: int = 200) -> list[float]:
    out = subprocess.run(["ip", "netns", "exec", netns, "ping", "-n", "-c", str(count), "-i", "0.005", dst],
                         capture_output=True, text=True, timeout=30).stdout
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def test_pass_through_adds_under_0_2_ms_to_the_kernels_own_forwarding():
    """Ping through `pass` cells, then through a kernel bridge of the same veths in the same
    namespaces (the engine stopped): rattan adds less than 0.2 ms, on average and at the median."""
    import statistics
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
    assert statistics.median(rattan) - statistics.median(kernel) < 0.2
    assert statistics.mean(rattan) - statistics.mean(kernel) < 0.2


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
    """A frame larger than the ring's slots (jumbo MTU on both veth ends) cannot be forwarded whole:
    it is counted at the endpoint as dropped, reason `ring`, with in = out + dropped + queued."""
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.netns import netlink
    from rattan.runtime.run import ChannelRun
    comp = compile_text(SYMMETRIC.format(up="pass {}", down="pass {}"), "ring.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
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

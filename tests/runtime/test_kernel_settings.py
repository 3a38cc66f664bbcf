"""Kernel settings of real runs (root): `--app-cpus` places the commands (read back from
/proc/PID/status), `--rps-cpus` sets receive packet steering on the endpoint veths (read back
inside their namespaces), a warm network's reset clears the steering a run set, and bad values are
refused before anything is built."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

RATTAN = [sys.executable, "-m", "rattan"]
PATH = """
channel c {
    endpoints left, right
    left -> pass {} -> right
    right -> pass {} -> left
}
"""
CPUS = sorted(os.sched_getaffinity(0))
two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs to tell placements apart")
ALLOWED = "grep Cpus_allowed_list /proc/self/status"


def _file(tmp_path) -> str:
    path = tmp_path / "pass.rtn"
    path.write_text(PATH)
    return str(path)


def _allowed(text: str) -> list[str]:
    return re.findall(r"^(?:\[\S+\] )?Cpus_allowed_list:\s*(\S+)$", text, re.M)


def _rattan(*args: str, prefix: list[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *RATTAN, *args], capture_output=True, text=True, timeout=120)


@two_cpus
def test_app_cpus_places_both_commands_and_what_they_start(tmp_path):
    cpu = str(CPUS[-1])
    r = _rattan("run", _file(tmp_path), "-q", "--app-cpus", cpu, "--right", ALLOWED,
                "--", "sh", "-c", f"{ALLOWED}; sh -c '{ALLOWED}'")
    assert r.returncode == 0, r.stderr
    assert _allowed(r.stdout) == [cpu, cpu, cpu], r.stdout  # right, left, and a child of left


@two_cpus
def test_app_cpus_auto_keeps_commands_off_the_engine_s_cpu(tmp_path):
    """rattan held to one CPU (so its engine thread is): the commands run on the others by default,
    and on rattan's own with `inherit`."""
    engine = str(CPUS[-1])
    rest = ",".join(map(str, CPUS[:-1]))
    held = ["taskset", "-c", engine]
    auto = _rattan("run", _file(tmp_path), "-q", "--", "sh", "-c", ALLOWED, prefix=held)
    assert auto.returncode == 0, auto.stderr
    from rattan.runtime.cpus import format_list
    assert _allowed(auto.stdout) == [format_list(map(int, rest.split(",")))], auto.stdout
    inherit = _rattan("run", _file(tmp_path), "-q", "--app-cpus", "inherit", "--", "sh", "-c", ALLOWED, prefix=held)
    assert _allowed(inherit.stdout) == [engine], inherit.stdout
    free = _rattan("run", _file(tmp_path), "-q", "--", "sh", "-c", ALLOWED)  # rattan not held: nor are they
    assert _allowed(free.stdout) == [format_list(CPUS)], free.stdout


def _rps(netns_name: str, ifname: str) -> str:
    r = subprocess.run(["ip", "netns", "exec", netns_name, "cat", f"/sys/class/net/{ifname}/queues/rx-0/rps_cpus"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_rps_cpus_steers_each_endpoint_veth_and_is_off_by_default(tmp_path):
    import rattan
    from rattan.runtime import netns
    from rattan.runtime.cpus import to_mask
    cpu = CPUS[-1]
    with rattan.run(_file(tmp_path), rps_cpus=str(cpu)) as run:
        net = run.live.instances[0].net
        for ep in net.endpoints.values():
            assert int(_rps(ep.netns, ep.ifname), 16) == 1 << cpu  # read by another sysfs than ours
            assert netns.rps_cpus(ep.netns, ep.ifname) == {cpu}
            assert netns.rps_cpus(net.engine_netns, ep.engine_ifname) == set()  # the engine's side: untouched
        assert run.exec("left", ["ping", "-c", "3", "-i", "0.05", "-W", "2",
                                 net.endpoints["right"].address]).ok  # traffic still flows
    with rattan.run(_file(tmp_path)) as run:
        for ep in run.live.instances[0].net.endpoints.values():
            assert int(_rps(ep.netns, ep.ifname), 16) == 0
    assert to_mask({cpu}) == f"{1 << cpu:08x}"


def test_a_warm_reset_clears_the_steering_a_run_set():
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime import netns
    from rattan.runtime.channel import choose_channel
    from rattan.runtime.run import LiveRun
    from rattan.runtime.warm import Pool
    comp = compile_text(PATH, "pass.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    ch = choose_channel(plan, None)
    pool = Pool(background=False)
    try:
        net = pool.acquire(plan, ch)
        with LiveRun(plan, [ch], networks=[net], rps_cpus=str(CPUS[0])):
            assert all(netns.rps_cpus(ep.netns, ep.ifname) == {CPUS[0]} for ep in net.endpoints.values())
        pool.release(net)
        again = pool.acquire(plan, ch)
        assert again is net
        assert all(netns.rps_cpus(ep.netns, ep.ifname) == set() for ep in again.endpoints.values())
        pool.release(again)
    finally:
        pool.close()


def test_library_spawn_takes_app_cpus(tmp_path):
    import rattan
    with rattan.run(_file(tmp_path), app_cpus=str(CPUS[0])) as run:
        r = run.exec("right", ["sh", "-c", ALLOWED])
    assert _allowed(r.stdout) == [str(CPUS[0])], r.stdout


def test_bad_values_are_refused_before_anything_is_built(tmp_path):
    import rattan
    from rattan import RunError
    offline = str(max(CPUS) + 64)
    for flag, value, says in (("--app-cpus", offline, f"CPU {offline} is not online"),
                              ("--rps-cpus", "1-0", "runs backwards"),
                              ("--rps-cpus", "inherit", "not a CPU number"),  # app-cpus' word, not rps'
                              ("--app-cpus", "off", "not a CPU number")):
        r = _rattan("run", _file(tmp_path), flag, value, "--", "true")
        # argparse's usage error: refused while the command line is read
        assert r.returncode == 2 and "usage:" in r.stderr and says in r.stderr and flag in r.stderr, \
            (flag, value, r.stderr)
    r = _rattan("link", "--app-cpus", "x", "--", "true")
    assert r.returncode == 2 and "--app-cpus `x`" in r.stderr, r.stderr
    with pytest.raises(RunError, match="is not online"):
        rattan.run(_file(tmp_path), app_cpus=offline)

"""CPU lists and masks of real runs (rattan.runtime.cpus): what taskset and sysfs write."""
from __future__ import annotations

import os

import pytest

from rattan.runtime import cpus


def test_masks_are_sysfs_s_32_bit_groups():
    assert cpus.to_mask(set()) == "00000000"
    assert cpus.to_mask({0, 1}) == "00000003"
    assert cpus.to_mask({33}) == "00000002,00000000"
    assert cpus.from_mask("00000002,00000001") == {0, 33}
    assert cpus.from_mask(cpus.to_mask({5, 40, 64})) == {5, 40, 64}


def test_lists_read_and_write_as_taskset_s(monkeypatch):
    monkeypatch.setattr(cpus, "online", lambda: frozenset(range(8)))
    assert cpus.parse_list("0,2-4, 7") == {0, 2, 3, 4, 7}
    assert cpus.format_list({0, 2, 3, 4, 7}) == "0,2-4,7"
    for bad, says in (("4-2", "runs backwards"), ("x", "not a CPU number"), ("", "not a CPU number"),
                      ("9", r"CPU 9 is not online here \(online: 0-7\)")):
        with pytest.raises(cpus.CpuListError, match=says):
            cpus.parse_list(bad, "--app-cpus")


def test_auto_is_the_cpus_the_engine_is_not_held_to(monkeypatch):
    monkeypatch.setattr(cpus, "online", lambda: frozenset(range(4)))
    monkeypatch.setattr(cpus, "available", lambda: frozenset({3}))
    assert cpus.app_cpus("auto") == cpus.rps_cpus("auto") == {0, 1, 2}
    assert cpus.app_cpus("inherit") is None and cpus.rps_cpus("off") is None
    assert cpus.app_cpus("1") == {1}
    monkeypatch.setattr(cpus, "available", lambda: frozenset(range(4)))  # rattan not held: nor is anything
    assert cpus.app_cpus("auto") is None and cpus.rps_cpus("auto") is None


def test_auto_keeps_off_the_cores_the_engine_threads_are_pinned_to(monkeypatch):
    """With more than one engine thread (--cores), `auto` is the cores they are not pinned to (the
    last N usable ones, rattan.runtime.cores.pinned); one thread keeps rattan's own affinity."""
    monkeypatch.setattr(cpus, "online", lambda: frozenset(range(4)))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert cpus.engine_cpus(2) == {2, 3}
    assert cpus.app_cpus("auto", 2) == cpus.rps_cpus("auto", 2) == {0, 1}
    assert cpus.app_cpus("auto", 3) == {0}
    assert cpus.app_cpus("auto", 4) is None  # every core has a thread: nowhere else to go
    assert cpus.app_cpus("auto", 1) is None  # one thread, unpinned, rattan not held
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1, 2, 3})  # taskset -c 1-3 rattan run
    assert cpus.app_cpus("auto", 2) == {0, 1}  # pinned to 2 and 3 (usable: 1-3)
    assert cpus.app_cpus("auto", 1) == {0}


def test_a_run_on_several_threads_puts_its_commands_off_their_cores(monkeypatch):
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.run import LiveRun
    monkeypatch.setattr(cpus, "online", lambda: frozenset(range(4)))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    comp = compile_text("channel c {\n  endpoints a, b\n  a -> b\n  b -> a\n}\n", "<t>.rtn")
    plan = build_plan(comp.program, comp.sources, default_registry())
    ch = plan["channels"][0]
    run = LiveRun(plan, [ch, ch], cores=2)  # not started: nothing is built
    assert run.threads == 2 and run.app_cpus == {0, 1}
    assert LiveRun(plan, [ch, ch, ch], app_cpus="inherit").app_cpus is None
    assert LiveRun(plan, [ch], cores=1).app_cpus is None  # one unpinned thread, rattan not held

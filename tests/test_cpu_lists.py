"""CPU lists and masks of real runs (rattan.runtime.cpus): what taskset and sysfs write."""
from __future__ import annotations

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

"""CPU sets of a real run, as the kernel writes them: lists ("0-3,6") for affinity, hex masks for
sysfs (receive packet steering), and the CPUs this process may use."""
from __future__ import annotations

import os
import re

from .cores import pinned


class CpuListError(ValueError):
    """A CPU list that does not parse or names a CPU this machine does not offer; says which."""


def available() -> frozenset[int]:
    """The CPUs this process may run on."""
    return frozenset(os.sched_getaffinity(0))


def online() -> frozenset[int]:
    """The machine's online CPUs (what a command may be moved to, whatever rattan's own affinity)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            return _ranges(f.read().strip())
    except (OSError, ValueError):
        return frozenset(range(os.cpu_count() or 1))


def _ranges(text: str) -> frozenset[int]:
    cpus: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(cpus)


def engine_cpus(threads: int = 1) -> frozenset[int] | None:
    """The CPUs a run's `threads` engine threads are held to, when fewer than all (None: they may
    run on any). More than one are pinned, a core each (rattan.runtime.cores.pinned: `--cores`);
    one takes rattan's own affinity (`taskset -c 1 rattan run ...` holds it to CPU 1)."""
    mine = frozenset(pinned(threads) or available())
    return mine if mine < online() else None


def others(threads: int = 1) -> frozenset[int] | None:
    """The online CPUs the engine threads are not held to; None when they may run on any (or hold
    them all)."""
    held = engine_cpus(threads)
    rest = online() - held if held is not None else frozenset()
    return rest or None


# The settings of `--app-cpus` and `--rps-cpus` besides a CPU list. `auto`: the CPUs the engine is
# not held to, when it is held to some (else as `inherit` / `off`). Measured in
# benchmarks/kernel_settings.py, three runs (docs/running.md): with the engine held to one of two
# cores, the applications on the other gave the same TCP (0.91-1.13x of the engine unheld) as on
# the engine's own core, and more 64-byte UDP (1.27-2.52x against 0.81-1.43x), so `auto` moves
# them; RPS on the endpoint veths gained TCP (1.09-1.43x) but lost 64-byte UDP (0.63-0.86x), and
# nothing with the engine unheld (0.94-1.01x TCP), so it is off unless asked for.
APP_CPUS_DEFAULT = "auto"
RPS_CPUS_DEFAULT = "off"


def app_cpus(setting: str, threads: int = 1) -> frozenset[int] | None:
    """Where the applications run for an `--app-cpus` setting: auto (off the cores of the run's
    `threads` engine threads), inherit (rattan's own affinity: None) or a CPU list."""
    if setting == "inherit":
        return None
    if setting == "auto":
        return others(threads)
    return parse_list(setting, "--app-cpus")


def rps_cpus(setting: str, threads: int = 1) -> frozenset[int] | None:
    """The CPUs the endpoint veths steer what they receive to, for an `--rps-cpus` setting: off
    (None: no steering), auto (as for app_cpus) or a CPU list."""
    if setting == "off":
        return None
    if setting == "auto":
        return others(threads)
    return parse_list(setting, "--rps-cpus")


def parse_list(text: str, what: str = "CPU list") -> frozenset[int]:
    """A CPU list as taskset -c and /proc/PID/status write it ("0", "0,2", "0-3,6"); every CPU must
    be online."""
    cpus: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise CpuListError(f"{what} `{text}`: `{part.strip()}` is not a CPU number or range "
                               "(write e.g. 1, 0,2 or 0-3)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise CpuListError(f"{what} `{text}`: the range {lo}-{hi} runs backwards")
        cpus.update(range(lo, hi + 1))
    unknown = sorted(cpus - online())
    if unknown:
        raise CpuListError(f"{what} `{text}`: CPU {', '.join(map(str, unknown))} is not online here "
                           f"(online: {format_list(online())})")
    return frozenset(cpus)


def format_list(cpus) -> str:
    """A CPU set as a list with ranges ("0-2,5")."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def to_mask(cpus) -> str:
    """A CPU set as sysfs writes a mask: hex, a comma between 32-bit groups ("00000000": none)."""
    value = sum(1 << c for c in cpus)
    groups = []
    while True:
        groups.append(f"{value & 0xFFFFFFFF:08x}")
        value >>= 32
        if not value:
            break
    return ",".join(reversed(groups))


def from_mask(text: str) -> frozenset[int]:
    """The CPU set of a sysfs mask ("00000003", "0,00000001")."""
    value = int(text.strip().replace(",", "") or "0", 16)
    return frozenset(i for i in range(value.bit_length()) if value >> i & 1)

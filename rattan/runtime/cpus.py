"""CPU sets of a real run, as the kernel writes them: lists ("0-3,6") for affinity, hex masks for
sysfs (receive packet steering), and the CPUs this process may use."""
from __future__ import annotations

import os
import re


class CpuListError(ValueError):
    """A CPU list that does not parse or names a CPU this machine does not offer; says which."""


def available() -> frozenset[int]:
    """The CPUs this process may run on."""
    return frozenset(os.sched_getaffinity(0))


def parse_list(text: str, what: str = "CPU list") -> frozenset[int]:
    """A CPU list as taskset -c and /proc/PID/status write it ("0", "0,2", "0-3,6"); every CPU must
    be one this process may use, and the list must not be empty."""
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
    unknown = sorted(cpus - available())
    if unknown:
        raise CpuListError(f"{what} `{text}`: CPU {', '.join(map(str, unknown))} is not one this process may "
                           f"use ({format_list(available())})")
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

"""How many engine threads a run gets (`--cores`), and which cores they are pinned to."""
from __future__ import annotations

import os


class CoresError(ValueError):
    """A `--cores` value this machine cannot give; the message says what it can."""


def usable_cores() -> list[int]:
    """The cores this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def check(n: int) -> int:
    """`n` if it is a thread count this machine can pin (1 to its usable cores)."""
    usable = usable_cores()
    if n < 1:
        raise CoresError(f"{n} engine threads: give at least 1")
    if n > len(usable):
        raise CoresError(f"{n} engine threads: this process may run on {len(usable)} "
                         f"core{'s' if len(usable) != 1 else ''} ({_spell(usable)}), one thread a core")
    return n


def choose(asked: int | None, channels: int, real: bool) -> int:
    """The thread count: `asked` (checked), else, for a real run, one per channel instance up to
    every usable core but one (the applications on the paths need a core), else, in virtual time,
    every usable core (the engine uses min(threads, shards): a channel is one shard unless the
    plan's cuts split it into regions, or its directions are separate paths)."""
    if asked is not None:
        return check(asked)
    usable = len(usable_cores())
    return max(1, min(channels, usable - 1)) if real else usable


def pinned(n: int) -> list[int] | None:
    """The cores `n` engine threads are pinned to, one each: the last `n` usable cores (the first
    ones are where the applications are likelier to be); None for one thread, left as the engine
    always ran it: unpinned (rattan's own affinity)."""
    return usable_cores()[-n:] if n > 1 else None


def apply(engine, n: int) -> None:
    """Give the engine `n` threads, pinned as `pinned` says."""
    cores = pinned(n)
    if cores:
        engine.set_threads(n, cores)


def _spell(cores: list[int]) -> str:
    """0-3,6 for [0, 1, 2, 3, 6], as /proc's Cpus_allowed_list."""
    runs, start = [], None
    for i, c in enumerate(cores):
        if start is None:
            start = c
        if i + 1 == len(cores) or cores[i + 1] != c + 1:
            runs.append(str(start) if start == c else f"{start}-{c}")
            start = None
    return ",".join(runs)

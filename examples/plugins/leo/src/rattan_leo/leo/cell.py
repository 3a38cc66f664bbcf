"""`leo`: a LEO satellite path, whose delay changes at every reconfiguration and which drops packets
for a moment while it reconfigures.

Starlink's scheduler reassigns satellites on a global 15 s schedule; at each reassignment the path's
latency steps to a new level and packets are lost for tens of milliseconds. The cell models that
with two built-in cells: an `outage` (`gap`) and a `delay` (`path`). It ticks once per `period`: at
each reconfiguration it draws the next delay, and the outage's own periodic schedule (down for
`outage`, up for the rest of the period) takes the path down and brings it back to the ns, without
a tick at the end of the window.

A Python cell never sees a packet (rattan.pycell; docs/cells-python.md in rattan).
"""
from __future__ import annotations

import random
from typing import Iterator

from rattan.pycell import PythonCell


def delays(config: dict, seed: int) -> Iterator[int]:
    """The delays (ns) the reconfigurations draw, in order, for a run with this seed: the same in
    `rattan sim` and `rattan run`, so a test of a real run knows what to expect."""
    rng = random.Random(seed)
    while True:
        yield rng.randint(config["min_delay"], config["max_delay"])


class LeoCell(PythonCell):
    """`gap` (outage) then `path` (delay), reconfigured at every tick."""

    def inner(self, config):
        if config["min_delay"] > config["max_delay"]:
            raise ValueError(f"`min_delay` ({config['min_delay']} ns) is above `max_delay` ({config['max_delay']} ns)")
        if config["outage"] >= config["period"]:
            raise ValueError(f"`outage` ({config['outage']} ns) must be shorter than `period` ({config['period']} ns)")
        if config["outage"]:
            # up until the first reconfiguration, then down for `outage`: the schedule itself drops a
            # packet arriving at k x period exactly, as it does at every later reconfiguration
            gap = {"up": config["period"], "down": config["outage"], "state": "up"}
        else:
            gap = {"state": "up"}
        return [("gap", "outage", gap), ("path", "delay", {"delay": config["min_delay"]})]

    def start(self, config, seed):
        self.draws = delays(config, seed)
        self.reconfigurations: list[tuple[int, int]] = []  # (time, delay drawn), in ns

    def tick(self, now_ns, cells):
        delay = next(self.draws)
        self.reconfigurations.append((now_ns, delay))
        cells["path"].set("delay", delay)
        gap, outage = cells["gap"], self.config["outage"]
        if outage and gap.get("up") != self.config["period"] - outage:
            # the first reconfiguration: from now on, down for `outage` and up for the rest of each
            # period (a change restarts the outage's schedule now, in the state it is in: down)
            gap.set("up", self.config["period"] - outage)

"""`leo`: a link whose rate alternates between `rate` and `low_rate` every `period`.

A Python cell never sees a packet (rattan.pycell; docs/cells-python.md in rattan):
- `inner(config)` names the C cells it drives, in path order: (name, type, config in the plan's
  form, base units: ns, bit/s, bytes). Packets enter the first and leave the last, in C.
- `start(config, seed)` runs once before time runs; draw randomness from random.Random(seed), so
  that a run is the same for the same seed.
- `tick(now_ns, cells)` runs every tick (the schema's x-rattan.tick names the time parameter giving
  the period) at logical times period, 2 period, ... : read `cells[name].counters()` (in/out/queued/
  dropped packets and bytes) and `cells[name].get(param)`, change `cells[name].set(param, value)`;
  changes apply at now_ns exactly. In `rattan sim` ticks run at exact logical times; in
  `rattan run` off the packet thread, their changes stamped with their logical time.
- `set(name, value)` is told when a timeline or the control API changes one of the cell's own
  `x-runtime` parameters (here `rate`).
"""
from __future__ import annotations

from rattan.pycell import PythonCell


class LeoCell(PythonCell):
    """The rate of the inner `bw` is `rate` in even periods and `low_rate` in odd ones."""

    def inner(self, config):
        return [("link", "bw", {"rate": config["rate"]})]

    def start(self, config, seed):
        self.periods = 0
        self.sent_bytes = []  # what the link sent by each tick, read from its counters

    def tick(self, now_ns, cells):
        link = cells["link"]
        self.sent_bytes.append(link.counters().out_bytes)
        self.periods += 1
        link.set("rate", self.config["low_rate"] if self.periods % 2 else self.config["rate"])

    def set(self, name, value):
        super().set(name, value)  # self.config[name] = value: the next even period uses it

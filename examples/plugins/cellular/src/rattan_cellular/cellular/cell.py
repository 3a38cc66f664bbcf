"""`cellular`: a link whose capacity depends on the workload, after CellReplay (NSDI 2025).

CellReplay observed that a cellular network gives a flow more capacity when it offers more load
(the scheduler grants more resource blocks), so it replays a "light" trace while the offered load
is small and a "heavy" trace while it is large. Here each trace is one rate, `light_rate` and
`heavy_rate`, and the load is measured as Rattan can measure it without touching packets: the
bytes that arrived at the inner `bw` over the last `window`, read from its counters at every tick.

A Python cell never sees a packet (rattan.pycell; docs/cells-python.md in rattan): `inner` names
the C cells, `tick` reads their counters and sets their runtime parameters at exact logical times.
"""
from __future__ import annotations

from collections import deque

from rattan.pycell import PythonCell


class CellularCell(PythonCell):
    """`link` (bw) at `light_rate` or `heavy_rate`, chosen at every tick from the arrival rate."""

    def inner(self, config):
        if config["window"] % config["tick"]:
            # the window is counted in ticks: one that is not a whole number of them would measure
            # over a span other than the one asked for
            raise ValueError(f"`window` ({config['window']} ns) must be a whole number of ticks "
                             f"(`tick` = {config['tick']} ns)")
        return [("link", "bw", {"rate": config["light_rate"]}),
                ("latency", "delay", {"delay": config["delay"]})]

    def start(self, config, seed):
        # (time, in_bytes) at the ticks of the last window; at time 0 nothing has arrived
        self.history: deque[tuple[int, int]] = deque([(0, 0)])
        self.heavy = False
        self.switches: list[tuple[int, str]] = []  # (time, "heavy" | "light"): for tests and plots

    def arrival_bps(self, now_ns: int, in_bytes: int) -> float:
        """The arrival rate over (now - window, now]: bytes between the counter then and now."""
        self.history.append((now_ns, in_bytes))
        while self.history[0][0] < now_ns - self.config["window"]:
            self.history.popleft()
        t0, b0 = self.history[0]
        return (in_bytes - b0) * 8e9 / (now_ns - t0)

    def tick(self, now_ns, cells):
        link = cells["link"]
        heavy = self.arrival_bps(now_ns, link.counters().in_bytes) > self.config["threshold"]
        if heavy != self.heavy:
            self.heavy = heavy
            self.switches.append((now_ns, "heavy" if heavy else "light"))
        rate = self.config["heavy_rate" if heavy else "light_rate"]
        if link.get("rate") != rate:  # also after a timeline or the control API changed a rate
            link.set("rate", rate)

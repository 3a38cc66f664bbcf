"""What `rattan run` shows while it runs and when it ends: a live line per channel on a terminal,
a closing table of what every cell did, and a warning when frames left later than planned."""
from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import LiveRun


def summary_rows(live: LiveRun) -> list[dict]:
    """Per instance and cell: packets in, out, dropped (by reason) and still queued, from the engine."""
    rows = []
    for inst in live.instances:
        named = [(c["name"], c["type"]) for c in inst.channel["cells"]]
        # an endpoint shows when frames were lost at its interface (reason `ring`)
        named += [(e, "endpoint") for e in inst.net.endpoints if live.engine.counters(inst.nodes[e]).dropped_packets]
        for name, kind in named:
            c = live.engine.counters(inst.nodes[name])
            rows.append({"instance": inst.label, "cell": name, "type": kind, "in": c.in_packets,
                         "out": c.out_packets, "dropped": c.dropped_packets, "queued": c.queued_packets,
                         "by_reason": c.dropped_by_reason, "in_bytes": c.in_bytes, "out_bytes": c.out_bytes})
    return rows


def print_summary(live: LiveRun, seconds: float) -> None:
    """The closing table: what every cell did over the run."""
    rows = summary_rows(live)
    if not rows:
        return
    many = len(live.instances) > 1
    out = [f"rattan: {seconds:.1f} s of real time"]
    out.append(f"  {'cell':<22} {'in':>9} {'out':>9} {'dropped':>8} {'queued':>7} {'out rate':>12}  drops by reason")
    for r in rows:
        name = f"{r['instance']}/{r['cell']}" if many else r["cell"]
        rate = r["out_bytes"] * 8 / seconds / 1e6 if seconds > 0 else 0.0
        why = ", ".join(f"{k} {v}" for k, v in r["by_reason"].items())
        out.append(f"  {name:<22} {r['in']:>9} {r['out']:>9} {r['dropped']:>8} {r['queued']:>7} "
                   f"{rate:>7.2f} Mbit/s  {why}")
    sys.stderr.write("\n".join(out) + "\n")


class LiveLine:
    """On a terminal: one line per second with each channel's delivered rate, queue and drops."""

    def __init__(self, live: LiveRun) -> None:
        self.live, self.stop = live, threading.Event()
        self.thread = threading.Thread(target=self._loop, name="rattan live view", daemon=True)

    def __enter__(self) -> "LiveLine":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(2)
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()

    def _totals(self) -> dict[str, tuple[int, int, int]]:
        out: dict[str, tuple[int, int, int]] = {}
        for inst in self.live.instances:
            delivered = sum(self.live.engine.counters(inst.nodes[e]).out_bytes for e in inst.net.endpoints)
            queued = dropped = 0
            for cell in inst.channel["cells"]:
                c = self.live.engine.counters(inst.nodes[cell["name"]])
                queued, dropped = queued + c.queued_packets, dropped + c.dropped_packets
            b, q, d = out.get(inst.channel["name"], (0, 0, 0))
            out[inst.channel["name"]] = (b + delivered, q + queued, d + dropped)
        return out

    def _loop(self) -> None:
        last, t0 = self._totals(), time.monotonic()
        while not self.stop.wait(1.0):
            now, t1 = self._totals(), time.monotonic()
            parts = [f"{ch}: {(b - last[ch][0]) * 8 / (t1 - t0) / 1e6:.1f} Mbit/s, queue {q}, drops {d}"
                     for ch, (b, q, d) in now.items()]
            line = " | ".join(parts[:4]) + (f" | +{len(parts) - 4} channels" if len(parts) > 4 else "")
            sys.stderr.write(f"\r\x1b[K[rattan] {line}"[:200])
            sys.stderr.flush()
            last, t0 = now, t1


def warn_if_late(late, threshold_ns: int) -> None:
    """Say so when frames left later than planned by more than the threshold (the engine fell behind:
    an overloaded machine, or more traffic than one engine core forwards)."""
    if late is None or not late.late:
        return
    p99 = late.quantile_us(0.99)
    sys.stderr.write(
        f"rattan: warning: {late.late} of {late.sent} frames ({100 * late.late / late.sent:.3g}%) left more than "
        f"{threshold_ns / 1e6:g} ms later than planned (worst {late.max_ns / 1e6:.3g} ms, p99 "
        f"{'over 1 ms' if p99 == float('inf') else f'{p99:g} us'}); the emulated path was slower than asked\n")

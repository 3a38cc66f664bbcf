"""What `rattan run` shows while it runs and when it ends: a live line per channel (what each
direction delivered), a closing table of what every cell did over the time it was busy, and a
warning when frames left later than planned.

All come from the engine's per-node counters: what each endpoint was delivered, and when each
cell first and last sent a frame on (engine.c, rt_emit); Python never sees a packet."""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .run import LiveRun

LIVE_S = 1.0            # the live line changes this often
LIVE_ENV = "RATTAN_LIVE"  # 1: the live line also when stderr is not a terminal (one line per update); 0: never


def live_line_wanted(default: bool) -> bool:
    """Whether to show the live line: on a terminal by default, or as $RATTAN_LIVE says."""
    value = os.environ.get(LIVE_ENV, "").strip()
    return default if value == "" else value not in ("0", "no", "off", "false")


@dataclass(frozen=True)
class Delivery:
    """What the live line shows of one endpoint: the bytes delivered to it."""
    to: str
    label: str                        # `left->right` in a two-endpoint channel, else `->server`


def deliveries(channel: dict) -> list[Delivery]:
    """One Delivery per endpoint of the channel: by direction with two endpoints, else by
    destination in the order of its `endpoints` line."""
    eps = list(channel["endpoints"])
    if len(eps) == 2:  # by direction, the first endpoint's first: `left->right, right->left`
        return [Delivery(eps[1], f"{eps[0]}->{eps[1]}"), Delivery(eps[0], f"{eps[1]}->{eps[0]}")]
    return [Delivery(x, f"->{x}") for x in eps]


class RunView:
    """The live line of a run: every LIVE_S, what each direction of each channel delivered since
    the last line, from the engine's counters."""

    def __init__(self, live: LiveRun, live_line: bool = False, stream: TextIO | None = None,
                 terminal: bool | None = None) -> None:
        self.live, self.live_line = live, live_line
        self.stream = stream or sys.stderr
        # on a terminal the line is rewritten in place; elsewhere ($RATTAN_LIVE=1) one line each
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="rattan run view", daemon=True)
        self.deliveries = {id(inst): deliveries(inst.channel) for inst in live.instances}

    def __enter__(self) -> "RunView":
        if self.live_line:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        if self.live_line and self.terminal:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _totals(self) -> dict[str, tuple[dict[str, int], int, int, list[str]]]:
        """Per channel (instances of one channel summed): delivered bytes by direction, queued, dropped."""
        engine = self.live.engine
        out: dict[str, tuple[dict[str, int], int, int, list[str]]] = {}
        for inst in self.live.instances:
            by, queued, dropped, order = out.get(inst.channel["name"], ({}, 0, 0, []))
            for d in self.deliveries[id(inst)]:
                if d.label not in by:
                    order.append(d.label)
                by[d.label] = by.get(d.label, 0) + engine.counters(inst.nodes[d.to]).delivered_bytes
            for cell in inst.channel["cells"]:
                c = engine.counters(inst.nodes[cell["name"]])
                queued, dropped = queued + c.queued_packets, dropped + c.dropped_packets
            out[inst.channel["name"]] = (by, queued, dropped, order)
        return out

    def _loop(self) -> None:
        # A counter read makes the engine thread wait until it is done (engine.c, shard_run), so a
        # reader preempted halfway stalls forwarding: this thread reads at the engine's weight
        # (docs/running.md), once a line.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), getattr(self.live, "engine_nice", 0))
        except OSError:
            pass  # no CAP_SYS_NICE: the run already said the engine thread could not be raised
        last, t_last = self._totals(), time.monotonic()
        while not self.stop.wait(max(0.0, t_last + LIVE_S - time.monotonic())):
            now, t = self._totals(), time.monotonic()
            self._show(last, now, t - t_last)
            last, t_last = now, t

    def _show(self, last, now, seconds: float) -> None:
        parts = []
        for ch, (by, q, d, order) in now.items():
            before = last.get(ch, ({},))[0]
            rates = [f"{label} {(by[label] - before.get(label, 0)) * 8 / seconds / 1e6:.1f} Mbit/s" for label in order]
            parts.append(f"{ch}: {', '.join(rates)}, queue {q}, drops {d}")
        line = " | ".join(parts[:4]) + (f" | +{len(parts) - 4} channels" if len(parts) > 4 else "")
        if self.terminal:
            self.stream.write(f"\r\x1b[K[rattan] {line}"[:200])
        else:
            self.stream.write(f"[rattan] {line}\n")
        self.stream.flush()


# -- the closing table

def summary_rows(live: LiveRun) -> list[dict]:
    """Per instance and cell: packets in, out, dropped (by reason) and still queued, and how long it
    was busy (from its first frame out to its last), from the engine."""
    rows = []
    for inst in live.instances:
        named = [(c["name"], c["type"]) for c in inst.channel["cells"]]
        # an endpoint shows when frames were lost at its interface (reason `ring`)
        named += [(e, "endpoint") for e in inst.net.endpoints if live.engine.counters(inst.nodes[e]).dropped_packets]
        for name, kind in named:
            c = live.engine.counters(inst.nodes[name])
            rows.append({"instance": inst.label, "cell": name, "type": kind, "in": c.in_packets,
                         "out": c.out_packets, "dropped": c.dropped_packets, "queued": c.queued_packets,
                         "by_reason": c.dropped_by_reason, "in_bytes": c.in_bytes, "out_bytes": c.out_bytes,
                         # what it sent on into the path (an endpoint's out also counts its deliveries)
                         "sent_bytes": c.out_bytes - c.delivered_bytes, "busy_s": c.busy_ns / 1e9})
    return rows


def print_summary(live: LiveRun, seconds: float) -> None:
    """The closing table: what every cell did over the run, its rate over the time it was busy."""
    rows = summary_rows(live)
    if not rows:
        return
    many = len(live.instances) > 1
    out = [f"rattan: {seconds:.1f} s of real time"]
    out.append(f"  {'cell':<22} {'in':>9} {'out':>9} {'dropped':>8} {'queued':>7} {'out rate':>12} "
               f"{'busy':>7}  drops by reason")
    for r in rows:
        name = f"{r['instance']}/{r['cell']}" if many else r["cell"]
        span = r["busy_s"]
        # one frame out (or none) spans no time: no rate to show
        rate = f"{r['sent_bytes'] * 8 / span / 1e6:>7.2f} Mbit/s" if span > 0 else f"{'-':>12}"
        why = ", ".join(f"{k} {v}" for k, v in r["by_reason"].items())
        out.append(f"  {name:<22} {r['in']:>9} {r['out']:>9} {r['dropped']:>8} {r['queued']:>7} "
                   f"{rate} {span:>7.1f} s  {why}".rstrip())
    out.append("  out rate: over the time the cell was busy, from its first frame out to its last "
               "(idle gaps between included)")
    out.append(thread_line(live.engine.thread_stats()))
    split = live.engine.split_stats()
    if split.real:  # --split: what crossed between the regions' threads
        out.append(f"  split over threads: {split.handoffs} packets handed off across {split.cuts} cuts, "
                   f"{split.ring_full} dropped with their ring full")
    sys.stderr.write("\n".join(out) + "\n")


def thread_line(threads) -> str:
    """The engine threads' load in one line: per thread, its core, busy share of the run and packets."""
    parts = [f"{'core ' + str(t.cpu) if t.cpu is not None else 'unpinned'} {100 * t.load:.0f}% busy, "
             f"{t.packets} packets in" for t in threads]
    return f"  engine thread{'s' if len(threads) > 1 else ''}: " + "; ".join(parts)


def warn_if_late(late, threshold_ns: int) -> None:
    """Say so when frames left later than planned by more than the threshold (the engine fell behind:
    an overloaded machine, or more traffic than one engine core forwards)."""
    if late is None or not late.late:
        return
    p99 = late.quantile_us(0.99)
    sys.stderr.write(
        f"rattan: warning: {late.late} of {late.sent} frames ({100 * late.late / late.sent:.3g}%) left more than "
        f"{threshold_ns / 1e6:g} ms later than planned (worst {late.max_ns / 1e6:.3g} ms, p99 "
        f"{p99:g} us); the emulated path was slower than asked\n")

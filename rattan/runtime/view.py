"""What `rattan run` shows while it runs and when it ends: a live line per channel (what each
direction delivered), a closing table of what every cell did over the time it was busy, and a
warning when frames left later than planned.

Both come from the engine's per-node counters, sampled by one thread (RunView) a few times a
second; Python never sees a packet."""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .run import Instance, LiveRun

SAMPLE_S = 0.1          # counters are sampled this often, so busy times are right to within it
SAMPLER_SHARE = 0.02    # ... or less often, so that sampling takes at most this share of a core
LIVE_S = 1.0            # the live line changes this often
LIVE_ENV = "RATTAN_LIVE"  # 1: the live line also when stderr is not a terminal (one line per update); 0: never


def live_line_wanted(default: bool) -> bool:
    """Whether to show the live line: on a terminal by default, or as $RATTAN_LIVE says."""
    value = os.environ.get(LIVE_ENV, "").strip()
    return default if value == "" else value not in ("0", "no", "off", "false")


# -- what each endpoint was delivered, from the counters the engine keeps per node

@dataclass(frozen=True)
class Delivery:
    """The bytes delivered to endpoint `to` (what left its interface): `rule` computes them from the
    channel's node counters (see _solve); None when the counters cannot tell."""
    to: str
    label: str                        # `left->right` in a two-endpoint channel, else `->server`
    rule: dict | None                 # how to compute it (see _solve); None: the counters cannot tell


Rule = dict  # a linear combination of counters: {("out" | "in", node name): coefficient}


def _solve(channel: dict) -> dict[str, Rule | None]:
    """For each endpoint, the bytes delivered to it as a linear combination of node counters.

    An endpoint's `out` counts both what it sent into the graph and what was delivered to it, so
    this needs the topology. The bytes that crossed each link are unknowns; every cell gives two
    equations (what crossed its input links sums to its `in`, its output links to its `out`) and
    every endpoint one (its output link and its input links sum to its `out`). Any equation with
    one unknown left solves it; that repeats until none does. A chain, a router whose outputs lead
    to cells of their own, or an endpoint linked straight to another all solve; None is left only
    where the counters cannot tell (two endpoints both reached through one router and merging
    into one cell)."""
    endpoints = list(channel["endpoints"])
    links = [(l["from"], l["to"]) for l in channel["links"]]
    def into(n): return [i for i, (_, b) in enumerate(links) if b == n]
    def out_of(n): return [i for i, (a, _) in enumerate(links) if a == n]
    equations: list[tuple[list[int], Rule]] = []
    for n in endpoints:
        equations.append((out_of(n) + into(n), {("out", n): 1}))
    for c in channel["cells"]:
        equations.append((out_of(c["name"]), {("out", c["name"]): 1}))
        equations.append((into(c["name"]), {("in", c["name"]): 1}))
    crossed: dict[int, Rule] = {}
    solved = True
    while solved:
        solved = False
        for members, total in equations:
            unknown = [i for i in members if i not in crossed]
            if len(unknown) != 1:
                continue
            rule = dict(total)
            for i in members:
                for key, k in crossed.get(i, {}).items():
                    rule[key] = rule.get(key, 0) - k
            crossed[unknown[0]] = {key: k for key, k in rule.items() if k}
            solved = True
    out: dict[str, Rule | None] = {}
    for x in endpoints:
        if all(i in crossed for i in into(x)):
            rule: Rule = {}
            for i in into(x):
                for key, k in crossed[i].items():
                    rule[key] = rule.get(key, 0) + k
            out[x] = {key: k for key, k in rule.items() if k}
        else:
            out[x] = None
    return out


def deliveries(channel: dict) -> list[Delivery]:
    """One Delivery per endpoint of the channel: by direction with two endpoints, else by
    destination in the order of its `endpoints` line."""
    eps = list(channel["endpoints"])
    rules = _solve(channel)
    if len(eps) == 2:  # by direction, the first endpoint's first: `left->right, right->left`
        return [Delivery(eps[1], f"{eps[0]}->{eps[1]}", rules[eps[1]]),
                Delivery(eps[0], f"{eps[1]}->{eps[0]}", rules[eps[0]])]
    return [Delivery(x, f"->{x}", rules[x]) for x in eps]


def _evaluate(rule: Rule, counters: dict[str, object]) -> int:
    return sum(k * (counters[n].out_bytes if kind == "out" else counters[n].in_bytes) for (kind, n), k in rule.items())


# -- sampling

@dataclass
class _Busy:
    """The first and last sampling intervals in which a node's out bytes grew."""
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None


class RunView:
    """Samples every node's counters while a run lasts: for each cell's busy time in the closing
    table, and for the live line (when `live_line`)."""

    def __init__(self, live: LiveRun, live_line: bool = False, stream: TextIO | None = None,
                 terminal: bool | None = None) -> None:
        self.live, self.live_line = live, live_line
        self.stream = stream or sys.stderr
        # on a terminal the line is rewritten in place; elsewhere ($RATTAN_LIVE=1) one line each
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="rattan run view", daemon=True)
        self.interval = self.longest_interval = SAMPLE_S
        self.deliveries = {id(inst): deliveries(inst.channel) for inst in live.instances}
        self._lock = threading.Lock()
        self._busy: dict[tuple[int, str], _Busy] = {}
        self._t: float | None = None
        self._counters: dict[int, dict[str, object]] = {}

    def __enter__(self) -> "RunView":
        self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        if self.live_line and self.terminal:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def sample(self) -> None:
        """Read every node's counters once; note which nodes sent anything since the last time."""
        with self._lock:
            t, cpu = time.monotonic(), time.thread_time()
            engine = self.live.engine
            for inst in self.live.instances:
                now = {name: engine.counters(node) for name, node in inst.nodes.items()}
                before = self._counters.get(id(inst))
                if before is not None:
                    for name, c in now.items():
                        if c.out_bytes != before[name].out_bytes:
                            b = self._busy.setdefault((id(inst), name), _Busy())
                            if b.first is None:
                                b.first = (self._t, t)
                            b.last = (self._t, t)
                self._counters[id(inst)] = now
            self._t = t
            swept = time.thread_time() - cpu  # this thread's own time: being preempted is not cost
        # a run of many instances has many nodes: sample less often rather than take a core
        self.interval = max(SAMPLE_S, swept / SAMPLER_SHARE)
        self.longest_interval = max(self.longest_interval, self.interval)

    def busy_s(self, inst: Instance, name: str) -> float:
        """How long the node was busy: from its first frame out to its last, to within the
        sampling interval; 0 if it sent nothing."""
        b = self._busy.get((id(inst), name))
        if b is None or b.first is None:
            return 0.0
        span = (b.last[0] + b.last[1]) / 2 - (b.first[0] + b.first[1]) / 2
        return max(span, b.first[1] - b.first[0]) if span <= 0 else span

    def delivered(self, inst: Instance) -> list[tuple[Delivery, int | None]]:
        """Bytes delivered to each endpoint of the instance so far (None: the counters cannot tell)."""
        counters = self._counters[id(inst)]
        return [(d, None if d.rule is None else _evaluate(d.rule, counters)) for d in self.deliveries[id(inst)]]

    def _totals(self) -> dict[str, tuple[dict[str, int | None], int, int, list[str]]]:
        """Per channel (instances of one channel summed): delivered bytes by direction, queued, dropped."""
        out: dict[str, tuple[dict[str, int | None], int, int, list[str]]] = {}
        for inst in self.live.instances:
            counters = self._counters[id(inst)]
            by, queued, dropped, order = out.get(inst.channel["name"], ({}, 0, 0, []))
            for d, b in self.delivered(inst):
                if d.label not in by:
                    order.append(d.label)
                    by[d.label] = b
                else:
                    by[d.label] = None if b is None or by[d.label] is None else by[d.label] + b
            for cell in inst.channel["cells"]:
                c = counters[cell["name"]]
                queued, dropped = queued + c.queued_packets, dropped + c.dropped_packets
            out[inst.channel["name"]] = (by, queued, dropped, order)
        return out

    def _loop(self) -> None:
        # A counter read makes the engine thread wait until it is done (engine.c, shard_run), so a
        # reader preempted halfway stalls forwarding. Loaded, a 50 Mbit/s TCP flow got 28-46 Mbit/s
        # with this thread at the applications' weight, 44-47 without sampling, 43-46 at the
        # engine's weight (docs/running.md).
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), getattr(self.live, "engine_nice", 0))
        except OSError:
            pass  # no CAP_SYS_NICE: the run already said the engine thread could not be raised
        last, t_last = self._totals(), time.monotonic()
        next_line = t_last + LIVE_S
        while not self.stop.wait(max(0.0, min(self.interval, next_line - time.monotonic()))):
            self.sample()
            if not self.live_line or time.monotonic() < next_line:
                continue
            now, t = self._totals(), time.monotonic()
            self._show(last, now, t - t_last)
            last, t_last, next_line = now, t, t + LIVE_S

    def _show(self, last, now, seconds: float) -> None:
        parts = []
        for ch, (by, q, d, order) in now.items():
            rates = []
            for label in order:
                b, b0 = by[label], last.get(ch, ({},))[0].get(label)
                rate = "?" if b is None or b0 is None else f"{(b - b0) * 8 / seconds / 1e6:.1f} Mbit/s"
                rates.append(f"{label} {rate}")
            parts.append(f"{ch}: {', '.join(rates)}, queue {q}, drops {d}")
        line = " | ".join(parts[:4]) + (f" | +{len(parts) - 4} channels" if len(parts) > 4 else "")
        if self.terminal:
            self.stream.write(f"\r\x1b[K[rattan] {line}"[:200])
        else:
            self.stream.write(f"[rattan] {line}\n")
        self.stream.flush()


# -- the closing table

def summary_rows(live: LiveRun, view: RunView | None = None) -> list[dict]:
    """Per instance and cell: packets in, out, dropped (by reason) and still queued, from the engine,
    and (with a view) how long it was busy."""
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
                         "busy_s": view.busy_s(inst, name) if view else None})
    return rows


def print_summary(live: LiveRun, seconds: float, view: RunView | None = None) -> None:
    """The closing table: what every cell did over the run; its rate over the time it was busy
    (with a view; else over the whole run)."""
    rows = summary_rows(live, view)
    if not rows:
        return
    many = len(live.instances) > 1
    out = [f"rattan: {seconds:.1f} s of real time"]
    out.append(f"  {'cell':<22} {'in':>9} {'out':>9} {'dropped':>8} {'queued':>7} {'out rate':>12} "
               f"{'busy':>7}  drops by reason")
    for r in rows:
        name = f"{r['instance']}/{r['cell']}" if many else r["cell"]
        span = r["busy_s"] if r["busy_s"] is not None else seconds
        rate = r["out_bytes"] * 8 / span / 1e6 if span > 0 else 0.0
        why = ", ".join(f"{k} {v}" for k, v in r["by_reason"].items())
        out.append(f"  {name:<22} {r['in']:>9} {r['out']:>9} {r['dropped']:>8} {r['queued']:>7} "
                   f"{rate:>7.2f} Mbit/s {span:>7.1f} s  {why}".rstrip())
    if view:
        out.append(f"  out rate: over the time the cell was busy, from its first frame out to its last "
                   f"(to within {view.longest_interval:.2g} s)")
    else:
        out.append("  out rate: over the whole run")
    sys.stderr.write("\n".join(out) + "\n")


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

"""`rattan sim`: run a plan in virtual time with synthetic flows; the result document of PRODUCT.md."""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from ..units import RATE, SIZE, TIME, QuantityError, parse_quantity
from ..control.api import Target
from .channel import ChannelError, choose_channel, schedule_timeline

_FLOW = re.compile(r"^\s*([A-Za-z_]\w*)\s*->\s*([A-Za-z_]\w*)\s*:\s*(\w+)\s*:\s*([^:]+?)\s*(?::(.*))?$")


class SimError(ChannelError):
    """A bad `--flow`, `--duration` or channel choice; the message says which and how to fix it."""


@dataclass(frozen=True)
class FlowSpec:
    src: str
    dst: str
    kind: str
    rate_bps: int
    size: int


def quantity(text: str, dim, what: str) -> Fraction:
    """A magnitude in base units from `10s`, `20Mbps`, `1500B`; SimError naming the flag otherwise."""
    try:
        return parse_quantity(text, dim)
    except QuantityError as e:
        raise SimError(f"{what}: {e}") from None


def parse_flow(spec: str) -> FlowSpec:
    """`SRC->DST:KIND:RATE[:size=S]`."""
    m = _FLOW.match(spec)
    if not m:
        raise SimError(f"--flow `{spec}`: expected SRC->DST:KIND:RATE[:size=S], e.g. 'left->right:cbr:20Mbps'")
    src, dst, kind, rate, opts = m.groups()
    if kind not in ("cbr", "poisson"):
        raise SimError(f"--flow `{spec}`: kind `{kind}` is not `cbr` or `poisson`")
    rate_bps = round(quantity(rate, RATE, f"--flow `{spec}`"))
    if rate_bps <= 0:
        raise SimError(f"--flow `{spec}`: the rate must be above 0")
    size = 1500
    for opt in filter(None, (opts or "").split(":")):
        key, _, value = opt.partition("=")
        if key.strip() != "size" or not value:
            raise SimError(f"--flow `{spec}`: unknown option `{opt}` (only size=S, e.g. size=1200B)")
        size = round(quantity(value.strip(), SIZE, f"--flow `{spec}`") / 8)
        if not 20 <= size <= 65535:
            raise SimError(f"--flow `{spec}`: size must be between 20B and 65535B")
    return FlowSpec(src, dst, kind, rate_bps, size)


def parse_duration(text: str) -> int:
    ns = round(quantity(text, TIME, "--duration") * 10**9)
    if ns <= 0:
        raise SimError("--duration must be longer than 0s")
    return ns


def _delay_ms(d) -> dict:
    """min, mean, max (exact) and p50, p99 (from the engine's log histogram, within 0.8 %), in ms."""
    return {"min": d.min_ns / 1e6, "p50": d.quantile_ns(0.50) / 1e6, "p99": d.quantile_ns(0.99) / 1e6,
            "max": d.max_ns / 1e6, "mean": d.mean_ns / 1e6}


def misdelivery_warnings(doc: dict) -> list[str]:
    """One line per flow some of whose packets reached an endpoint other than its destination."""
    return [f"{f['misdelivered_packets']} packets of flow {f['src']}->{f['dst']} reached another endpoint than "
            f"`{f['dst']}` (a route sends them the wrong way); they are not counted as received"
            for f in doc["flows"] if f.get("misdelivered_packets")]


def endpoint_addresses(plan: dict, channel: dict) -> dict[str, int] | None:
    """An upstream document's endpoints get the addresses `rattan run` gives them (left veth i
    10.1.i.1, right veth i 10.2.i.1: UpstreamNetwork.planned_addresses), so its routes route here
    too; None (the engine's virtual addresses, 10.0.n.2) for a .rtn file."""
    import ipaddress
    from .netns import NetnsError, UpstreamNetwork
    from .run import upstream_env
    env = upstream_env(plan)
    if env is None:
        return None
    try:
        net = UpstreamNetwork(channel["endpoints"], channel["name"], env)
    except NetnsError as e:
        raise SimError(str(e)) from None
    return {name: int(ipaddress.IPv4Address(a)) for name, a in net.planned_addresses().items()}


def run(plan: dict, channel_name: str | None, flows: list[str], duration: str, seed: int,
        progress=None, http: str | None = None, announce=None, interval: str | None = None,
        packet_log: str | None = None, log_cells: list[str] | None = None, samples: bool = False,
        packet_log_snaplen: int = 0, cores: int | None = None) -> dict:
    """Run one channel of a plan in virtual time and return the result document.

    With `http`, the control API is served on that address and virtual time is paced by the
    monotonic clock (one virtual second per second), so that changes can be made while it runs;
    `announce(url)` is told where the API listens. Memory does not grow with the run's length:
    delay statistics come from the engine's fixed-size histograms. With `samples`, each flow of
    the result also lists every received packet's sequence number and one-way delay (16 bytes
    per packet in the engine while it runs)."""
    from ..engine import Engine
    from ..engine.load import load_channel

    channel = choose_channel(plan, channel_name)
    specs = [parse_flow(f) for f in flows]
    if not specs:
        raise SimError("give at least one --flow, e.g. --flow 'left->right:cbr:20Mbps'")
    dur = parse_duration(duration)
    for s in specs:
        for ep in (s.src, s.dst):
            if ep not in channel["endpoints"]:
                raise SimError(f"--flow {s.src}->{s.dst}: `{ep}` is not an endpoint of channel "
                               f"`{channel['name']}` ({', '.join(channel['endpoints'])})")
    from . import cores as engine_cores
    try:
        threads = engine_cores.choose(cores, 1, real=False)
    except engine_cores.CoresError as e:
        raise SimError(str(e)) from None
    engine = Engine(seed)
    engine_cores.apply(engine, threads)
    nodes = load_channel(engine, channel, addresses=endpoint_addresses(plan, channel))
    flow_ids = [engine.add_flow(nodes[s.src], nodes[s.dst], s.kind, s.rate_bps, s.size, samples=samples)
                for s in specs]
    cells = {c["name"]: c for c in channel["cells"]}
    schedule_timeline(engine, nodes, channel, dur)
    from . import controllers
    try:
        models = controllers.load(engine, channel, nodes, seed)
    except controllers.ControllerError as e:
        raise SimError(str(e)) from None
    schedule = controllers.Schedule(models, controllers.own_timeline(channel, models, dur))
    step = parse_interval(interval, dur)
    if packet_log:
        from . import packet_log as plog
        try:
            plog.start(engine, packet_log, [Target(channel, channel["name"], 0, nodes)], "virtual", log_cells,
                       packet_log_snaplen)
        except plog.LogError as e:
            raise SimError(str(e)) from None
    series = Series(engine, channel, nodes, flow_ids, step)
    if http:
        _run_paced(engine, channel, nodes, dur, http, progress, announce, schedule)
    else:
        for t in range(step, dur + step, step):  # a sample of the series at every interval
            _python_cells_until(engine, schedule, min(t, dur))
            engine.run_until(min(t, dur))
            series.sample(min(t, dur))
            if progress:
                progress(min(t, dur), dur)
    result_flows = []
    for s, fid in zip(specs, flow_ids):
        st = engine.flow_stats(fid)
        del st["delay_sum_ns"]  # in delay_ms as the mean
        result_flows.append({
            "src": s.src, "dst": s.dst, "kind": s.kind, "rate_bps": s.rate_bps, "size": s.size, **st,
            "throughput_bps": st["received_bytes"] * 8 / (dur / 1e9),
            "delay_ms": _delay_ms(engine.flow_delay(fid)),
        })
        if samples:
            delays, seqs = engine.flow_samples(fid)
            result_flows[-1]["samples"] = {"seq": seqs, "delay_ns": delays}
    result_cells = {}
    for name in cells:
        c = engine.counters(nodes[name])
        result_cells[name] = {"in_packets": c.in_packets, "out_packets": c.out_packets,
                              "dropped_packets": c.dropped_packets, "queued_packets": c.queued_packets,
                              "in_bytes": c.in_bytes, "out_bytes": c.out_bytes,
                              "dropped_by_reason": c.dropped_by_reason}
        if c.created_packets:
            result_cells[name]["created_packets"] = c.created_packets  # duplicates: in + created = out + ...
        if c.modified_packets:
            result_cells[name]["modified_packets"] = c.modified_packets
    if packet_log:
        engine.flush_packet_log()
    result_endpoints = {}
    for name in channel["endpoints"]:  # what each endpoint's flows sent, and what reached it (of any flow)
        c = engine.counters(nodes[name])
        sent = [f for f in result_flows if f["src"] == name]
        sent_packets, sent_bytes = sum(f["sent_packets"] for f in sent), sum(f["sent_bytes"] for f in sent)
        result_endpoints[name] = {"sent_packets": sent_packets, "sent_bytes": sent_bytes,
                                  "delivered_packets": c.delivered_packets, "delivered_bytes": c.delivered_bytes}
    doc = {"duration_s": dur / 1e9, "seed": seed, "channel": channel["name"],
           "flows": result_flows, "endpoints": result_endpoints, "cells": result_cells}
    if models:
        doc["python_cells"] = {c.name: {"class": c.cls, "tick_ns": c.period, "ticks": c.ticks,
                                        "cells": {n: h.name for n, h in c.cells.items()}} for c in models}
    warnings = misdelivery_warnings(doc)
    if warnings:
        doc["warnings"] = warnings
    if not http:  # a paced run is sampled by nobody; its series would be empty
        doc["series"] = series.document()
    return doc


def _python_cells_until(engine, schedule, t: int) -> None:
    """Run the engine to each tick (or own-parameter change) of the Python cells up to `t` exactly,
    and run it there: its changes apply at that logical time, after the events at it."""
    from .controllers import ControllerError
    while (due := schedule.next_time()) is not None and due <= t:
        engine.run_until(due)
        try:
            schedule.advance(due)
        except ControllerError as e:  # a model that failed makes the rest of the run meaningless
            raise SimError(str(e)) from None


def parse_interval(text: str | None, dur: int) -> int:
    """The sampling interval of the series: `--interval`, else 100 ms (coarser for long runs, so
    that a run has at most 10,000 samples)."""
    if text is None:
        return max(100 * 10**6, -(-dur // 10_000))
    ns = round(quantity(text, TIME, "--interval") * 10**9)
    if ns <= 0:
        raise SimError("--interval must be longer than 0s")
    if dur // ns > 1_000_000:
        raise SimError(f"--interval {text} gives over a million samples; choose a longer one")
    return ns


class Series:
    """What happened over time, sampled at every interval: each flow's received rate and mean
    one-way delay, each cell's output rate, drops, queue and configured rate (if it has one)."""

    def __init__(self, engine, channel: dict, nodes: dict, flow_ids: list[int], step: int) -> None:
        self.engine, self.nodes, self.flow_ids, self.step = engine, nodes, flow_ids, step
        self.cells = [c["name"] for c in channel["cells"]]
        self.types = {c["name"]: c["type"] for c in channel["cells"]}
        from ..registry import default_registry
        reg = default_registry()
        # the parameter limiting each cell's rate, from its schema (x-rattan.rate_limit), plugins' too
        self.rated = {}
        for c in channel["cells"]:
            limit = reg.get(c["type"]).rate_limit() if reg.get(c["type"]) else None
            if limit and limit in c["config"]:
                self.rated[c["name"]] = limit
        self.t: list[int] = []
        self.flow_bytes = [[0] for _ in flow_ids]
        self.flow_packets = [[0] for _ in flow_ids]
        self.flow_delay_sum = [[0] for _ in flow_ids]  # cumulative, ns: with the packets, each interval's mean
        self.cell = {n: {"out_bytes": [0], "dropped_packets": [0], "queued_packets": [], "queued_bytes": [],
                         "rate_bps": []} for n in self.cells}

    def sample(self, t: int) -> None:
        self.t.append(t)
        for i, fid in enumerate(self.flow_ids):
            st = self.engine.flow_stats(fid)
            self.flow_bytes[i].append(st["received_bytes"])
            self.flow_packets[i].append(st["received_packets"])
            self.flow_delay_sum[i].append(st["delay_sum_ns"])
        for n in self.cells:
            c, s = self.engine.counters(self.nodes[n]), self.cell[n]
            s["out_bytes"].append(c.out_bytes)
            s["dropped_packets"].append(c.dropped_packets)
            s["queued_packets"].append(c.queued_packets)
            s["queued_bytes"].append(c.queued_bytes)
            if n in self.rated:
                s["rate_bps"].append(self.engine.get(self.nodes[n], self.rated[n]))

    def document(self) -> dict:
        secs = [(b - a) / 1e9 for a, b in zip([0] + self.t, self.t)]
        def rate(cum: list[int]) -> list[float]:
            return [(b - a) * 8 / d for a, b, d in zip(cum, cum[1:], secs)]
        flows = []
        for i in range(len(self.flow_ids)):
            cum, dsum = self.flow_packets[i], self.flow_delay_sum[i]
            mean = [(dsum[j + 1] - dsum[j]) / (b - a) / 1e6 if b > a else None
                    for j, (a, b) in enumerate(zip(cum, cum[1:]))]
            flows.append({"received_bps": rate(self.flow_bytes[i]), "delay_ms_mean": mean})
        cells = {}
        for n, s in self.cell.items():
            cells[n] = {"type": self.types[n], "out_bps": rate(s["out_bytes"]),
                        "dropped_packets": [b - a for a, b in zip(s["dropped_packets"], s["dropped_packets"][1:])],
                        "queued_packets": s["queued_packets"], "queued_bytes": s["queued_bytes"]}
            if s["rate_bps"]:
                cells[n]["rate_bps"] = s["rate_bps"]
        return {"interval_s": self.step / 1e9, "t_s": [t / 1e9 for t in self.t], "flows": flows, "cells": cells}



def _run_paced(engine, channel: dict, nodes: dict, dur: int, http: str, progress, announce,
               schedule) -> None:
    """Virtual time in the engine thread at the pace of the clock, with the control API serving;
    Python cells tick off the engine thread, as in a real run."""
    import time
    from ..control import ControlAPI, ControlServer
    from ..registry import default_registry
    from .controllers import RealTimeDriver
    target = Target(channel, channel["name"], 0, nodes, {c.name: c for c in schedule.controllers})
    api = ControlAPI(engine, [target], default_registry(), "virtual", title="rattan sim")
    with ControlServer(api, http) as server:
        if announce:
            announce(server.url)
        engine.start(dur, clock="real")
        driver = RealTimeDriver(engine, schedule).start() if schedule else None
        try:
            while engine.running:
                time.sleep(0.1)
                if progress:
                    progress(min(engine.now, dur), dur)
        finally:
            if driver:
                driver.stop()
            engine.stop()

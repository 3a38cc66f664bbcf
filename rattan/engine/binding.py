"""A thin typed wrapper over the C engine; every call checks the engine's error codes."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ._engine import ffi, lib

ABI_VERSION = 10
if lib.rt_abi_version() != ABI_VERSION:  # a stale build of the extension
    raise ImportError(f"rattan engine ABI {lib.rt_abi_version()} does not match {ABI_VERSION}: reinstall rattan")

NEVER = 2**64 - 1
DROP_REASONS = ("queue_full", "aqm", "loss", "policer", "no_route", "outage", "pool", "ring")
QUEUE_KINDS = {"infinite": lib.RT_QUEUE_INFINITE, "droptail": lib.RT_QUEUE_DROPTAIL,
               "drophead": lib.RT_QUEUE_DROPHEAD}
DISTRIBUTIONS = {"uniform": lib.RT_DIST_UNIFORM, "normal": lib.RT_DIST_NORMAL,
                 "pareto": lib.RT_DIST_PARETO, "paretonormal": lib.RT_DIST_PARETONORMAL}
AQMS = {"none": lib.RT_AQM_NONE, "codel": lib.RT_AQM_CODEL, "pie": lib.RT_AQM_PIE, "red": lib.RT_AQM_RED}
FLOW_KINDS = {"cbr": lib.RT_FLOW_CBR, "poisson": lib.RT_FLOW_POISSON}
CLOCKS = {"virtual": lib.RT_CLOCK_VIRTUAL, "real": lib.RT_CLOCK_REAL}
_ERRORS = {lib.RT_ENOMEM: "out of memory", lib.RT_EINVAL: "invalid argument",
           lib.RT_ERANGE: "no such node or port",
           lib.RT_ESTATE: "not in this state (output already linked, graph fixed once time runs, or engine busy)",
           lib.RT_ENOTYPE: "no such cell type", lib.RT_ENOPARAM: "no such runtime parameter",
           lib.RT_ESYS: "system error"}


class EngineError(RuntimeError):
    """The engine refused a request (its error code, in words)."""


def netdev_tune(netns_path: str, ifname: str | None, no_ipv6: bool = True) -> None:
    """Transmit checksum offload off on `ifname` (if given) and IPv6 off, inside a namespace."""
    rc = lib.rt_netdev_tune(os.fsencode(netns_path), os.fsencode(ifname) if ifname else ffi.NULL, int(no_ipv6))
    if rc < 0:
        raise EngineError(f"cannot tune `{ifname}` in {netns_path}: {os.strerror(-rc)}")


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise EngineError(f"{what}: {_ERRORS.get(rc, f'error {rc}')}")
    return rc


@dataclass(frozen=True)
class Counters:
    """A node's packet and byte counters; in = out + dropped + queued."""
    in_packets: int
    in_bytes: int
    out_packets: int
    out_bytes: int
    queued_packets: int
    queued_bytes: int
    dropped_packets: int
    dropped_bytes: int
    created_packets: int  # copies made by `duplicate`: in + created = out + dropped + queued
    created_bytes: int
    modified_packets: int  # changed in place by `corrupt`
    dropped_by_reason: dict
    # an endpoint: what was handed to its application or interface (in and out count it too); 0 for a cell
    delivered_packets: int = 0
    delivered_bytes: int = 0
    # logical times (ns) of the node's first and last departure into the path; None before any
    first_out_ns: int | None = None
    last_out_ns: int | None = None

    @property
    def busy_ns(self) -> int:
        """From the node's first departure into the path to its last (0 before any)."""
        return 0 if self.first_out_ns is None else self.last_out_ns - self.first_out_ns


HIST_BUCKETS = lib.RT_HIST_BUCKETS
# A bucket spans less than 2^-RT_HIST_SUB_BITS of its lower edge; its middle is within half that of any
# value in it: the relative error of a quantile read from the histogram.
HIST_RELATIVE_ERROR = 2.0 ** -(lib.RT_HIST_SUB_BITS + 1)


def hist_bucket_bounds(hist: list[int], q: float) -> tuple[int, int] | None:
    """[low, high) of the bucket that holds the q-quantile (nearest rank) of an engine histogram
    (RT_HIST_BUCKETS counts in the engine's log buckets), or None if it is empty."""
    total = sum(hist)
    if not total:
        return None
    need, seen = max(1, math.ceil(q * total)), 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= need:
            return lib.rt_hist_lower(i), lib.rt_hist_lower(i + 1)
    return None  # unreachable: the counts sum to total


@dataclass(frozen=True)
class DelayStats:
    """One-way delays (ns) of a flow's received packets: exact count, sum, min and max, and the
    distribution in the engine's log buckets (quantiles within HIST_RELATIVE_ERROR)."""
    count: int
    sum_ns: int
    min_ns: int
    max_ns: int
    hist: list

    @property
    def mean_ns(self) -> float:
        return self.sum_ns / self.count if self.count else 0.0

    def quantile_ns(self, q: float) -> float:
        """The q-quantile (nearest rank): its bucket's middle, kept within [min, max]."""
        b = hist_bucket_bounds(self.hist, q)
        if b is None:
            return 0.0
        low, high = b
        return float(min(max((low + high - 1) / 2, self.min_ns), self.max_ns))


@dataclass(frozen=True)
class Lateness:
    """Frames an endpoint sent in a real run, and how late, in the engine's log buckets of
    nanoseconds (`hist`); `late` of them beyond the engine's threshold."""
    sent: int
    late: int
    max_ns: int
    sum_ns: int
    hist: list

    def quantile_us(self, q: float) -> float:
        """The q-quantile of lateness, in microseconds: its bucket's upper edge (an upper bound
        within 1/64 of the value), at most the largest lateness seen."""
        b = hist_bucket_bounds(self.hist, q)
        if b is None:
            return 0.0
        return min(b[1] - 1, self.max_ns) / 1000

    def merged(self, other: "Lateness") -> "Lateness":
        return Lateness(self.sent + other.sent, self.late + other.late, max(self.max_ns, other.max_ns),
                        self.sum_ns + other.sum_ns, [a + b for a, b in zip(self.hist, other.hist)])


class Engine:
    """One engine instance: nodes (endpoints and cells), links, flows, virtual time."""

    def __init__(self, seed: int = 1) -> None:
        if not 0 <= seed < 2**64:
            raise EngineError("seed must be in [0, 2^64)")
        ptr = lib.rt_engine_new(seed)
        if ptr == ffi.NULL:
            raise MemoryError("cannot create the engine")
        self._e = ffi.gc(ptr, lib.rt_engine_free)  # rt_engine_free stops a running thread first
        self._sampled: set[int] = set()  # flows that keep raw samples

    # -- graph
    def add_endpoint(self) -> int:
        return _check(lib.rt_add_endpoint(self._e), "endpoint")

    def add_cell(self, type_: str, config_type: str | None = None, fields: dict | None = None,
                 outputs: int = 1) -> int:
        """Any cell through the engine's one entry point: its type name and config struct."""
        cfg = ffi.new(f"{config_type} *", fields or {}) if config_type else ffi.NULL
        return _check(lib.rt_add_cell(self._e, type_.encode(), cfg, outputs), type_)

    def add_pass(self) -> int:
        return self.add_cell("pass")

    def add_bw(self, rate_bps: int = 0, *, overhead: int = 0, queue: str = "infinite",
               limit_packets: int = 0, limit_bytes: int = 0, aqm: str = "none", target_ns: int = 0,
               interval_ns: int = 0, red_min: int = 0, red_max: int = 0, red_max_p: float = 0.0,
               trace_ns: list[int] | None = None, trace_period_ns: int = 0, trace_mtu: int = 1500,
               trace_loop: bool = True) -> int:
        """A bw cell (or bw_trace, given Mahimahi opportunities) with its queue and AQM."""
        fields = {"rate_bps": rate_bps, "overhead_bytes": overhead, "queue_kind": QUEUE_KINDS[queue],
                  "limit_packets": limit_packets, "limit_bytes": limit_bytes, "aqm": AQMS[aqm],
                  "target_ns": target_ns, "interval_ns": interval_ns, "red_min_bytes": red_min,
                  "red_max_bytes": red_max, "red_max_p": red_max_p}
        if trace_ns is None:
            return self.add_cell("bw", "rt_bw_config", fields)
        keep = ffi.new("uint64_t[]", trace_ns)  # alive until the engine has copied it
        fields.update(trace_ns=keep, trace_len=len(trace_ns), trace_period_ns=trace_period_ns,
                      trace_mtu=trace_mtu, trace_loop=int(trace_loop))
        return self.add_cell("bw_trace", "rt_bw_config", fields)

    def add_token_bucket(self, rate_bps: int, burst: int, *, limit: int = 0, peak_rate_bps: int = 0,
                         min_burst: int = 0) -> int:
        return self.add_cell("token_bucket", "rt_token_bucket_config",
                             {"rate_bps": rate_bps, "burst_bytes": burst, "limit_bytes": limit,
                              "peak_rate_bps": peak_rate_bps, "min_burst_bytes": min_burst})

    def add_duplicate(self, rate: float) -> int:
        return self.add_cell("duplicate", "rt_rate_config", {"rate": rate})

    def add_corrupt(self, rate: float) -> int:
        return self.add_cell("corrupt", "rt_rate_config", {"rate": rate})

    def add_router(self, routes: list[tuple[int, int, int]], outputs: int, default_port: int = -1) -> int:
        """routes: (IPv4 address, prefix length, port) with addresses as integers."""
        arr = ffi.new("rt_route[]", max(1, len(routes)))
        for i, (addr, plen, port) in enumerate(routes):
            arr[i].addr = addr
            arr[i].mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
            arr[i].port = port
        return self.add_cell("router", "rt_router_config",
                             {"routes": arr, "n_routes": len(routes), "default_port": default_port}, outputs)

    def add_outage(self, up_ns: int = 0, down_ns: int = 0, down: bool = False) -> int:
        return self.add_cell("outage", "rt_outage_config", {"up_ns": up_ns, "down_ns": down_ns, "down": int(down)})

    def add_delay(self, delay_ns: int, *, jitter_ns: int = 0, distribution: str = "uniform",
                  correlation: float = 0.0, reorder: bool = False) -> int:
        return self.add_cell("delay", "rt_delay_config",
                             {"delay_ns": delay_ns, "jitter_ns": jitter_ns,
                              "distribution": DISTRIBUTIONS[distribution], "correlation": correlation,
                              "reorder": int(reorder)})

    def add_loss(self, *, rate: float | None = None, gilbert_elliott: dict | None = None,
                 pattern: list[float] | None = None) -> int:
        if gilbert_elliott is not None:
            return self.add_cell("loss", "rt_loss_config",
                                 {"model": lib.RT_LOSS_GILBERT_ELLIOTT, **{k: gilbert_elliott[k] for k in "prhk"}})
        if pattern is not None:
            arr = ffi.new("double[]", pattern)
            return self.add_cell("loss", "rt_loss_config",
                                 {"model": lib.RT_LOSS_PATTERN, "pattern": arr, "pattern_len": len(pattern)})
        return self.add_cell("loss", "rt_loss_config", {"model": lib.RT_LOSS_BERNOULLI, "rate": rate or 0.0})

    def _add_steps(self, type_: str, steps: list[tuple[int, float]], period_ns: int, loop: bool) -> int:
        at = ffi.new("uint64_t[]", [t for t, _ in steps])
        value = ffi.new("double[]", [float(v) for _, v in steps])
        return self.add_cell(type_, "rt_steps_config", {"at_ns": at, "value": value, "len": len(steps),
                                                        "period_ns": period_ns, "loop": int(loop)})

    def add_delay_trace(self, steps: list[tuple[int, int]], *, period_ns: int = 0, loop: bool = False) -> int:
        """Delay (ns) from `steps` of (time since start in ns, delay in ns), the first at 0."""
        return self._add_steps("delay_trace", steps, period_ns, loop)

    def add_loss_trace(self, steps: list[tuple[int, float]], *, period_ns: int = 0, loop: bool = False) -> int:
        """Loss probability from `steps` of (time since start in ns, probability), the first at 0."""
        return self._add_steps("loss_trace", steps, period_ns, loop)

    def add_spy(self, path: str, snaplen: int = 0) -> int:
        """A pcap tap writing to `path` (created or truncated now)."""
        raw = ffi.new("char[]", os.fsencode(path))
        node = lib.rt_add_cell(self._e, b"spy", ffi.new("rt_spy_config *", {"path": raw, "snaplen": snaplen}), 1)
        if node == lib.RT_ESYS:
            raise EngineError(f"spy: cannot write `{path}`: {os.strerror(ffi.errno) or 'error'}")
        return _check(node, "spy")

    def attach(self, node: int, netns_path: str | None, ifname: str) -> None:
        """Endpoint `node` sends and receives real frames on `ifname` in that namespace."""
        rc = lib.rt_endpoint_attach(self._e, node, os.fsencode(netns_path) if netns_path else ffi.NULL,
                                    os.fsencode(ifname))
        if rc == lib.RT_ESYS:
            raise EngineError(f"cannot open `{ifname}` in {netns_path}: {os.strerror(ffi.errno)}")
        _check(rc, f"attach `{ifname}`")

    def set_endpoint_addr(self, node: int, addr: int) -> None:
        _check(lib.rt_endpoint_set_addr(self._e, node, addr), "endpoint address")

    def link(self, src: int, port: int, dst: int) -> None:
        _check(lib.rt_link(self._e, src, port, dst), f"link {src}[{port}] -> {dst}")

    # -- control and telemetry
    def param(self, node: int, name: str) -> int:
        """The index of a cell's runtime parameter `name` (as its schema names it)."""
        return _check(lib.rt_cell_param(self._e, node, name.encode()), f"parameter `{name}`")

    def set(self, node: int, name: str, value: float, at_ns: int | None = None) -> None:
        """Change a runtime parameter now, or exactly at logical time `at_ns`; packets held stay."""
        _check(lib.rt_cell_control(self._e, node, self.param(node, name), value, 0 if at_ns is None else at_ns),
               f"set `{name}` = {value}")

    def set_many(self, changes: list[tuple[int, str, float]], at_ns: int | None = None) -> None:
        """Several (node, parameter, value) changes as one: all checked first, then all applied at
        the same logical time with no packet event between them."""
        arr = ffi.new("rt_change[]", len(changes))
        for i, (node, name, value) in enumerate(changes):
            arr[i].node, arr[i].param, arr[i].value = node, self.param(node, name), value
        _check(lib.rt_cell_control_many(self._e, arr, len(changes), 0 if at_ns is None else at_ns), "changes")

    def get(self, node: int, name: str) -> float:
        """The value in force of a runtime parameter."""
        out = ffi.new("double *")
        _check(lib.rt_cell_read(self._e, node, self.param(node, name), out), f"read `{name}`")
        return out[0]

    # -- traffic and time
    def add_flow(self, src: int, dst: int, kind: str, rate_bps: int, size: int, *, samples: bool = False) -> int:
        """A synthetic flow from endpoint `src` to `dst`. With `samples`, the engine also keeps every
        received packet's delay and sequence number (16 bytes each) for flow_samples; without, a flow
        takes fixed memory however long it runs (flow_stats, flow_delay)."""
        fid = _check(lib.rt_add_flow(self._e, src, dst, FLOW_KINDS[kind], rate_bps, size), "flow")
        if samples:
            _check(lib.rt_flow_keep_samples(self._e, fid, 1), "flow samples")
            self._sampled.add(fid)
        return fid

    def run_until(self, t_ns: int) -> None:
        """Process every event up to and including `t_ns`, in this thread (the GIL is released)."""
        _check(lib.rt_run_until(self._e, t_ns), "run")

    def start(self, until_ns: int, clock: str = "virtual") -> None:
        """Run up to `until_ns` in the engine's own thread, as fast as possible or in real time."""
        _check(lib.rt_engine_start(self._e, until_ns, CLOCKS[clock]), "start")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the engine thread to finish; False if `timeout` seconds passed first."""
        rc = lib.rt_engine_wait(self._e, -1 if timeout is None else int(timeout * 1000))
        return rc == lib.RT_OK

    def stop(self) -> None:
        """Stop the engine thread at its next batch of events and wait for it."""
        _check(lib.rt_engine_stop(self._e), "stop")

    @property
    def running(self) -> bool:
        return bool(lib.rt_engine_running(self._e))

    @property
    def now(self) -> int:
        return lib.rt_now(self._e)

    # -- observation
    def counters(self, node: int) -> Counters:
        c = ffi.new("rt_counters *")
        _check(lib.rt_node_counters(self._e, node, c), "counters")
        return Counters(c.in_packets, c.in_bytes, c.out_packets, c.out_bytes, c.queued_packets,
                        c.queued_bytes, c.dropped_packets, c.dropped_bytes, c.created_packets,
                        c.created_bytes, c.modified_packets,
                        {r: c.dropped[i] for i, r in enumerate(DROP_REASONS) if c.dropped[i]},
                        c.delivered_packets, c.delivered_bytes,
                        *((c.first_out_ns, c.last_out_ns) if c.out_packets > c.delivered_packets else (None, None)))

    def lateness(self, node: int) -> "Lateness":
        """How much later than planned endpoint `node`'s frames left its interface (real runs)."""
        out = ffi.new("rt_lateness *")
        _check(lib.rt_endpoint_lateness(self._e, node, out), "lateness")
        return Lateness(out.sent, out.late, out.max_ns, out.sum_ns, list(out.hist))

    # -- packet log
    def open_packet_log(self, path: str, snaplen: int = 0) -> None:
        """Append records of logged nodes' events to `path` (see rt_log_record), each with at most
        `snaplen` bytes of its IP packet (0: all of them); before time runs."""
        if not 0 <= snaplen < 2**32:
            raise EngineError(f"packet log snaplen {snaplen}: 0 (whole packets) or a byte count")
        if lib.rt_packet_log_open(self._e, os.fsencode(path), snaplen) == lib.RT_ESYS:
            raise EngineError(f"cannot open the packet log {path}: {os.strerror(ffi.errno)}")

    def log_node(self, node: int, on: bool = True) -> None:
        _check(lib.rt_packet_log_node(self._e, node, int(on)), "log a node")

    def flush_packet_log(self) -> None:
        _check(lib.rt_packet_log_flush(self._e), "flush the packet log")

    def packet_log_stats(self) -> tuple[int, int]:
        """(records written, records lost to failed writes)."""
        w, lost = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        lib.rt_packet_log_stats(self._e, w, lost)
        return w[0], lost[0]

    def set_late_threshold(self, ns: int) -> None:
        """Frames sent more than `ns` after their time count as late (before time runs)."""
        _check(lib.rt_engine_set_late_threshold(self._e, ns), "late threshold")

    def set_nice(self, nice: int) -> None:
        """The nice value (-20..19) the engine thread of a real run takes (before time runs)."""
        _check(lib.rt_engine_set_nice(self._e, nice), "engine thread nice value")

    @property
    def nice(self) -> int | None:
        """The nice value the real run's engine thread has (None before that thread started)."""
        out = ffi.new("int *")
        return out[0] if lib.rt_engine_nice(self._e, out) == lib.RT_OK else None

    def flow_stats(self, flow: int) -> dict:
        """Counts of a flow: sent; received at its destination; misdelivered (reached another
        endpoint); reordered (received after a later-sent packet); sum of one-way delays (ns)."""
        s = ffi.new("rt_flow_stats *")
        _check(lib.rt_flow_stats_get(self._e, flow, s), "flow stats")
        return {"sent_packets": s.sent_packets, "sent_bytes": s.sent_bytes,
                "received_packets": s.received_packets, "received_bytes": s.received_bytes,
                "misdelivered_packets": s.misdelivered_packets, "misdelivered_bytes": s.misdelivered_bytes,
                "reordered_packets": s.reordered_packets, "delay_sum_ns": s.delay_sum_ns}

    def flow_delay(self, flow: int) -> DelayStats:
        """The one-way delays of a flow's received packets, from the engine's fixed-size histogram."""
        s, hist = ffi.new("rt_flow_stats *"), ffi.new("uint64_t[]", HIST_BUCKETS)
        _check(lib.rt_flow_delay_hist(self._e, flow, s, hist), "flow delays")  # one snapshot of both
        n = s.received_packets
        return DelayStats(n, s.delay_sum_ns, s.delay_min_ns if n else 0, s.delay_max_ns,
                          list(ffi.unpack(hist, HIST_BUCKETS)))

    def flow_delays(self, flow: int) -> list[int]:
        """One-way delays (ns) of every received packet of a flow, in arrival order (a flow added
        with samples=True)."""
        return self.flow_samples(flow)[0]

    def flow_samples(self, flow: int) -> tuple[list[int], list[int]]:
        """(delays in ns, sequence numbers) of every received packet of a flow, in arrival order;
        only for a flow added with samples=True."""
        if flow not in self._sampled:
            raise EngineError(f"flow {flow} keeps no samples: add it with samples=True "
                              "(flow_delay gives its delay distribution)")
        n = self.flow_stats(flow)["received_packets"]
        delays = ffi.new("uint64_t[]", max(n, 1))
        seqs = ffi.new("uint64_t[]", max(n, 1))
        got = lib.rt_flow_samples(self._e, flow, delays, seqs, n)
        return list(ffi.unpack(delays, got)), list(ffi.unpack(seqs, got))

"""A thin typed wrapper over the C engine; every call checks the engine's error codes."""
from __future__ import annotations

from dataclasses import dataclass

from ._engine import ffi, lib

ABI_VERSION = 1
if lib.rt_abi_version() != ABI_VERSION:  # a stale build of the extension
    raise ImportError(f"rattan engine ABI {lib.rt_abi_version()} does not match {ABI_VERSION}: reinstall rattan")

NEVER = 2**64 - 1
DROP_REASONS = ("queue_full", "aqm", "loss", "policer", "no_route", "outage", "pool")
QUEUE_KINDS = {"infinite": lib.RT_QUEUE_INFINITE, "droptail": lib.RT_QUEUE_DROPTAIL,
               "drophead": lib.RT_QUEUE_DROPHEAD}
DISTRIBUTIONS = {"uniform": lib.RT_DIST_UNIFORM, "normal": lib.RT_DIST_NORMAL,
                 "pareto": lib.RT_DIST_PARETO, "paretonormal": lib.RT_DIST_PARETONORMAL}
AQMS = {"none": lib.RT_AQM_NONE, "codel": lib.RT_AQM_CODEL, "pie": lib.RT_AQM_PIE, "red": lib.RT_AQM_RED}
FLOW_KINDS = {"cbr": lib.RT_FLOW_CBR, "poisson": lib.RT_FLOW_POISSON}
_ERRORS = {lib.RT_ENOMEM: "out of memory", lib.RT_EINVAL: "invalid argument",
           lib.RT_ERANGE: "no such node or port", lib.RT_ESTATE: "output already linked"}


class EngineError(RuntimeError):
    """The engine refused a request (its error code, in words)."""


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


class Engine:
    """One engine instance: nodes (endpoints and cells), links, flows, virtual time."""

    def __init__(self, seed: int = 1) -> None:
        if not 0 <= seed < 2**64:
            raise EngineError("seed must be in [0, 2^64)")
        ptr = lib.rt_engine_new(seed)
        if ptr == ffi.NULL:
            raise MemoryError("cannot create the engine")
        self._e = ffi.gc(ptr, lib.rt_engine_free)
        self._loss_patterns = []  # keep pattern arrays alive until the engine copied them

    # -- graph
    def add_endpoint(self) -> int:
        return _check(lib.rt_add_endpoint(self._e), "endpoint")

    def add_pass(self) -> int:
        return _check(lib.rt_add_pass(self._e), "pass")

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
        keep = None
        if trace_ns is not None:
            keep = ffi.new("uint64_t[]", trace_ns)
            fields.update(trace_ns=keep, trace_len=len(trace_ns), trace_period_ns=trace_period_ns,
                          trace_mtu=trace_mtu, trace_loop=int(trace_loop))
        cfg = ffi.new("rt_bw_config *", fields)
        node = _check(lib.rt_add_bw(self._e, cfg), "bw")
        del keep  # the engine copied the trace
        return node

    def add_token_bucket(self, rate_bps: int, burst: int, *, limit: int = 0, peak_rate_bps: int = 0,
                         min_burst: int = 0) -> int:
        cfg = ffi.new("rt_token_bucket_config *", {"rate_bps": rate_bps, "burst_bytes": burst,
                                                   "limit_bytes": limit, "peak_rate_bps": peak_rate_bps,
                                                   "min_burst_bytes": min_burst})
        return _check(lib.rt_add_token_bucket(self._e, cfg), "token_bucket")

    def add_duplicate(self, rate: float) -> int:
        return _check(lib.rt_add_duplicate(self._e, rate), "duplicate")

    def add_corrupt(self, rate: float) -> int:
        return _check(lib.rt_add_corrupt(self._e, rate), "corrupt")

    def add_router(self, routes: list[tuple[int, int, int]], outputs: int, default_port: int = -1) -> int:
        """routes: (IPv4 address, prefix length, port) with addresses as integers."""
        arr = ffi.new("rt_route[]", max(1, len(routes)))
        for i, (addr, plen, port) in enumerate(routes):
            arr[i].addr = addr
            arr[i].mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
            arr[i].port = port
        return _check(lib.rt_add_router(self._e, arr, len(routes), outputs, default_port), "router")

    def add_outage(self, up_ns: int = 0, down_ns: int = 0, down: bool = False) -> int:
        return _check(lib.rt_add_outage(self._e, up_ns, down_ns, int(down)), "outage")

    def set_endpoint_addr(self, node: int, addr: int) -> None:
        _check(lib.rt_endpoint_set_addr(self._e, node, addr), "endpoint address")

    def add_delay(self, delay_ns: int, *, jitter_ns: int = 0, distribution: str = "uniform",
                  correlation: float = 0.0, reorder: bool = False) -> int:
        cfg = ffi.new("rt_delay_config *", {"delay_ns": delay_ns, "jitter_ns": jitter_ns,
                                            "distribution": DISTRIBUTIONS[distribution],
                                            "correlation": correlation, "reorder": int(reorder)})
        return _check(lib.rt_add_delay(self._e, cfg), "delay")

    def add_loss(self, *, rate: float | None = None, gilbert_elliott: dict | None = None,
                 pattern: list[float] | None = None) -> int:
        fields: dict = {}
        if gilbert_elliott is not None:
            fields = {"model": lib.RT_LOSS_GILBERT_ELLIOTT, **{k: gilbert_elliott[k] for k in "prhk"}}
        elif pattern is not None:
            arr = ffi.new("double[]", pattern)
            fields = {"model": lib.RT_LOSS_PATTERN, "pattern": arr, "pattern_len": len(pattern)}
            self._loss_patterns.append(arr)
        else:
            fields = {"model": lib.RT_LOSS_BERNOULLI, "rate": rate or 0.0}
        cfg = ffi.new("rt_loss_config *", fields)
        node = _check(lib.rt_add_loss(self._e, cfg), "loss")
        self._loss_patterns.clear()
        return node

    def link(self, src: int, port: int, dst: int) -> None:
        _check(lib.rt_link(self._e, src, port, dst), f"link {src}[{port}] -> {dst}")

    # -- control
    def bw_set_rate(self, node: int, rate_bps: int) -> None:
        _check(lib.rt_bw_set_rate(self._e, node, rate_bps), "set rate")

    def outage_set_down(self, node: int, down: bool) -> None:
        _check(lib.rt_outage_set_down(self._e, node, int(down)), "set outage state")

    # -- traffic and time
    def add_flow(self, src: int, dst: int, kind: str, rate_bps: int, size: int) -> int:
        return _check(lib.rt_add_flow(self._e, src, dst, FLOW_KINDS[kind], rate_bps, size), "flow")

    def run_until(self, t_ns: int) -> None:
        _check(lib.rt_run_until(self._e, t_ns), "run")

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
                        {r: c.dropped[i] for i, r in enumerate(DROP_REASONS) if c.dropped[i]})

    def flow_stats(self, flow: int) -> dict:
        s = ffi.new("rt_flow_stats *")
        _check(lib.rt_flow_stats_get(self._e, flow, s), "flow stats")
        return {"sent_packets": s.sent_packets, "sent_bytes": s.sent_bytes,
                "received_packets": s.received_packets, "received_bytes": s.received_bytes}

    def flow_delays(self, flow: int) -> list[int]:
        """One-way delays (ns) of every received packet of a flow, in arrival order."""
        return self.flow_samples(flow)[0]

    def flow_samples(self, flow: int) -> tuple[list[int], list[int]]:
        """(delays in ns, sequence numbers) of every received packet of a flow, in arrival order."""
        n = self.flow_stats(flow)["received_packets"]
        delays = ffi.new("uint64_t[]", max(n, 1))
        seqs = ffi.new("uint64_t[]", max(n, 1))
        got = lib.rt_flow_samples(self._e, flow, delays, seqs, n)
        return list(ffi.unpack(delays, got)), list(ffi.unpack(seqs, got))

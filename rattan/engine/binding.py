"""A thin typed wrapper over the C engine; every call checks the engine's error codes."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ._engine import ffi, lib

ABI_VERSION = 16
if lib.rt_abi_version() != ABI_VERSION:  # a stale build of the extension
    raise ImportError(f"rattan engine ABI {lib.rt_abi_version()} does not match {ABI_VERSION}: reinstall rattan")

NEVER = 2**64 - 1
DROP_REASONS = tuple(ffi.string(lib.rt_drop_reason_name(i)).decode() for i in range(lib.RT_DROP_REASONS))
LOG_RECORD_SIZE = ffi.sizeof("rt_log_record")  # readers check their layout against it
LOG_RECORD_FIELDS = tuple((name, ffi.offsetof("rt_log_record", name))
                          for name in ("t", "sojourn_ns", "fseq", "node", "size", "flow", "event", "reason", "cap_len"))
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
        detail = ffi.string(lib.rt_last_error()).decode(errors="replace")
        raise EngineError(f"{what}: {detail or _ERRORS.get(rc, f'error {rc}')}")
    return rc


def _fill(slot, value, keep: list) -> None:
    """Write a plan value into an rt_value: dicts are records, lists of numbers arrays, other lists
    lists; booleans are integers; None is left out by the caller. `keep` holds what C reads."""
    if isinstance(value, bool) or isinstance(value, int):
        if not -2**63 <= value < 2**63:
            raise EngineError(f"{value} is out of the engine's integer range")
        slot.kind, slot.i = lib.RT_VAL_INT, int(value)
    elif isinstance(value, float):
        slot.kind, slot.f = lib.RT_VAL_FLOAT, value
    elif isinstance(value, str):
        raw = ffi.new("char[]", value.encode())
        keep.append(raw)
        slot.kind, slot.s, slot.len = lib.RT_VAL_STR, raw, len(raw) - 1
    elif isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if v is not None]
        arr = ffi.new("rt_value[]", max(1, len(items)))
        keep.append(arr)
        for i, (k, v) in enumerate(items):
            name = ffi.new("char[]", str(k).encode())
            keep.append(name)
            arr[i].name = name
            _fill(arr[i], v, keep)
        slot.kind, slot.items, slot.len = lib.RT_VAL_RECORD, arr, len(items)
    elif isinstance(value, (list, tuple)):
        numbers = value and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        if numbers and all(isinstance(x, int) for x in value):
            arr = ffi.new("int64_t[]", list(value))
            slot.kind, slot.ints = lib.RT_VAL_INTS, arr
        elif numbers:
            arr = ffi.new("double[]", [float(x) for x in value])
            slot.kind, slot.floats = lib.RT_VAL_FLOATS, arr
        else:
            arr = ffi.new("rt_value[]", max(1, len(value)))
            for i, v in enumerate(value):
                _fill(arr[i], v, keep)
            slot.kind, slot.items = lib.RT_VAL_LIST, arr
        keep.append(arr)
        slot.len = len(value)
    else:
        raise EngineError(f"a {type(value).__name__} cannot be a cell parameter")


def load_cells(path: str) -> None:
    """Register the cell types of a plugin's shared library in the engine (once per process)."""
    _check(lib.rt_load_cells(os.fsencode(path)), f"cell library {path}")


def cell_types() -> list[str]:
    """The cell types registered in the engine: built-in first, then plugins', as loaded."""
    return [ffi.string(lib.rt_cell_type_name(i)).decode() for i in range(lib.rt_cell_type_count())]


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
    nanoseconds (`hist`); `late` of them beyond the engine's threshold; `tx_calls` the sendmmsg
    calls that carried them (a call carries several frames, of several endpoints)."""
    sent: int
    late: int
    max_ns: int
    sum_ns: int
    hist: list
    tx_calls: int = 0
    early: int = 0  # sent before their time: 0 unless the engine's loop is wrong

    def quantile_us(self, q: float) -> float:
        """The q-quantile of lateness, in microseconds: its bucket's upper edge (an upper bound
        within 1/64 of the value), at most the largest lateness seen."""
        b = hist_bucket_bounds(self.hist, q)
        if b is None:
            return 0.0
        return min(b[1] - 1, self.max_ns) / 1000

    def merged(self, other: "Lateness") -> "Lateness":
        return Lateness(self.sent + other.sent, self.late + other.late, max(self.max_ns, other.max_ns),
                        self.sum_ns + other.sum_ns, [a + b for a, b in zip(self.hist, other.hist)],
                        self.tx_calls + other.tx_calls, self.early + other.early)


# rt_timing's two parts, in the header's order: the figures the loop chose, then its counters
TIMING_CHOSEN = tuple(name for name, _ in ffi.typeof("rt_timing_chosen").fields)
TIMING_COUNTERS = tuple(name for name, _ in ffi.typeof("rt_timing_counters").fields)
TIMING_FIELDS = TIMING_CHOSEN + TIMING_COUNTERS


OFFLOADS = ("gso", "plain")


def _offload(mode: str) -> int:
    """The engine's constant for an offload mode (`plain` or `gso`)."""
    if mode not in OFFLOADS:
        raise EngineError(f"offload mode must be `gso` or `plain`, not `{mode}`")
    return lib.RT_OFFLOAD_GSO if mode == "gso" else lib.RT_OFFLOAD_PLAIN


@dataclass(frozen=True)
class ThreadStats:
    """The load of one engine thread: its core (None: not pinned), its share of the graph, the time it
    worked (busy_ns) against the time time ran (wall_ns), the events it fired and the packets that
    entered its shards."""
    cpu: int | None
    shards: int
    nodes: int
    busy_ns: int
    wall_ns: int
    events: int
    packets: int
    regions: int = 0      # of its shards, the regions of split channels (cuts in or out)
    rebalances: int = 0   # the engine's rebalancing passes that moved a region

    @property
    def load(self) -> float:
        """busy / wall: the share of a core it used while time ran (0 before time ran)."""
        return self.busy_ns / self.wall_ns if self.wall_ns else 0.0


@dataclass(frozen=True)
class SplitStats:
    """Channels split over threads (Engine.cut): cuts in force, the lookahead now (None: no cut), windows
    run, packets handed off across cuts, rebalancing passes that moved a region, and hand-offs that
    found their destination's next event in the past (always 0 unless a cell's minimum hold is wrong);
    `real`: a real run split over threads (Engine.set_split_real), where `ring_full` hand-offs found
    their ring full and were dropped (counted at their destination as `handoff`)."""
    cuts: int
    lookahead_ns: int | None
    windows: int
    handoffs: int
    rebalances: int
    late_handoffs: int
    ring_full: int = 0
    real: bool = False


class Port:
    """An interface's receive ring and transmit socket, kept open across engines and lent to one at
    a time (Engine.attach_port): opening and closing them is most of a real run's start-up cost."""

    def __init__(self, netns_path: str | None, ifname: str, offload: str = "plain") -> None:
        self.netns_path, self.ifname, self.offload = netns_path, ifname, offload
        ptr = lib.rt_port_open(os.fsencode(netns_path) if netns_path else ffi.NULL, os.fsencode(ifname),
                               _offload(offload))
        if ptr == ffi.NULL:
            raise EngineError(f"cannot open `{ifname}` in {netns_path}: {os.strerror(ffi.errno)}")
        self._p = ffi.gc(ptr, lib.rt_port_close)  # while lent, closed when given back

    def close(self) -> None:
        """Close the ring and socket now (or, while an engine has the port, when it gives it back)."""
        if self._p is not None:
            ffi.release(self._p)
            self._p = None


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
        self._lent: list[Port] = []  # ports lent to it (attach_port)

    # -- graph
    def add_endpoint(self) -> int:
        return _check(lib.rt_add_endpoint(self._e), "endpoint")

    def add_cell(self, type_: str, config: dict | None = None, outputs: int = 1, *, name: str | None = None) -> int:
        """A cell of any registered type, from its configuration in the plan's form (the cell
        schema's parameters, integers in base units). Refused parameters raise EngineError naming
        the cell (`name`, or its type) and the parameter."""
        keep: list = []
        root = ffi.new("rt_value *")
        _fill(root, dict(config or {}), keep)
        what = f"cell `{name}` ({type_})" if name else f"cell type `{type_}`"
        rc = lib.rt_add_cell(self._e, type_.encode(), root, outputs)
        if rc < 0:
            detail = ffi.string(lib.rt_last_error()).decode(errors="replace")
            detail = detail.replace(f"cell type `{type_}`: ", "", 1)
            raise EngineError(f"{what}: {detail or _ERRORS.get(rc, f'error {rc}')}")
        return rc

    def attach(self, node: int, netns_path: str | None, ifname: str, offload: str = "plain") -> None:
        """Endpoint `node` sends and receives real frames on `ifname` in that namespace, in mode
        `offload`: `plain` (frames of at most the MTU) or `gso` (virtio-net headers, super-frames)."""
        rc = lib.rt_endpoint_attach(self._e, node, os.fsencode(netns_path) if netns_path else ffi.NULL,
                                    os.fsencode(ifname), _offload(offload))
        if rc == lib.RT_ESYS:
            raise EngineError(f"cannot open `{ifname}` in {netns_path}: {os.strerror(ffi.errno)}")
        _check(rc, f"attach `{ifname}`")

    def attach_port(self, node: int, port: "Port") -> None:
        """Endpoint `node` sends and receives on a Port lent to this engine until `return_ports`
        (or until the engine is freed); the frames waiting in its ring are discarded first."""
        _check(lib.rt_endpoint_attach_port(self._e, node, port._p), f"attach port `{port.ifname}`")
        self._lent.append(port)  # the Port object outlives its loan

    def set_segmenting(self, node: int, on: bool = True) -> None:
        """GSO mode: endpoint `node` cuts the super-frames it receives into segments at ingress."""
        _check(lib.rt_endpoint_set_segmenting(self._e, node, int(on)), "segmenting")

    def gso_stats(self, node: int) -> dict[str, int]:
        """Super-frames endpoint `node` received, the segments they stood for, how many it cut; super-frames
        it sent merged from segments, and the segments they stood for."""
        out = ffi.new("rt_gso_stats *")
        _check(lib.rt_endpoint_gso_stats(self._e, node, out), "GSO statistics")
        return {"super_frames": out.super_frames, "super_segments": out.super_segments, "cut_frames": out.cut_frames,
                "merged_frames": out.merged_frames, "merged_segments": out.merged_segments}

    def set_merging(self, node: int, on: bool = True) -> None:
        """GSO mode: endpoint `node` sends consecutive TCP segments of a wake-up as one super-frame (default on)."""
        _check(lib.rt_endpoint_set_merging(self._e, node, int(on)), "merging")

    def return_ports(self) -> None:
        """Give back every lent Port (the engine must be stopped; it cannot forward real frames again)."""
        _check(lib.rt_engine_return_ports(self._e), "return ports")
        self._lent.clear()

    def set_macs(self, node: int, src: str, dst: str) -> None:
        """Frames sent on the attached endpoint `node`'s interface get these Ethernet addresses
        (`aa:bb:cc:dd:ee:ff`), as upstream Rattan's sender writes them."""
        raw = [bytes.fromhex(m.replace(":", "")) for m in (src, dst)]
        _check(lib.rt_endpoint_set_macs(self._e, node, raw[0], raw[1]), "endpoint MAC addresses")

    def set_endpoint_addr(self, node: int, addr: int) -> None:
        _check(lib.rt_endpoint_set_addr(self._e, node, addr), "endpoint address")

    def link(self, src: int, port: int, dst: int) -> None:
        _check(lib.rt_link(self._e, src, port, dst), f"link {src}[{port}] -> {dst}")

    def cut(self, src: int, port: int = 0) -> None:
        """Make the link out of `src`'s `port` a cut between regions that engine threads run apart
        (its destination must hold every packet a minimum time, as `delay` does); before time runs."""
        _check(lib.rt_link_cut(self._e, src, port), f"cut {src}[{port}]")

    def set_rebalance(self, every: int) -> None:
        """Give regions to threads again every `every` windows by their measured CPU time (0: never)."""
        _check(lib.rt_engine_set_rebalance(self._e, every), "rebalance")

    def split_stats(self) -> SplitStats:
        """What splitting channels into regions did: cuts, lookahead, windows, hand-offs, rebalancing."""
        out = ffi.new("rt_split_stats *")
        _check(lib.rt_engine_split_stats(self._e, out), "split stats")
        return SplitStats(out.cuts, None if out.lookahead_ns == NEVER else out.lookahead_ns, out.windows,
                          out.handoffs, out.rebalances, out.late_handoffs, out.ring_full, bool(out.real))

    def set_split_real(self, on: bool = True, ring_slots: int = 0) -> None:
        """Real runs on more than one thread: split channels at their cuts there too, each cut a pair of
        lock-free rings of `ring_slots` entries (a power of two; 0: the default, 4096); before time runs."""
        _check(lib.rt_engine_set_split_real(self._e, 1 if on else 0, ring_slots), "split real run")

    # -- threads
    def set_threads(self, n: int, cpus: list[int] | None = None) -> None:
        """Run time on `n` threads (before time first runs), thread i pinned to core cpus[i] if given;
        results in virtual time are the same for every `n`."""
        if cpus is not None and len(cpus) != n:
            raise EngineError(f"{n} threads need {n} cores, {len(cpus)} given")
        arr = ffi.new("int[]", list(cpus)) if cpus is not None else ffi.NULL
        _check(lib.rt_engine_set_threads(self._e, n, arr), "engine threads")

    @property
    def threads(self) -> int:
        """The threads time runs on (before it ran: as asked; after: min(asked, shards))."""
        return lib.rt_engine_threads(self._e)

    def thread_stats(self) -> list[ThreadStats]:
        """The load of every engine thread, also while time runs."""
        out, result = ffi.new("rt_thread_stats *"), []
        for i in range(lib.rt_engine_threads(self._e)):
            _check(lib.rt_engine_thread_stats(self._e, i, out), "thread stats")
            result.append(ThreadStats(None if out.cpu < 0 else out.cpu, out.shards, out.nodes, out.busy_ns,
                                      out.wall_ns, out.events, out.packets, out.regions, out.rebalances))
        return result

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
    def add_flow(self, src: int, dst: int, kind: str, rate_bps: int, size: int, *, samples: bool = False,
                 start_ns: int | None = None) -> int:
        """A synthetic flow from endpoint `src` to `dst`. With `samples`, the engine also keeps every
        received packet's delay and sequence number (16 bytes each) for flow_samples; without, a flow
        takes fixed memory however long it runs (flow_stats, flow_delay). With `start_ns`, its first
        packet leaves at that logical time instead of at once."""
        fid = _check(lib.rt_add_flow(self._e, src, dst, FLOW_KINDS[kind], rate_bps, size), "flow")
        if start_ns is not None:
            _check(lib.rt_flow_start_at(self._e, fid, start_ns), "flow start")
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
        return Lateness(out.sent, out.late, out.max_ns, out.sum_ns, list(out.hist), out.tx_calls, out.early)

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

    def set_precise(self, on: bool = True) -> None:
        """Precise timing for a real run (before time runs): spin the last stretch before each
        departure, the stretch measured when the loop starts (docs/running.md, "Timing")."""
        _check(lib.rt_engine_set_precise(self._e, int(on)), "precise timing")

    def set_coalesce(self, ns: int | None) -> None:
        """The least gap between two timer wake-ups of a real run, in ns (None: derived from the
        wake-ups seen, the default; 0: a wake-up for every departure, the timing before batching)."""
        _check(lib.rt_engine_set_coalesce(self._e, lib.RT_COALESCE_AUTO if ns is None else ns), "coalescing window")

    def set_slack(self, node: int, ns: int = lib.RT_SLACK_DEFAULT_NS) -> None:
        """Departures in batches of the paced cell `node` in a real run (before time runs): each may leave
        up to 8 of its own departure intervals late, at most `ns` (0: on time), to share a wake-up."""
        _check(lib.rt_cell_set_slack(self._e, node, ns), "departure slack")

    def timing(self) -> dict | None:
        """How the real run's loop sleeps and wakes: the figures it chose (precise, stretch_ns,
        calib_p50_ns, margin_ns, coalesce_ns) and its counters (wakeups, timer_wakeups,
        early_wakeups, timer_sets, spin_ns, tx_calls, tx_frames); None before the loop started."""
        out = ffi.new("rt_timing *")
        if lib.rt_engine_timing(self._e, out) != lib.RT_OK:
            return None
        return {**{f: getattr(out.chosen, f) for f in TIMING_CHOSEN},
                **{f: getattr(out.counters, f) for f in TIMING_COUNTERS}}

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

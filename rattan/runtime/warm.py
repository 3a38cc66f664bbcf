"""Warm machine resources: networks kept open between the experiments of one worker process.

Opening a channel instance makes its namespaces and veths, then the engine opens an AF_PACKET
receive ring (8 MiB, TPACKET_V2) and a transmit socket on each engine-side veth; closing frees
them. Most of that time is the kernel's: every bind, ring set-up and close of a packet socket waits
for an RCU grace period (synchronize_net). A worker that runs experiment after experiment keeps
them instead, as the paper's per-machine manager does: `pool().acquire(plan, channel)` gives an
open network (a free one of the same endpoints when there is one), `LiveRun(..., networks=[net])`
(or the library's `rattan.run(..., network=net)`) runs on it with a fresh engine that borrows its
rings, and `release(net)` resets it for the next experiment.

The reset keeps the veth pairs and the rings and replaces everything an experiment can touch: every
process inside the namespaces is stopped (netns.stop_inside, by PID; the reset fails if one
survives), then each endpoint's veth moves straight into a new namespace, which takes the old
one's name once that is removed, and is configured as `ChannelNetwork.open` does it (address, MTU,
MAC, neighbours, checksum offload, IPv6 off, no receive packet steering). So sockets (TIME_WAIT and orphans included), routes,
neighbour entries, qdiscs and filters, firewall rules, TCP metrics and sysctls are the fresh
namespace's; the engine is new for each experiment (its queues empty, its counters zero), and the
frames left in a ring are discarded when the next engine borrows it (Engine.attach_port). A
network that cannot be reset is closed, not reused, and so is one whose run failed or raised
(`release(net, reuse=False)`): what went wrong may be in it. The reset runs in a thread while the
run's result is stored and the next run starts, on a spare network (Pool).

Measured here: a cold network costs its namespaces and veths (~20 ms), and for each endpoint a ring
opened (~25 ms) and closed (~40 ms; RCU grace periods); a reset costs one move of each endpoint's
veth (~25 ms, an RCU barrier in the kernel) and little else. Per experiment of `rattan batch`, the
setup and teardown together drop to 0.3-0.5 of what they are without reuse
(benchmarks/batch_overhead.py).

A pooled network keeps its instance record (/run/rattan/instances/K.json, this process's PID), so
if the process dies, even by SIGKILL, the next start removes its namespaces (netns.clean_stale); at
a normal exit the pool closes everything (atexit; at SIGTERM too with `close_on_signals`). Ray
ends its workers without atexit: the embedded RayExecutor removes what their pools held. Upstream
Rattan documents (TOML/YAML, whose Compatible mode puts a side in the namespace rattan runs in) are
not pooled: acquire opens a fresh network and release closes it.
"""
from __future__ import annotations

import atexit
import json
import os
import threading
from typing import Any

from ..engine.binding import Port
from . import netns
from .netns import ChannelNetwork, NetnsError, netlink, new_rattan_id

MAX_IDLE = 8        # free networks kept per pool; more are closed at release
VETH_MTU = 1500     # what a new veth has (and ChannelNetwork.open leaves)
VETH_TXQUEUELEN = 1000
RESET_WAIT_S = 30.0  # longest wait for a network being reset (a reset takes ~0.1 s; a hung one is left)


class WarmNetwork(ChannelNetwork):
    """A ChannelNetwork whose engine-side veths keep a Port (receive ring, transmit socket) open
    between runs, and that can be reset to the state `open` leaves."""

    def __init__(self, endpoints: list[str], channel: str = "", upstream_variables: bool = False) -> None:
        super().__init__(endpoints, channel, upstream_variables)
        self.ports: dict[str, Port] = {}
        self.runs = 0  # experiments it carried

    def open(self) -> "WarmNetwork":
        super().open()
        try:
            for name, ep in self.endpoints.items():
                self.ports[name] = Port(self.engine_netns_path, ep.engine_ifname, self.offload)
        except BaseException:
            self.close()
            raise
        return self

    def rename(self, channel: str) -> None:
        """Carry channel `channel` next (RATTAN_CHANNEL, the instance record) with a new RATTAN_ID."""
        self.channel, self.rattan_id = channel, new_rattan_id()
        self._record()

    def _record(self, passing: list[str] = ()) -> None:
        """The instance record: this process's PID and every namespace it holds, those being made
        in a reset too, so that netns.clean_stale removes them all if the process dies. Replaced
        whole (the index is ours: no registry lock, which a reset of another network may hold)."""
        path = netns._state_path(self.index)
        with open(path + ".tmp", "w") as f:
            json.dump({"pid": os.getpid(), "channel": self.channel,
                       "namespaces": list(self._namespaces) + list(passing)}, f)
        os.replace(path + ".tmp", path)

    def reset(self) -> int:
        """Stop every process inside, then give each endpoint a fresh namespace around its old veth
        (see the module's docstring); how many processes were stopped. NetnsError if a process
        survives or the namespaces cannot be remade (the network must then be closed)."""
        stopped = netns.stop_inside(self._namespaces)
        if left := netns._pids_inside(self._namespaces):
            raise NetnsError(f"processes {', '.join(map(str, left))} still run inside instance {self.index}")
        with netns._registry_lock():  # making a namespace may remount /run/netns (see ChannelNetwork.open)
            self._record([self._passing(ep) for ep in self.endpoints.values()])
            for ep in self.endpoints.values():
                self._renew(ep)
            self._record()
            for ep in self.endpoints.values():
                netns._tune(ep, self.offload)
                netns._neighbours(ep.netns, [ep], [o for o in self.endpoints.values() if o is not ep])
                if self.steered:  # the RPS map moves with the veth: none, as a new veth has
                    netns.set_rps(ep.netns, ep.ifname, frozenset())
        self.steered = False
        self.runs += 1
        return stopped

    @staticmethod
    def _passing(ep: netns.Endpoint) -> str:
        return f"{ep.netns}-renew"

    def _renew(self, ep: netns.Endpoint) -> None:
        """A fresh namespace for endpoint `ep` with its old veth (the peer and its ring stay in the
        engine's namespace). The veth moves once, straight from the old namespace into a new one
        made under a passing name, which then takes the old one's name: each move of an interface
        costs an RCU barrier in the kernel (~25 ms here), as much as a third of a cold start."""
        passing = self._passing(ep)
        netns.create_namespace(passing)
        try:
            with netlink(ep.netns) as ip:
                found = ip.link_lookup(ifname=ep.ifname)
                if not found:
                    raise NetnsError(f"`{ep.ifname}` is gone from {ep.netns}")
                ip.link("set", index=found[0], net_ns_fd=passing)
            netns.remove_namespace(ep.netns)  # the old one goes with whatever the experiment left in it
            netns.rename_namespace(passing, ep.netns)
        except BaseException:
            netns._remove_namespaces([passing])
            raise
        net = netns.subnet(self.index)
        with netlink(ep.netns) as ip:
            idx = ip.link_lookup(ifname=ep.ifname)[0]
            ip.link("set", index=idx, address=ep.mac, mtu=VETH_MTU, txqlen=VETH_TXQUEUELEN)
            ip.addr("add", index=idx, address=ep.address, prefixlen=net.prefixlen)
            ip.link("set", index=idx, state="up")
            ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")

    def close(self) -> None:
        for port in self.ports.values():
            port.close()
        self.ports.clear()
        super().close()


class Pool:
    """Open networks of one process, reused between experiments; see the module's docstring.

    `release` resets a network in a thread of its own (`background`, the default), so that the
    run's result goes on while the namespaces are remade; `acquire` takes a network that is ready,
    else opens a new one while `spares` or fewer of the same endpoints are being reset, else waits
    for one (a worker running one experiment after another ends up with 1 + `spares` networks, used
    in turn). At most `max_idle` free networks are kept (the oldest are closed first). Closed
    (`close`, at exit, or at SIGTERM with `close_on_signals`), it pools nothing: acquire opens a
    network and release closes it, so a run still going on then leaves nothing behind either."""

    def __init__(self, max_idle: int = MAX_IDLE, background: bool = True, spares: int = 1) -> None:
        self.max_idle, self.background, self.spares = max_idle, background, spares
        self.owner = os.getpid()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # a reset ended
        self._free: list[tuple[tuple, WarmNetwork]] = []  # (key, network), oldest first
        self._busy: dict[int, tuple[ChannelNetwork, tuple | None]] = {}  # id(net) -> (net, key)
        self._resetting: dict[int, tuple[tuple, threading.Thread]] = {}  # id(net) -> (key, its thread)
        self.opened = self.reused = self.discarded = 0
        self.errors: list[str] = []  # why background resets failed (their networks were closed)
        self.closed = False
        atexit.register(self._at_exit)

    @staticmethod
    def key(plan: dict, channel: dict[str, Any]) -> tuple | None:
        """What a network must match to carry `channel`; None: not poolable (upstream's layout)."""
        from .run import offload_of, upstream_env
        if upstream_env(plan) is not None:
            return None
        return (tuple(channel["endpoints"]), bool((plan.get("run") or {}).get("upstream_variables")),
                offload_of(plan))

    def _take(self, key: tuple) -> WarmNetwork | None:
        for i in range(len(self._free) - 1, -1, -1):  # the most recently used first
            if self._free[i][0] == key:
                return self._free.pop(i)[1]
        return None

    def acquire(self, plan: dict, channel: dict[str, Any] | str | None = None) -> ChannelNetwork:
        """An open network for `channel` (a plan channel, its name, or None: the plan's only one):
        a free one of the same endpoints, else a new one (see the class's docstring)."""
        from .channel import choose_channel
        from .run import network_for
        if not isinstance(channel, dict):
            channel = choose_channel(plan, channel)
        key = self.key(plan, channel)
        net = None
        if key is None:
            net = network_for(plan, channel).open()
        else:
            with self._cond:
                while (net := self._take(key)) is None and not self.closed:
                    pending = sum(1 for k, _ in self._resetting.values() if k == key)
                    if pending <= self.spares or not self._cond.wait(RESET_WAIT_S):
                        break  # open one (a spare), or a reset hangs: do not wait for it
            if net is None:
                net = WarmNetwork(list(channel["endpoints"]), channel["name"], key[1])
                net.offload = key[2]
                net.open()
                self.opened += 1
            else:
                try:
                    net.rename(channel["name"])
                except BaseException:
                    net.close()
                    raise
                self.reused += 1
        with self._lock:
            self._busy[id(net)] = (net, key)
        return net

    def release(self, net: ChannelNetwork, reuse: bool = True) -> None:
        """Hand a network back: reset for the next experiment and kept, or closed when `reuse` is
        false (the run failed or raised: whatever went wrong may be in the network), when it cannot
        be reset, is not poolable, or the pool is closed. Without `background`, a reset that fails
        raises after closing the network; in the background it is closed and noted in `errors`."""
        with self._lock:
            entry = self._busy.pop(id(net), None)
            closed = self.closed
            key = entry[1] if entry else None
            keep = entry is not None and key is not None and reuse and not closed
            if keep and self.background:
                thread = threading.Thread(target=self._reset, args=(net, key, False), name="rattan-warm-reset")
                self._resetting[id(net)] = (key, thread)
                thread.start()  # it waits for the lock to note its end
        if entry is None:
            raise ValueError("this network was not acquired from this pool (or was already released)")
        if not keep:
            self.discarded += key is not None
            net.close()
        elif not self.background:
            self._reset(net, key, True)

    def _reset(self, net: WarmNetwork, key: tuple, raise_errors: bool) -> None:
        """Reset `net` and keep it free (or close it: the reset failed, the pool is closed or full)."""
        try:
            net.reset()
        except BaseException as e:
            with self._cond:
                self._resetting.pop(id(net), None)
                self.discarded += 1
                self.errors.append(f"instance {net.index}: {e}")
                self._cond.notify_all()
            net.close()
            if raise_errors:
                raise
            return
        with self._cond:
            self._resetting.pop(id(net), None)
            if self.closed:
                evicted = [net]
            else:
                self._free.append((key, net))
                excess = max(0, len(self._free) - self.max_idle)
                evicted = [n for _, n in self._free[:excess]]
                del self._free[:excess]
            self._cond.notify_all()
        for old in evicted:
            old.close()

    def settle(self, timeout: float | None = None) -> None:
        """Wait for the resets going on to end."""
        with self._lock:
            threads = [t for _, t in self._resetting.values()]
        for t in threads:
            t.join(timeout)

    @property
    def idle(self) -> int:
        """Free networks held, those being reset included."""
        with self._lock:
            return len(self._free) + len(self._resetting)

    def close(self) -> None:
        """Close every network of the pool, free, being reset or still acquired; from then on it
        pools nothing."""
        with self._lock:
            self.closed = True
            self._cond.notify_all()
        self.settle(RESET_WAIT_S)  # a reset that ends now closes its network itself (closed)
        with self._lock:
            nets = [n for _, n in self._free] + [n for n, _ in self._busy.values()]
            self._free.clear()
            self._busy.clear()
        for net in nets:
            try:
                net.close()
            except Exception:  # the others still go
                pass

    def _at_exit(self) -> None:
        if os.getpid() == self.owner:  # a forked child's copy is its parent's to close
            self.close()


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool() -> Pool:
    """This process's pool (a forked child gets its own, and leaves its parent's alone)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.owner != os.getpid() or _pool.closed:
            _pool = Pool()
        return _pool


def close_on_signals(p: Pool | None = None) -> None:
    """At SIGTERM (and SIGHUP) pool `p` (this process's by default) closes and the process exits:
    SystemExit, so that a run going on tears down through its `with` and `finally` blocks (its
    network closed at release, the pool being closed) and atexit closes the free ones. For worker
    processes, which get SIGTERM from their executor; a handler already set is left alone. SIGINT
    is the caller's: KeyboardInterrupt ends a run the same way, and atexit closes the pool."""
    import signal
    target = p or pool()

    def on_signal(signum, frame):
        target.closed = True  # from now on acquire/release pool nothing; atexit closes the rest
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, on_signal)

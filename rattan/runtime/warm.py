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
process inside the namespaces is stopped (netns.stop_inside), then each endpoint's veth moves into
the engine's namespace, the endpoint's namespace is removed and made again, and the veth moves back
and is configured as `ChannelNetwork.open` does it (address, MTU, MAC, neighbours, checksum offload,
IPv6 off). So sockets (TIME_WAIT included), routes, neighbour entries, qdiscs and filters,
firewall rules and sysctls are the fresh namespace's; the engine is new for each experiment (its
queues empty, its counters zero), and the frames left in a ring are discarded when the next engine
borrows it (Engine.attach_port). A network that cannot be reset is closed, not reused.

A pooled network keeps its instance record (/run/rattan/instances/K.json, this process's PID), so
if the process dies, even by SIGKILL, the next start removes its namespaces (netns.clean_stale); at
a normal exit the pool closes everything (atexit). Upstream Rattan documents (TOML/YAML, whose
Compatible mode puts a side in the namespace rattan runs in) are not pooled: acquire opens a fresh
network and release closes it.
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
                self.ports[name] = Port(self.engine_netns_path, ep.engine_ifname)
        except BaseException:
            self.close()
            raise
        return self

    def rename(self, channel: str) -> None:
        """Carry channel `channel` next (RATTAN_CHANNEL, the instance record) with a new RATTAN_ID."""
        self.channel, self.rattan_id = channel, new_rattan_id()
        with netns._registry_lock():
            with open(netns._state_path(self.index), "w") as f:
                json.dump({"pid": os.getpid(), "channel": channel, "namespaces": list(self._namespaces)}, f)

    def reset(self) -> int:
        """Stop every process inside, then give each endpoint a fresh namespace around its old veth
        (see the module's docstring); how many processes were stopped."""
        stopped = netns.stop_inside(self._namespaces)
        if netns._pids_inside(self._namespaces):
            raise NetnsError(f"processes still run inside instance {self.index}")
        with netns._registry_lock():  # making a namespace may remount /run/netns (see ChannelNetwork.open)
            for ep in self.endpoints.values():
                self._renew(ep)
            for ep in self.endpoints.values():
                netns._tune(ep)
                netns._neighbours(ep.netns, [ep], [o for o in self.endpoints.values() if o is not ep])
        self.runs += 1
        return stopped

    def _renew(self, ep: netns.Endpoint) -> None:
        """A fresh namespace for endpoint `ep`, its veth moved out and back in (the peer and its
        ring stay in the engine's namespace)."""
        with netlink(ep.netns) as ip:
            found = ip.link_lookup(ifname=ep.ifname)
            if not found:
                raise NetnsError(f"`{ep.ifname}` is gone from {ep.netns}")
            ip.link("set", index=found[0], state="down")
            ip.link("set", index=found[0], net_ns_fd=self.engine_netns)
        netns.remove_namespace(ep.netns)
        netns.create_namespace(ep.netns)
        with netlink(self.engine_netns) as eng:
            eng.link("set", index=eng.link_lookup(ifname=ep.ifname)[0], net_ns_fd=ep.netns)
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
    """Open networks of one process, reused between experiments; see the module's docstring."""

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self.max_idle = max_idle
        self.owner = os.getpid()
        self._lock = threading.Lock()
        self._free: dict[tuple, list[WarmNetwork]] = {}
        self._busy: dict[int, tuple[ChannelNetwork, tuple | None]] = {}  # id(net) -> (net, key)
        self.opened = self.reused = 0
        atexit.register(self._at_exit)

    @staticmethod
    def key(plan: dict, channel: dict[str, Any]) -> tuple | None:
        """What a network must match to carry `channel`; None: not poolable (upstream's layout)."""
        from .run import upstream_env
        if upstream_env(plan) is not None:
            return None
        return tuple(channel["endpoints"]), bool((plan.get("run") or {}).get("upstream_variables"))

    def acquire(self, plan: dict, channel: dict[str, Any] | str | None = None) -> ChannelNetwork:
        """An open network for `channel` (a plan channel, its name, or None: the plan's only one):
        a free one of the same endpoints, else a new one."""
        from .channel import choose_channel
        from .run import network_for
        if not isinstance(channel, dict):
            channel = choose_channel(plan, channel)
        key = self.key(plan, channel)
        if key is None:
            net = network_for(plan, channel).open()
        else:
            with self._lock:
                free = self._free.get(key) or []
                net = free.pop() if free else None
            if net is None:
                net = WarmNetwork(list(channel["endpoints"]), channel["name"], key[1]).open()
                self.opened += 1
            else:
                self.reused += 1
                try:
                    net.rename(channel["name"])
                except BaseException:
                    net.close()
                    raise
        with self._lock:
            self._busy[id(net)] = (net, key)
        return net

    def release(self, net: ChannelNetwork) -> None:
        """Hand a network back: reset for the next experiment and kept, or closed if it cannot be
        reset, is not poolable, or the pool holds enough free ones."""
        with self._lock:
            entry = self._busy.pop(id(net), None)
        if entry is None:
            raise ValueError("this network was not acquired from this pool (or was already released)")
        key = entry[1]
        if key is None:
            net.close()
            return
        try:
            net.reset()
        except Exception:
            net.close()
            raise
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self.max_idle:
                free.append(net)
                return
        net.close()

    @property
    def idle(self) -> int:
        """Free networks held."""
        with self._lock:
            return sum(len(v) for v in self._free.values())

    def close(self) -> None:
        """Close every network of the pool, free or still acquired."""
        with self._lock:
            nets = [n for v in self._free.values() for n in v] + [n for n, _ in self._busy.values()]
            self._free.clear()
            self._busy.clear()
        for net in nets:
            net.close()

    def _at_exit(self) -> None:
        if os.getpid() == self.owner:  # a forked child's copy is its parent's to close
            self.close()


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool() -> Pool:
    """This process's pool (a forked child gets its own, and leaves its parent's alone)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.owner != os.getpid():
            _pool = Pool()
        return _pool

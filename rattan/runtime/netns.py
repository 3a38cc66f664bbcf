"""Network namespaces and veth pairs for one channel instance, built with pyroute2.

Layout of instance K (one per `rattan run` channel instance):

    namespace rattan-K-<endpoint>        namespace rattan-K-engine
      rt-<endpoint>  10.X.Y.(i+1)/24 <--veth--> e<i>   (no address: the engine
      static neighbours for the others            reads and writes frames here)

Every endpoint of the instance shares one /24, taken from a pool by K, so
instances running at once never share an address. Each endpoint knows the
others' MAC addresses statically (no ARP through the emulator), and transmit
checksum offload is off on its veth, so frames are MTU-sized with full
checksums. The instance is recorded in /run/rattan/instances/K.json with the
owner's PID; a later start removes what an instance whose owner died (SIGKILL)
left behind.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import ipaddress
import json
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass

STATE_DIR = os.environ.get("RATTAN_STATE_DIR", "/run/rattan")
NETNS_DIR = "/run/netns"
MAX_INSTANCES = 64 * 256
NUD_PERMANENT = 0x80
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    """Namespaces or interfaces could not be made; the message says what and why."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    netns: str          # namespace name; "" for an endpoint in the namespace rattan runs in
    ifname: str         # its interface inside that namespace
    engine_ifname: str  # the veth peer in the engine's namespace
    address: str
    mac: str

    @property
    def netns_path(self) -> str:
        return os.path.join(NETNS_DIR, self.netns) if self.netns else f"/proc/{os.getpid()}/ns/net"


def subnet(index: int) -> ipaddress.IPv4Network:
    """The /24 of instance `index`: 10.64.0.0/24, 10.64.1.0/24, ... (10.64.0.0/10 in all)."""
    if not 0 <= index < MAX_INSTANCES:
        raise NetnsError(f"instance index {index} out of range")
    return ipaddress.IPv4Network(f"10.{64 + index // 256}.{index % 256}.0/24")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _registry_lock():
    os.makedirs(os.path.join(STATE_DIR, "instances"), exist_ok=True)
    with open(os.path.join(STATE_DIR, "lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _state_path(index: int) -> str:
    return os.path.join(STATE_DIR, "instances", f"{index}.json")


def _pids_inside(names: list[str]) -> list[int]:
    """Processes whose network namespace is one of these."""
    inodes = set()
    for name in names:
        try:
            inodes.add(os.stat(os.path.join(NETNS_DIR, name)).st_ino)
        except OSError:
            pass
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc") if inodes else []):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes and int(pid) != os.getpid():
                pids.append(int(pid))
        except OSError:
            pass
    return pids


def stop_inside(names: list[str], grace: float = 1.0) -> int:
    """Stop every process still inside these namespaces, by PID: SIGTERM, then SIGKILL; how many."""
    import time
    pids = _pids_inside(names)
    for pid in pids:
        try:
            os.kill(pid, 15)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pids_inside(names):
        time.sleep(0.02)
    for pid in _pids_inside(names):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return len(pids)


# -- named namespaces, without forking. pyroute2's `netns.create` and `NetNS` fork a child that
# enters the namespace; a fork of this (threaded) process that fails unwinds through our own code,
# and was seen to hang on the registry lock its parent holds. A thread can enter a namespace alone.

MNT_DETACH, MS_BIND, MS_REC, MS_SHARED = 2, 4096, 16384, 1 << 20


def _mount(src: bytes, dst: bytes, flags: int) -> None:
    if _libc.mount(src, dst, b"none", flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), f"mount {dst.decode()}")


def _shared_netns_dir() -> None:
    """/run/netns as a shared mount, so namespaces bound there are seen from every mount namespace
    (what `ip netns add` does)."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    d = NETNS_DIR.encode()
    if _libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None) != 0:
        _mount(d, d, MS_BIND | MS_REC)
        _mount(b"", d, MS_SHARED | MS_REC)


def create_namespace(name: str) -> str:
    """A new network namespace, bound at /run/netns/NAME (made by a short-lived thread); its path."""
    from .nsexec import CLONE_NEWNET
    _shared_netns_dir()
    path = os.path.join(NETNS_DIR, name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    failure: list[OSError] = []

    def make() -> None:
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), "unshare")
            _mount(f"/proc/self/task/{threading.get_native_id()}/ns/net".encode(), path.encode(), MS_BIND)
        except OSError as e:
            failure.append(e)

    t = threading.Thread(target=make, name=f"netns {name}")
    t.start()
    t.join()
    if failure:
        os.unlink(path)
        raise failure[0]
    return path


@contextmanager
def inside(name: str):
    """The calling thread inside namespace NAME; sockets made meanwhile (an IPRoute) stay there."""
    from .nsexec import setns_fd
    home = os.open(f"/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns_fd(target, name)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns_fd(home, "the namespace rattan started in")
    finally:
        os.close(home)


@contextmanager
def netlink(name: str):
    """An IPRoute whose socket lives in namespace NAME (here, for "")."""
    from pyroute2 import IPRoute
    if name:
        with inside(name):
            ipr = IPRoute()
    else:
        ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def remove_namespace(name: str) -> None:
    """Unbind /run/netns/NAME; the namespace (and its veths) goes when nothing else holds it."""
    path = os.path.join(NETNS_DIR, name)
    _libc.umount2(path.encode(), MNT_DETACH)
    os.unlink(path)


def _remove_namespaces(names: list[str]) -> None:
    for name in names:
        try:
            remove_namespace(name)
        except FileNotFoundError:
            pass
        except OSError:
            pass


def clean_stale() -> list[int]:
    """Remove the namespaces of instances whose owner is gone; the indices freed."""
    with _registry_lock():
        return _clean_stale_locked()


def _clean_stale_locked() -> list[int]:
    freed = []
    for entry in os.listdir(os.path.join(STATE_DIR, "instances")):
        m = re.fullmatch(r"(\d+)\.json", entry)
        if not m:
            continue
        path = os.path.join(STATE_DIR, "instances", entry)
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = {"pid": -1, "namespaces": []}
        if state.get("pid", -1) > 0 and _alive(state["pid"]):
            continue
        stop_inside(state.get("namespaces", []), grace=0)  # what a dead instance left running
        _remove_namespaces(state.get("namespaces", []))
        os.unlink(path)
        freed.append(int(m.group(1)))
    return freed


def _ifname(prefix: str, name: str) -> str:
    return (prefix + re.sub(r"[^A-Za-z0-9_-]", "", name))[:15]


class ChannelNetwork:
    """The namespaces, veths, addresses and neighbours of one channel instance; removed on close."""

    def __init__(self, endpoints: list[str], channel: str = "", host: tuple[str, ...] = ()) -> None:
        """`host`: endpoints whose interface goes in the namespace rattan runs in rather than in a
        namespace of their own (upstream Rattan's `Compatible` mode)."""
        self.endpoint_names = list(endpoints)
        self.host = set(host)
        self.channel = channel
        self.index: int | None = None
        self.engine_netns = ""
        self.endpoints: dict[str, Endpoint] = {}
        self._namespaces: list[str] = []

    @property
    def engine_netns_path(self) -> str:
        return os.path.join(NETNS_DIR, self.engine_netns)

    def _claim(self) -> int:
        """The lowest free instance index, recorded with our PID (the registry lock is held)."""
        used = {int(m.group(1)) for e in os.listdir(os.path.join(STATE_DIR, "instances"))
                if (m := re.fullmatch(r"(\d+)\.json", e))}
        index = next((i for i in range(MAX_INSTANCES) if i not in used), None)
        if index is None:
            raise NetnsError(f"all {MAX_INSTANCES} instance slots are in use")
        names = [f"rattan-{index}-engine"] + [f"rattan-{index}-{n}" for n in self.endpoint_names
                                               if n not in self.host]
        with open(_state_path(index), "w") as f:
            json.dump({"pid": os.getpid(), "channel": self.channel, "namespaces": names}, f)
        return index

    def open(self) -> "ChannelNetwork":
        from ..engine import _engine  # noqa: F401  (fail early if the engine is not built)
        if os.geteuid() != 0:
            raise NetnsError("real emulation needs root (network namespaces and raw sockets)")
        # One instance at a time builds or removes namespaces: creating the first one may remount
        # /run/netns, which would hide namespaces another process creates at that moment.
        with _registry_lock():
            _clean_stale_locked()
            self.index = self._claim()
            self._build()
        return self

    def _build(self) -> None:
        from ..engine.binding import netdev_tune
        net = subnet(self.index)
        self.engine_netns = f"rattan-{self.index}-engine"
        try:
            create_namespace(self.engine_netns)
            self._namespaces.append(self.engine_netns)
            with netlink(self.engine_netns) as eng:
                eng.link("set", index=eng.link_lookup(ifname="lo")[0], state="up")
            for i, name in enumerate(self.endpoint_names):
                if name in self.host:  # its veth end is here; the engine's namespace holds the pair
                    ns, ifname = "", _ifname(f"rt{self.index}-", name)
                else:
                    ns, ifname = f"rattan-{self.index}-{name}", _ifname("rt-", name)
                    create_namespace(ns)
                    self._namespaces.append(ns)
                peer = f"e{i}"
                address = str(net.network_address + i + 1)
                with netlink(ns) as ep:
                    ep.link("add", ifname=ifname, kind="veth", peer={"ifname": peer, "net_ns_fd": self.engine_netns})
                    idx = ep.link_lookup(ifname=ifname)[0]
                    ep.addr("add", index=idx, address=address, prefixlen=net.prefixlen)
                    ep.link("set", index=idx, state="up")
                    if ns:
                        ep.link("set", index=ep.link_lookup(ifname="lo")[0], state="up")
                    mac = ep.get_links(idx)[0].get_attr("IFLA_ADDRESS")
                with netlink(self.engine_netns) as eng:
                    eng.link("set", index=eng.link_lookup(ifname=peer)[0], state="up")
                self.endpoints[name] = Endpoint(name, ns, ifname, peer, address, mac)
            for ep in self.endpoints.values():
                # IPv6 off in the namespaces rattan made; on this namespace's own interface only, here.
                netdev_tune(ep.netns_path, ep.ifname, no_ipv6=bool(ep.netns))
                if not ep.netns and os.path.exists(f"/proc/sys/net/ipv6/conf/{ep.ifname}"):
                    with open(f"/proc/sys/net/ipv6/conf/{ep.ifname}/disable_ipv6", "w") as f:
                        f.write("1")
                with netlink(ep.netns) as ns:
                    idx = ns.link_lookup(ifname=ep.ifname)[0]
                    for other in self.endpoints.values():
                        if other is not ep:
                            ns.neigh("add", dst=other.address, lladdr=other.mac, ifindex=idx, state=NUD_PERMANENT)
            netdev_tune(self.engine_netns_path, None, no_ipv6=True)
        except Exception as e:
            index = self.index
            self._remove_locked()
            if isinstance(e, NetnsError):
                raise
            raise NetnsError(f"cannot build the namespaces of instance {index}: {e}") from e

    def close(self) -> None:
        """Stop what still runs inside, remove every namespace (and so every veth) and the record."""
        stop_inside(self._namespaces)
        if self._namespaces or self.index is not None:
            with _registry_lock():
                self._remove_locked()

    def _remove_locked(self) -> None:
        here = [ep.ifname for ep in self.endpoints.values() if not ep.netns]
        if here:  # the pair would go with the engine's namespace, but not while a socket holds it
            with netlink("") as ip:
                for ifname in here:
                    if ip.link_lookup(ifname=ifname):
                        ip.link("del", ifname=ifname)
        _remove_namespaces(self._namespaces)
        self._namespaces.clear()
        if self.index is not None:
            try:
                os.unlink(_state_path(self.index))
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
            self.index = None

    def environment(self) -> dict[str, str]:
        """RATTAN_<ENDPOINT>_IP and RATTAN_<ENDPOINT>_NETNS for every endpoint, and RATTAN_CHANNEL."""
        env = {}
        for n, ep in self.endpoints.items():
            key = re.sub(r"[^A-Za-z0-9]", "_", n).upper()
            env[f"RATTAN_{key}_IP"] = ep.address
            env[f"RATTAN_{key}_NETNS"] = ep.netns
        env["RATTAN_CHANNEL"] = self.channel
        return env

    def __enter__(self) -> "ChannelNetwork":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

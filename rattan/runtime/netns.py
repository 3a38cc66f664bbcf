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

Upstream Rattan documents (TOML/YAML) get upstream's layout instead: one
namespace a side, 10.1.i.x and 10.2.i.x /32 addresses (UpstreamNetwork).
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

from .cpus import from_mask, to_mask

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
    engine_mac: str = ""  # the peer's address, when the engine writes the Ethernet addresses of
                          # the frames it sends there (upstream layout, see UpstreamNetwork)

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


KILL_WAIT_S = 10.0  # how long stop_inside waits for SIGKILLed processes to exit


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
    # SIGKILL is delivered, not yet done: wait (bounded) until each has exited, so that nothing of
    # the run is alive when its teardown returns (seen: a loaded machine still had them a moment later)
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline and _pids_inside(names):
        time.sleep(0.02)
    return len(pids)


# -- named namespaces, without forking. pyroute2's `netns.create` and `NetNS` fork a child that
# enters the namespace; a fork of this (threaded) process that fails unwinds through our own code,
# and was seen to hang on the registry lock its parent holds. A thread can enter a namespace alone.

MNT_DETACH, MS_BIND, MS_REC, MS_SHARED = 2, 4096, 16384, 1 << 20
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8


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


def rename_namespace(name: str, new: str) -> None:
    """Bind namespace NAME at /run/netns/NEW instead (NEW must be free)."""
    path, target = os.path.join(NETNS_DIR, name), os.path.join(NETNS_DIR, new)
    os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        _mount(path.encode(), target.encode(), MS_BIND)
    except OSError:
        os.unlink(target)
        raise
    remove_namespace(name)


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


# How the engine's ports carry frames (`rattan run --offload`): `gso`, virtio-net headers on the
# engine's sockets and the endpoints' offloads left on, so TSO super-frames of up to 64 KiB cross
# whole; `plain`, transmit checksumming (and so TSO) off on the endpoints, frames of at most the MTU.
# Measured in benchmarks/gso_forwarding.py (docs/running.md).
OFFLOADS = ("gso", "plain")
DEFAULT_OFFLOAD = "gso"


def _tune(ep: Endpoint, offload: str = DEFAULT_OFFLOAD) -> None:
    """An endpoint's veth: in plain mode, transmit checksum offload off (in GSO mode the offloads
    stay on); IPv6 off in a namespace rattan made, and on this interface only in the namespace
    rattan runs in (upstream's Compatible right side)."""
    from ..engine.binding import netdev_tune
    netdev_tune(ep.netns_path, ep.ifname if offload == "plain" else None, no_ipv6=bool(ep.netns))
    if not ep.netns and os.path.exists(f"/proc/sys/net/ipv6/conf/{ep.ifname}"):
        with open(f"/proc/sys/net/ipv6/conf/{ep.ifname}/disable_ipv6", "w") as f:
            f.write("1")


# -- receive packet steering (RPS). A veth has no NAPI of its own: a frame sent into one side is
# received by the peer in the sender's context (netif_rx), so the receiving stack runs on the
# sending CPU unless RPS hands it to another. On the endpoint veths that moves the receiver's TCP
# stack off the engine's core (the engine sends with sendmmsg); measured in
# benchmarks/kernel_settings.py, figures in docs/running.md.

@contextmanager
def sysfs_of(netns: str):
    """A sysfs whose /class/net is namespace NETNS's (NETNS "": the one rattan runs in, whose /sys it
    is): sysfs shows the network namespace of whoever mounted it, so a thread inside NETNS mounts one
    for a moment on a private folder, unmounted on exit. Its path."""
    if not netns:
        yield "/sys"
        return
    import tempfile
    os.makedirs(STATE_DIR, exist_ok=True)
    where = tempfile.mkdtemp(prefix="sysfs-", dir=STATE_DIR)
    try:
        with inside(netns):
            if _libc.mount(b"sysfs", where.encode(), b"sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), f"mount sysfs of {netns}")
        try:
            yield where
        finally:
            _libc.umount2(where.encode(), MNT_DETACH)
    finally:
        os.rmdir(where)


def _rps_files(sysfs: str, ifname: str) -> list[str]:
    import glob
    files = sorted(glob.glob(os.path.join(sysfs, "class/net", ifname, "queues/rx-*/rps_cpus")))
    if not files:
        raise NetnsError(f"`{ifname}` has no receive queue with RPS (is CONFIG_RPS off?)")
    return files


def set_rps(netns: str, ifname: str, cpus: frozenset[int]) -> None:
    """Steer what interface IFNAME of namespace NETNS receives to CPUS (empty: no steering, the
    kernel's default), on each of its receive queues."""
    with sysfs_of(netns) as sysfs:
        for path in _rps_files(sysfs, ifname):
            with open(path, "w") as f:
                f.write(to_mask(cpus))


def rps_cpus(netns: str, ifname: str) -> frozenset[int]:
    """The CPUs that interface IFNAME of namespace NETNS steers its first receive queue to."""
    with sysfs_of(netns) as sysfs:
        with open(_rps_files(sysfs, ifname)[0]) as f:
            return from_mask(f.read())


def _ifname(prefix: str, name: str) -> str:
    return (prefix + re.sub(r"[^A-Za-z0-9_-]", "", name))[:15]


def _neighbours(netns: str, here: list[Endpoint], there: list[Endpoint]) -> None:
    """Permanent neighbour entries on each of `here`'s veths (all in `netns`) for every endpoint of
    `there`: the engine forwards frames, it answers no ARP for them."""
    with netlink(netns) as ip:
        for ep in here:
            idx = ip.link_lookup(ifname=ep.ifname)[0]
            for other in there:
                ip.neigh("add", dst=other.address, lladdr=other.mac, ifindex=idx, state=NUD_PERMANENT)


class ChannelNetwork:
    """The namespaces, veths, addresses and neighbours of one channel instance; removed on close."""

    def __init__(self, endpoints: list[str], channel: str = "", upstream_variables: bool = False) -> None:
        self.endpoint_names = list(endpoints)
        self.channel = channel
        self.rattan_id = new_rattan_id()  # upstream's RATTAN_ID of this instance
        self.link_variables = upstream_variables  # `rattan link`: upstream's variables (`environment`)
        self.index: int | None = None
        self.engine_netns = ""
        self.endpoints: dict[str, Endpoint] = {}
        self._namespaces: list[str] = []
        self.steered = False  # a run set receive packet steering on the endpoint veths (--rps-cpus)
        self.offload = DEFAULT_OFFLOAD  # OFFLOADS: set before open (run.network_for)

    @property
    def engine_netns_path(self) -> str:
        return os.path.join(NETNS_DIR, self.engine_netns)

    def _namespace_names(self, index: int) -> list[str]:
        return [f"rattan-{index}-engine"] + [f"rattan-{index}-{n}" for n in self.endpoint_names]

    def command_netns(self, side: str) -> str:
        """Where a command of `side` runs: `left` (the main command) in the first endpoint's
        namespace, `right` in the second's."""
        return list(self.endpoints.values())[0 if side == "left" else 1].netns_path

    def _claim(self) -> int:
        """The lowest free instance index, recorded with our PID (the registry lock is held)."""
        used = {int(m.group(1)) for e in os.listdir(os.path.join(STATE_DIR, "instances"))
                if (m := re.fullmatch(r"(\d+)\.json", e))}
        index = next((i for i in range(MAX_INSTANCES) if i not in used), None)
        if index is None:
            raise NetnsError(f"all {MAX_INSTANCES} instance slots are in use")
        names = self._namespace_names(index)
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
            try:
                self._build()
            except Exception as e:  # nothing half-built stays behind
                index = self.index
                self._remove_locked()
                if isinstance(e, NetnsError):
                    raise
                raise NetnsError(f"cannot build the namespaces of instance {index}: {e}") from e
        return self

    def _build(self) -> None:
        from ..engine.binding import netdev_tune
        net = subnet(self.index)
        self.engine_netns = f"rattan-{self.index}-engine"
        create_namespace(self.engine_netns)
        self._namespaces.append(self.engine_netns)
        with netlink(self.engine_netns) as eng:
            eng.link("set", index=eng.link_lookup(ifname="lo")[0], state="up")
        for i, name in enumerate(self.endpoint_names):
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
                ep.link("set", index=ep.link_lookup(ifname="lo")[0], state="up")
                mac = ep.get_links(idx)[0].get_attr("IFLA_ADDRESS")
            with netlink(self.engine_netns) as eng:
                eng.link("set", index=eng.link_lookup(ifname=peer)[0], state="up")
            self.endpoints[name] = Endpoint(name, ns, ifname, peer, address, mac)
        for ep in self.endpoints.values():
            _tune(ep, self.offload)
            _neighbours(ep.netns, [ep], [o for o in self.endpoints.values() if o is not ep])
        netdev_tune(self.engine_netns_path, None, no_ipv6=True)

    def close(self) -> None:
        """Stop what still runs inside, remove every namespace (and so every veth) and the record."""
        stop_inside(self._namespaces)
        if self._namespaces or self.index is not None:
            with _registry_lock():
                self._remove_locked()

    def _host_ifnames(self) -> list[str]:
        """Interfaces rattan made in the namespace it runs in."""
        return [ep.ifname for ep in self.endpoints.values() if not ep.netns]

    def _remove_locked(self) -> None:
        here = self._host_ifnames()
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

    def environment(self, side: str = "left") -> dict[str, str]:
        """RATTAN_<ENDPOINT>_IP and RATTAN_<ENDPOINT>_NETNS for every endpoint, and RATTAN_CHANNEL
        (the same for the commands of both sides). With upstream's variables (`rattan link`), first
        those of the other side's endpoint as its only veth (RATTAN_IP_1, RATTAN_BASE) and RATTAN_ID."""
        env = {}
        if self.link_variables:
            other = list(self.endpoints.values())[1 if side == "left" else 0]
            env.update(upstream_variables([(1, other.address)], self.rattan_id))
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


# -- upstream Rattan's layout, for TOML/YAML documents

VETH_COUNT_MAX = 254               # upstream's VETH_COUNT_MAX: a pair id is one byte of the address
RT_SCOPE_LINK = 253
UPSTREAM_IP_LOCK_DIR = "/tmp/rattan/ip_lock"  # where upstream Rattan locks the addresses it takes


def upstream_ip(group: int, pair: int, suffix: int) -> str:
    """`get_veth_ip_address`: 10.<group>.<pair>.<suffix> (group 1 left, 2 right), a /32."""
    return f"10.{group}.{pair}.{suffix}"


def new_rattan_id() -> str:
    """Upstream's RATTAN_ID: 6 random alphanumeric characters (src/main.rs, rand's Alphanumeric)."""
    import secrets
    import string
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(6))


def upstream_variables(other_side: list[tuple[int, str]], rattan_id: str) -> dict[str, str]:
    """What upstream's `add_runtime_env_var` (src/env_var.rs) gives a command, from the other side's
    (pair id, address) list: RATTAN_IP_<i>, RATTAN_EXT (veth 0's), RATTAN_BASE (veth 1's), RATTAN_ID."""
    env = {}
    for i, address in other_side:
        env[f"RATTAN_IP_{i}"] = address
        if i == 0:
            env["RATTAN_EXT"] = address
        elif i == 1:
            env["RATTAN_BASE"] = address
    env["RATTAN_ID"] = rattan_id
    return env


def upstream_mac(group: int, pair: int, suffix: int) -> str:
    """`get_veth_mac_address`: 38:7e:58:<group>:<pair>:<suffix> (the I/G bit is 0)."""
    return ":".join(f"{b:02x}" for b in (0x38, 0x7E, 0x58, group, pair, suffix))


def upstream_endpoint_names(side: str, count: int) -> list[str]:
    """Upstream's names of one side's veth cells (`RattanRadix::init_veth`): `left` for a side of
    one veth, else `left1`..`leftN`."""
    return [side] if count == 1 else [f"{side}{i}" for i in range(1, count + 1)]


def _addresses_here() -> set[str]:
    """Every address of the namespace rattan runs in (upstream's `get_addresses_in_use`)."""
    with netlink("") as ip:
        return {a.get_attr("IFA_ADDRESS") for a in ip.get_addr()} - {None}


def _routed_here() -> set[str]:
    """The /32 destinations routed in the namespace rattan runs in (its main table)."""
    import socket
    with netlink("") as ip:
        return {r.get_attr("RTA_DST") for r in ip.get_routes(family=socket.AF_INET) if r["dst_len"] == 32} - {None}


def _upstream_locked(address: str) -> bool:
    return os.path.exists(os.path.join(UPSTREAM_IP_LOCK_DIR, address))


class UpstreamNetwork(ChannelNetwork):
    """Upstream Rattan's StdNetEnv for one instance of a TOML/YAML document, field by field as
    rattan-env/src/env.rs builds it (stack-rs/rattan a18829c):

        ns-left (rattan-K-left)        rattan-K-engine (ns-rattan)       ns-right (rattan-K-right,
          vL<i>-L-ID 10.1.i.b/32  <-->  vL<i>-R-ID  vR<i>-L-ID  <-->     or rattan's own namespace
                                                                         in Compatible mode)
                                                                           vR<i>-R-ID 10.2.i.b/32

    All left veths are in one namespace (a multi-homed client), all right veths in another. `b` is
    1, except in Compatible mode, where the right side is the namespace rattan runs in: there each
    pair takes the lowest `b` (1, 3, 4, ... 254; 2 is the engine side's) whose 10.2.i.b is not in
    use there nor locked by an upstream Rattan, and its left veth the same `b` (a left veth beyond
    the right side's count: the lowest `b` whose 10.1.i.b is not routed there; upstream's 1 then
    fails a second instance). MACs are
    38:7e:58:<1|2>:<i>:<b> (the engine side's <b> is 2), and the engine writes them into the frames
    it sends, as upstream's AF_PACKET sender does. Routes: ns-left reaches right veth 1 on left veth
    1 and has its default route through it; ns-right reaches left veth 1 on right veth 1 with its
    default through it (Isolated) or, in Compatible mode, reaches every left veth on right veth 1 and
    keeps its own default route. Every left veth has a permanent neighbour entry for every right
    veth and the other way round. `left_external`/`right_external = "Veth"` add veth 0, not wired to
    the engine: vL0-L-ID 192.168.1.1/32 in ns-left (vL0-R-ID 192.168.1.2/32 in the engine's
    namespace), vR0-R-ID 192.168.2.1/32 on the right (vR0-L-ID 192.168.2.2/32). ID is the
    instance's random 6-character RATTAN_ID, as upstream's."""

    def __init__(self, endpoints: list[str], channel: str, env: dict) -> None:
        super().__init__(endpoints, channel)
        self.mode = env.get("mode") or "Compatible"
        if self.mode not in ("Compatible", "Isolated"):
            raise NetnsError(f'`mode = "{self.mode}"` is not supported (upstream does not support it either)')
        self.counts = {side: int(env.get(f"{side}_veth_count", 1)) for side in ("left", "right")}
        for side, n in self.counts.items():
            if not 1 <= n <= VETH_COUNT_MAX:
                raise NetnsError(f"`{side}_veth_count = {n}`: upstream allows 1 to {VETH_COUNT_MAX} veths a side")
        self.external = {side: env.get(f"{side}_external") for side in ("left", "right")}
        for side, dev in self.external.items():
            if dev not in (None, "Veth"):
                raise NetnsError(f'`{side}_external = "{dev}"`: upstream\'s only external device is "Veth"')
        self.names = {side: upstream_endpoint_names(side, n) for side, n in self.counts.items()}
        if list(endpoints) != self.names["left"] + self.names["right"]:
            raise NetnsError(f"the channel's endpoints ({', '.join(endpoints)}) are not upstream's "
                             f"({', '.join(self.names['left'] + self.names['right'])}) for "
                             f"left_veth_count = {self.counts['left']}, right_veth_count = {self.counts['right']}")
        self.side_netns = {"left": "", "right": ""}
        self.suffixes: dict[str, list[int]] = {}
        self.externals: dict[str, Endpoint] = {}  # veth 0 of a side, when it has one
        self._host_links: list[str] = []

    @property
    def compatible(self) -> bool:
        return self.mode == "Compatible"

    def _namespace_names(self, index: int) -> list[str]:
        return [f"rattan-{index}-engine", f"rattan-{index}-left"] + \
            ([] if self.compatible else [f"rattan-{index}-right"])

    def command_netns(self, side: str) -> str:
        ns = self.side_netns[side]
        return os.path.join(NETNS_DIR, ns) if ns else f"/proc/{os.getpid()}/ns/net"

    def side_of(self, name: str) -> tuple[str, int]:
        """(side, pair id) of an endpoint."""
        for side, names in self.names.items():
            if name in names:
                return side, names.index(name) + 1
        raise KeyError(name)

    def planned_addresses(self) -> dict[str, str]:
        """Each endpoint's address when every suffix is 1: left veth i 10.1.i.1, right veth i
        10.2.i.1 (Isolated mode, and Compatible mode's first instance); what a TOML/YAML file's
        routes are written for, and what `rattan sim` gives an upstream document's endpoints."""
        return {name: upstream_ip(1 if side == "left" else 2, i, 1)
                for side in ("left", "right") for i, name in enumerate(self.names[side], start=1)}

    def _pick_suffixes(self) -> None:
        """Upstream's `lock_address_suffix` for every right pair in Compatible mode (the registry
        lock is held, so no other rattan picks at the same time); 1 otherwise. The left pairs take
        their right pair's suffix, 1 beyond the right side's count."""
        candidates = [1, *range(3, 255)]
        if not self.compatible:
            self.suffixes = {side: [1] * n for side, n in self.counts.items()}
            return
        in_use, right = _addresses_here(), []
        for pair in range(1, self.counts["right"] + 1):
            b = next((b for b in candidates
                      if (ip := upstream_ip(2, pair, b)) not in in_use and not _upstream_locked(ip)), None)
            if b is None:
                raise NetnsError(f"no address 10.2.{pair}.x is free in this namespace for right veth {pair} "
                                 "(upstream: No available address suffix for right veth)")
            right.append(b)
        # Left pairs beyond the right side's count take suffix 1 upstream, whose route to them here
        # (10.1.i.1/32) a second instance could not add: it takes the lowest suffix not routed here
        # (1 for the first instance, as upstream).
        routed = _routed_here()
        left = right[:self.counts["left"]]
        for pair in range(len(left) + 1, self.counts["left"] + 1):
            b = next((b for b in candidates if upstream_ip(1, pair, b) not in routed), None)
            if b is None:
                raise NetnsError(f"no address 10.1.{pair}.x is free of a route in this namespace for left veth {pair}")
            left.append(b)
        self.suffixes = {"left": left, "right": right}

    def _veth(self, ns: str, ifname: str, mac: str, address: str | None,
              peer: str, peer_mac: str, peer_address: str | None) -> int:
        """A veth pair: `ifname` in namespace `ns` ("" here), `peer` in the engine's; both up.
        The index of `ifname`."""
        with netlink(ns) as ip:
            ip.link("add", ifname=ifname, kind="veth", peer={"ifname": peer, "net_ns_fd": self.engine_netns})
            if not ns:
                self._host_links.append(ifname)
            idx = ip.link_lookup(ifname=ifname)[0]
            ip.link("set", index=idx, address=mac)
            if address:
                ip.addr("add", index=idx, address=address, prefixlen=32)
            ip.link("set", index=idx, state="up")
        with netlink(self.engine_netns) as eng:
            pidx = eng.link_lookup(ifname=peer)[0]
            eng.link("set", index=pidx, address=peer_mac)
            if peer_address:
                eng.addr("add", index=pidx, address=peer_address, prefixlen=32)
            eng.link("set", index=pidx, state="up")
        return idx

    def _build(self) -> None:
        from ..engine.binding import netdev_tune
        rid, k = self.rattan_id, self.index
        self.engine_netns = f"rattan-{k}-engine"
        sides = {"left": f"rattan-{k}-left", "right": "" if self.compatible else f"rattan-{k}-right"}
        for ns in (self.engine_netns, *filter(None, sides.values())):
            create_namespace(ns)
            self._namespaces.append(ns)
            with netlink(ns) as ip:
                ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
        self.side_netns = sides
        self._pick_suffixes()
        # veth 0 (external), upstream's addresses and MACs; the engine does not use it
        ext = {"left": ("vL0-L", "vL0-R", 1), "right": ("vR0-R", "vR0-L", 2)}
        for side, (mine, theirs, g) in ext.items():
            if self.external[side] == "Veth":
                name, peer = f"{mine}-{rid}", f"{theirs}-{rid}"
                mac, peer_mac = upstream_mac(0xE7, g, 1), upstream_mac(0xE7, g, 2)
                address = f"192.168.{g}.1"
                self._veth(sides[side], name, mac, address, peer, peer_mac, f"192.168.{g}.2")
                self.externals[side] = Endpoint(f"{side}_external", sides[side], name, peer, address, mac, peer_mac)
        group = {"left": 1, "right": 2}
        for side in ("right", "left"):  # upstream builds the right pairs first
            tag = "L" if side == "left" else "R"
            for i, name in enumerate(self.names[side], start=1):
                b, g = self.suffixes[side][i - 1], group[side]
                ifname, peer = f"v{tag}{i}-{tag}-{rid}", f"v{tag}{i}-{'R' if tag == 'L' else 'L'}-{rid}"
                address, mac, peer_mac = upstream_ip(g, i, b), upstream_mac(g, i, b), upstream_mac(g, i, 2)
                self._veth(sides[side], ifname, mac, address, peer, peer_mac, upstream_ip(g, i, 2))
                self.endpoints[name] = Endpoint(name, sides[side], ifname, peer, address, mac, peer_mac)
        self.endpoints = {n: self.endpoints[n] for n in self.endpoint_names}  # the channel's order
        lefts = [self.endpoints[n] for n in self.names["left"]]
        rights = [self.endpoints[n] for n in self.names["right"]]
        for ep in self.endpoints.values():
            _tune(ep, self.offload)
        l1, r1 = lefts[0], rights[0]
        with netlink(sides["left"]) as ip:
            i1 = ip.link_lookup(ifname=l1.ifname)[0]
            ip.route("add", dst=f"{r1.address}/32", oif=i1, scope=RT_SCOPE_LINK)
            ip.route("add", dst="0.0.0.0/0", gateway=r1.address, oif=i1)
        with netlink(sides["right"]) as ip:
            i1 = ip.link_lookup(ifname=r1.ifname)[0]
            if self.compatible:
                for left in lefts:
                    ip.route("add", dst=f"{left.address}/32", oif=i1, scope=RT_SCOPE_LINK)
            else:
                ip.route("add", dst=f"{l1.address}/32", oif=i1, scope=RT_SCOPE_LINK)
                ip.route("add", dst="0.0.0.0/0", gateway=l1.address, oif=i1)
        _neighbours(lefts[0].netns, lefts, rights)
        _neighbours(rights[0].netns, rights, lefts)
        netdev_tune(self.engine_netns_path, None, no_ipv6=True)

    def _host_ifnames(self) -> list[str]:
        return list(self._host_links)

    def _remove_locked(self) -> None:
        super()._remove_locked()
        self._host_links.clear()

    def ip_list(self, side: str) -> list[tuple[int, str]]:
        """Upstream's `left_ip_list`/`right_ip_list`: (pair id, address) of a side's veths, veth 0
        (external) first when there is one."""
        out = [(0, self.externals[side].address)] if side in self.externals else []
        return out + [(i, self.endpoints[n].address) for i, n in enumerate(self.names[side], start=1)]

    def environment(self, side: str = "left") -> dict[str, str]:
        """What upstream's `add_runtime_env_var` (src/env_var.rs) gives a command of `side`: the
        other side's addresses as RATTAN_IP_<i>, RATTAN_EXT (veth 0's) and RATTAN_BASE (veth 1's),
        and RATTAN_ID; then rattan's own RATTAN_<ENDPOINT>_IP, RATTAN_<ENDPOINT>_NETNS and
        RATTAN_CHANNEL."""
        env = upstream_variables(self.ip_list("right" if side == "left" else "left"), self.rattan_id)
        return {**env, **super().environment(side)}

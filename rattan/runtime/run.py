"""`rattan run`: channels of a plan on real packets between network namespaces.

A run is one or more channel instances: one channel (the default), every channel of the file
(`--all`), or N copies of each (`--instances N`). Each instance gets its own namespaces and /24
(netns.py); one engine thread forwards for all of them, each instance a shard of its own. The
commands run inside the endpoints' namespaces, each in a PID namespace of its own that dies with
rattan (nsexec.py), so no process of a run outlives it, even a SIGKILL of rattan; the namespaces
and veths are torn down however the run ends (normal exit, Ctrl-C, SIGINT, SIGTERM), and after a
SIGKILL by the next start.
"""
from __future__ import annotations

import ipaddress
import os
import select
import signal
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import cpus as cpu_sets
from .netns import DEFAULT_OFFLOAD, OFFLOADS, ChannelNetwork, UpstreamNetwork, set_rps
from .view import RunView, live_line_wanted, print_summary
from .channel import ChannelError, choose_channel, schedule_timeline

FOREVER = 2**63
TIMELINE_HORIZON_NS = 24 * 3600 * 10**9  # `every` changes are scheduled this far ahead
RIGHT_HEAD_START_S = 0.3                  # the --right command always starts this far ahead
RIGHT_LISTEN_WAIT_S = 5.0                 # ... and up to this far, until it listens (a server is up)
MAX_RUN_INSTANCES = 1024

# upstream Rattan's `[commands] shell` (src/main.rs, TaskShell::shell): the interactive shell when
# there is no `left` command; `Default` is $SHELL, else /bin/sh. It never runs the commands.
SHELLS = {"Sh": "/bin/sh", "Bash": "/bin/bash", "Zsh": "/bin/zsh", "Fish": "/bin/fish"}
# upstream runs every command of a file as `/usr/bin/env ARGS...` (src/main.rs)
UPSTREAM_ENV = "/usr/bin/env"
# what upstream's bash session gets, so that its prompt says it is inside rattan
BASH_PROMPT = {"PROMPT_COMMAND": 'PS1="[rattan] $PS1" PROMPT_COMMAND='}
# `[general] packet_log_mode` (CompactTCP, RawIP, RawTCP) records headers only, upstream: our log then
# keeps each packet's first 120 bytes, an IPv4 header and a TCP header of the largest sizes (60 each)
HEADERS_SNAPLEN = 120


class RunError(RuntimeError):
    """A run that cannot start; the message says why."""


def in_namespace(netns_path: str, argv: list[str], env: dict[str, str], linger: bool = False,
                 ctrl_c_fd: int | None = None, cpus=None, **kw) -> subprocess.Popen:
    """Start argv inside a network namespace and a PID namespace of its own (rattan.runtime.nsexec);
    `linger`: the namespace lasts until nothing runs in it, not until argv ends; `ctrl_c_fd`: a pipe
    on which nsexec says when it got a SIGINT (see _CtrlC); `cpus`: the only CPUs it and what it
    starts may run on (None: any)."""
    opts = ["--linger"] if linger else []
    if cpus:
        from .cpus import format_list
        opts += ["--cpus", format_list(cpus)]
    if ctrl_c_fd is not None:
        opts += ["--ctrl-c-fd", str(ctrl_c_fd)]
        kw["pass_fds"] = (*kw.get("pass_fds", ()), ctrl_c_fd)
    return subprocess.Popen([sys.executable, "-m", "rattan.runtime.nsexec", *opts, netns_path, *argv],
                            env=env, **kw)


def _listening(pid: int, netns_path: str, port: int | None = None) -> bool:
    """Whether process `pid` is inside the namespace at `netns_path` and a TCP socket listens there
    or a UDP socket is bound (the namespace is the run's own, so it is the --right command's); on
    `port`, when given."""
    try:
        here, there = os.stat(f"/proc/{pid}/ns/net"), os.stat(netns_path)
        if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
            return False  # nsexec has not entered it yet: its /proc/PID/net is still rattan's
        for table, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", None), ("udp6", None)):  # 0A: LISTEN
            with open(f"/proc/{pid}/net/{table}") as f:
                for line in list(f)[1:]:
                    fields = line.split()
                    if (state is None or fields[3] == state) and \
                            (port is None or int(fields[1].rsplit(":", 1)[1], 16) == port):
                        return True
    except (OSError, IndexError):
        return False
    return False


def _wait_until_listening(rights: list[tuple[subprocess.Popen, str]]) -> None:
    """Give the --right commands a head start: until each listens on a socket in its namespace (a
    server is up; a fixed pause lost that race on a loaded machine), has ended, or the wait is over
    (a command that never listens, e.g. tcpdump)."""
    start = time.monotonic()
    time.sleep(RIGHT_HEAD_START_S)
    while rights and time.monotonic() - start < RIGHT_LISTEN_WAIT_S:
        rights = [(p, ns) for p, ns in rights if p.poll() is None and not _listening(p.pid, ns)]
        if rights:
            time.sleep(0.02)


def _stop(proc: subprocess.Popen | None, grace: float = 2.0, group: bool = False) -> None:
    """Stop a child we started (and, with `group`, its process group): SIGTERM, then SIGKILL."""
    if proc is None:
        return
    def send(sig):
        try:
            if group:
                os.killpg(proc.pid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)
        except OSError:
            pass
    send(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()


class _CtrlC:
    """Tells a terminal's Ctrl-C from a SIGINT sent to rattan alone (`kill -INT PID`).

    Ctrl-C reaches the whole foreground process group: the command too, which decides (a shell at
    its prompt ignores it), and the run ends when the command does. A SIGINT to rattan alone stops
    the run, as Ctrl-C of a command that obeys it would: KeyboardInterrupt, exit status 130. Which
    one it was, rattan learns from the command's nsexec, in rattan's process group: it writes a
    byte on a pipe when it gets a SIGINT too."""

    # how long the command's nsexec has to say it got the SIGINT too: a Ctrl-C taken for a SIGINT to
    # rattan alone would end the run, so this allows for a loaded machine (a lone SIGINT waits this long)
    WITNESS_S = 1.0

    def __init__(self) -> None:
        self.read, self.write = os.pipe()
        os.set_blocking(self.read, False)

    def __enter__(self) -> "_CtrlC":
        self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self.previous)
        os.close(self.read)
        os.close(self.write)

    seen = False  # a terminal's Ctrl-C reached the command

    def _on_sigint(self, signum, frame) -> None:
        if select.select([self.read], [], [], self.WITNESS_S)[0]:
            self.seen = True
            while True:
                try:
                    if not os.read(self.read, 4096):
                        break
                except BlockingIOError:
                    break
            return  # the terminal's: the command got it
        raise KeyboardInterrupt


class _Terminated(Exception):
    """SIGTERM arrived: unwind and tear down."""


def _sigterm_handler(owner: int):
    def on_sigterm(signum, frame):
        if os.getpid() != owner:  # a forked child of a library, stopped by its parent: not our run
            os._exit(128 + signum)
        raise _Terminated()
    return on_sigterm


@dataclass
class Instance:
    """One running copy of a channel: its namespaces and its nodes in the shared engine."""
    channel: dict[str, Any]
    number: int          # RATTAN_INSTANCE: its position in this run, from 0
    label: str           # how output and the summary name it: `c`, or `c#3` when a channel runs twice or more
    net: ChannelNetwork
    nodes: dict[str, int] = field(default_factory=dict)
    controllers: dict = field(default_factory=dict)  # its Python cells' models, by name
    owns_net: bool = True  # False: a network handed in already open (a pool's), left open at the end
    extra_env: dict = field(default_factory=dict)  # what the run adds for its commands (RATTAN_CONTROL)
    app_cpus: frozenset | None = None  # where its commands run (--app-cpus); None: rattan's own affinity

    def environment(self, side: str = "left") -> dict[str, str]:
        """The process environment plus what the network gives a command of `side` (see
        ChannelNetwork.environment, UpstreamNetwork.environment), RATTAN_INSTANCE and `extra_env`."""
        return {**os.environ, **self.net.environment(side), "RATTAN_INSTANCE": str(self.number),
                **self.extra_env}

    def netns_path(self, side: str) -> str:
        """Where a command of `side` (`left`: the main command, `right`) runs."""
        return self.net.command_netns(side)


def upstream_env(plan: dict) -> dict | None:
    """The `[env]` settings of an upstream Rattan document (TOML/YAML), which the front end always
    writes in the plan's `run` section; None for a .rtn file."""
    env = (plan.get("run") or {}).get("env")
    return env if isinstance(env, dict) else None


def offload_of(plan: dict) -> str:
    """How the engine's ports carry frames (`gso` or `plain`): the plan's run section's `offload`
    (`rattan run --offload`), else netns.DEFAULT_OFFLOAD."""
    mode = (plan.get("run") or {}).get("offload") or DEFAULT_OFFLOAD
    if mode not in OFFLOADS:
        raise RunError(f"offload must be one of {', '.join(OFFLOADS)}, not `{mode}`")
    return mode


def network_for(plan: dict, channel: dict[str, Any]) -> ChannelNetwork:
    net = _network_for(plan, channel)
    net.offload = offload_of(plan)
    return net


def _network_for(plan: dict, channel: dict[str, Any]) -> ChannelNetwork:
    """An upstream document gets upstream's layout (one namespace a side, 10.1.i.x and 10.2.i.x);
    a .rtn file a namespace per endpoint and a /24 per instance (with upstream's variables too when
    the plan's run section says `upstream_variables`, as `rattan link` does)."""
    env = upstream_env(plan)
    if env is not None:
        try:
            return UpstreamNetwork(channel["endpoints"], channel["name"], env)
        except Exception as e:  # NetnsError: a setting upstream refuses
            raise RunError(str(e)) from None
    return ChannelNetwork(channel["endpoints"], channel["name"],
                          upstream_variables=bool((plan.get("run") or {}).get("upstream_variables")))


def _at(value: Any, path: tuple) -> list:
    """The values at a schema path ("*": every item of a list)."""
    if not path:
        return [value]
    head, rest = path[0], path[1:]
    if head == "*":
        return [v for item in value for v in _at(item, rest)] if isinstance(value, list) else []
    return _at(value[head], rest) if isinstance(value, dict) and head in value else []


def _literal_prefixes(channel: dict[str, Any]) -> list[tuple[str, ipaddress.IPv4Network]]:
    """(cell, prefix) of every prefix parameter (`x-unit: prefix`, a router's routes) given as an
    address rather than an endpoint's name."""
    from ..engine.load import prefix_paths
    out = []
    for cell in channel["cells"]:
        for path in prefix_paths(cell["type"]):
            for text in _at(cell.get("config") or {}, path):
                try:
                    out.append((cell["name"], ipaddress.IPv4Network(text, strict=False)))
                except (TypeError, ValueError):
                    pass  # an endpoint's name: resolved to this instance's address
    return out


def check_upstream_addresses(inst: "Instance") -> None:
    """A Compatible-mode instance whose right side could not take 10.2.i.1 in this namespace (another
    instance, or anything else, has it) gets 10.x.i.b with another b, as upstream does; a router of
    the file written for the .1 addresses would then misroute its packets: refuse, saying why."""
    net = inst.net
    if not isinstance(net, UpstreamNetwork) or all(b == 1 for side in net.suffixes.values() for b in side):
        return
    plan = net.planned_addresses()  # what the file's routes are written for (and `rattan sim` gives)
    for side in ("left", "right"):
        for i, name in enumerate(net.names[side], start=1):
            planned = ipaddress.IPv4Address(plan[name])
            actual = ipaddress.IPv4Address(net.endpoints[name].address)
            for cell, prefix in _literal_prefixes(inst.channel):
                if planned != actual and planned in prefix and actual not in prefix:
                    raise RunError(
                        f"instance {inst.label}: its endpoint `{name}` is {actual}, not {planned}: in Compatible "
                        f"mode the right side is this namespace, where 10.2.{i}.1 is taken (by another instance "
                        f"or interface), and cell `{cell}` routes {prefix}, written for {planned}; run the "
                        "file in Isolated mode (`[env] mode = \"Isolated\"`), where every instance has "
                        "namespaces of its own, or one instance at a time")


# The engine thread's nice value in real runs. It does what the kernel's softirq does when it routes,
# and at the applications' own weight every wake-up of theirs preempted it (17,000 times a second
# under one TCP stream): pass-through TCP rose from 0.60-0.64 to 0.68-0.75 of the kernel's figure at
# -5, with no gain further down (benchmarks/real_forwarding.py; docs/running.md).
ENGINE_NICE = -5


def log_segmenting(channel: dict[str, Any], log_cells: list[str] | None) -> set[str]:
    """GSO mode with a packet log: the channel's endpoints whose packets may reach a cell the log
    records (every cell when `log_cells` is None), which must cut super-frames into segments."""
    from ..passes.mark_segmenting import endpoints_reaching
    logged = {c["name"] for c in channel["cells"] if log_cells is None or c["name"] in log_cells}
    return set(endpoints_reaching(channel["endpoints"], [(l["from"], l["to"]) for l in channel["links"]], logged))


class LiveRun:
    """Channel instances on real packets, all forwarded by one engine thread; closed, nothing is left."""

    def __init__(self, plan: dict, channels: list[dict[str, Any]], seed: int = 1,
                 late_threshold_ns: int | None = None, packet_log: str | None = None,
                 log_cells: list[str] | None = None, engine_nice: int = ENGINE_NICE,
                 packet_log_snaplen: int = 0, networks: list | None = None,
                 app_cpus: str = cpu_sets.APP_CPUS_DEFAULT, rps_cpus: str = cpu_sets.RPS_CPUS_DEFAULT,
                 precise: bool = False, coalesce_ns: int | None = None,
                 cores: int | None = None, merge: bool = True, slack_ns: int | None = None,
                 split: bool = False, split_ring: int = 0) -> None:
        """`networks`: one already open network per channel (rattan.runtime.warm, or the library's
        caller), used as they are and left open at close, their lent ports (`ports`) returned; by
        default each instance opens its own and removes it at close. `app_cpus`, `rps_cpus`: where
        the commands run and where the endpoint veths steer what they receive (see
        rattan.runtime.cpus: auto, inherit / off, or a CPU list). `precise`: the engine spins before each
        departure (Engine.set_precise); `coalesce_ns`: its coalescing window (Engine.set_coalesce; None:
        the default). `merge`: in GSO mode, endpoints send consecutive TCP segments as one super-frame
        (Engine.set_merging; on by default). `slack_ns`: how late the departures of paced cells (`bw`,
        `bw_trace`, `token_bucket`: `x-rattan.departures`) may leave to share a wake-up, at most (Engine.set_slack;
        None: the engine's default, 50 us; 0: every departure on time). `split`: with more than one engine
        thread, channels are split at their cuts into regions on different threads, handing off through
        rings of `split_ring` entries (Engine.set_split_real; 0: the default size)."""
        if not channels:
            raise RunError("nothing to run: no channel chosen")
        if len(channels) > MAX_RUN_INSTANCES:
            raise RunError(f"{len(channels)} instances asked; one run starts at most {MAX_RUN_INSTANCES}")
        self.plan, self.seed, self.late_threshold_ns = plan, seed, late_threshold_ns
        self.packet_log, self.log_cells, self.packet_log_snaplen = packet_log, log_cells, packet_log_snaplen
        self.engine_nice = engine_nice  # the engine refuses a value outside -20..19
        self.precise, self.coalesce_ns, self.merge = precise, coalesce_ns, merge
        self.slack_ns = slack_ns
        self.split, self.split_ring = split, split_ring
        from .cores import CoresError, choose
        try:
            self.threads = choose(cores, len(channels), real=True)  # engine threads
        except CoresError as e:
            raise RunError(str(e)) from None
        try:  # `auto`: off the cores the engine threads are pinned to
            self.app_cpus = cpu_sets.app_cpus(app_cpus, self.threads)
            self.rps_cpus = cpu_sets.rps_cpus(rps_cpus, self.threads)
        except cpu_sets.CpuListError as e:
            raise RunError(str(e)) from None
        counts: dict[str, int] = {}
        for c in channels:
            counts[c["name"]] = counts.get(c["name"], 0) + 1
        seen: dict[str, int] = {}
        self.instances: list[Instance] = []
        if networks is not None:
            if len(networks) != len(channels):
                raise RunError(f"{len(networks)} networks given for {len(channels)} channel instances")
            for c, net in zip(channels, networks):
                if list(net.endpoint_names) != list(c["endpoints"]):
                    raise RunError(f"a network of endpoints {', '.join(net.endpoint_names)} cannot carry channel "
                                   f"`{c['name']}` (endpoints {', '.join(c['endpoints'])})")
        for number, c in enumerate(channels):
            k = seen[c["name"]] = seen.get(c["name"], -1) + 1
            label = c["name"] if counts[c["name"]] == 1 else f"{c['name']}#{k}"
            net = network_for(plan, c) if networks is None else networks[number]
            self.instances.append(Instance(c, number, label, net, owns_net=networks is None))
        self.engine = None
        self.python_cells = None  # the thread that ticks the Python cells (controllers.RealTimeDriver)

    def start(self) -> "LiveRun":
        from ..engine import Engine
        from ..engine.load import load_channel
        from . import controllers
        try:
            for inst in self.instances:
                if inst.owns_net:
                    inst.net.open()
                check_upstream_addresses(inst)
                inst.app_cpus = self.app_cpus
                self._steer(inst)
            self.engine = Engine(self.seed)
            from . import cores
            cores.apply(self.engine, self.threads)
            if self.split:
                self.engine.set_split_real(True, self.split_ring)
            if self.late_threshold_ns is not None:
                self.engine.set_late_threshold(self.late_threshold_ns)
            for inst in self.instances:
                eps = inst.net.endpoints
                addresses = {n: int(ipaddress.IPv4Address(ep.address)) for n, ep in eps.items()}
                inst.nodes = load_channel(self.engine, inst.channel, addresses=addresses)
                lent = getattr(inst.net, "ports", {})  # a warm network's open rings
                offload = getattr(inst.net, "offload", DEFAULT_OFFLOAD)
                # GSO mode: super-frames are cut where a cell needs segments (mark_segmenting), and
                # where they may reach a logged cell (a record is a packet as the wire has it)
                cut = set(inst.channel.get("segmenting", ()))
                if self.packet_log:
                    cut |= log_segmenting(inst.channel, self.log_cells)
                for name, ep in eps.items():
                    if name in lent:
                        self.engine.attach_port(inst.nodes[name], lent[name])
                    else:
                        self.engine.attach(inst.nodes[name], inst.net.engine_netns_path, ep.engine_ifname, offload)
                    if offload == "gso" and name in cut:
                        self.engine.set_segmenting(inst.nodes[name])
                    if ep.engine_mac:  # upstream layout: the frames' Ethernet addresses, as upstream's sender
                        self.engine.set_macs(inst.nodes[name], ep.engine_mac, ep.mac)
                schedule_timeline(self.engine, inst.nodes, inst.channel, TIMELINE_HORIZON_NS)
            models, events = [], []
            for inst in self.instances:
                try:
                    mine = controllers.load(self.engine, inst.channel, inst.nodes, self.seed,
                                            instance=inst.label if len(self.instances) > 1 else None)
                except controllers.ControllerError as e:
                    raise RunError(str(e)) from None
                inst.controllers = {c.name: c for c in mine}
                models += mine
                events += controllers.own_timeline(inst.channel, mine, TIMELINE_HORIZON_NS)
            if self.packet_log:
                from . import packet_log
                packet_log.start(self.engine, self.packet_log, self.instances, "real", self.log_cells,
                                 self.packet_log_snaplen)
            self.engine.set_nice(self.engine_nice)
            self.engine.set_precise(self.precise)
            self.engine.set_coalesce(self.coalesce_ns)
            self._set_slack()
            if not self.merge:
                for inst in self.instances:
                    for name in inst.net.endpoints:
                        self.engine.set_merging(inst.nodes[name], False)
            self.engine.start(FOREVER, clock="real")
            if models:
                self.python_cells = controllers.RealTimeDriver(self.engine, controllers.Schedule(models, events)).start()
            self._check_nice()
        except BaseException:
            self.close()
            raise
        return self

    def _steer(self, inst: Instance) -> None:
        """Receive packet steering on the instance's endpoint veths (--rps-cpus): what the engine
        sends into one is received there, so the receiver's stack runs on these CPUs rather than in
        the engine's sendmmsg. Off, every veth is left as made (a fresh veth, or a warm network's
        reset one, steers nothing). The veths go with the run's namespaces (or their warm network's
        next reset), so nothing is undone at the end."""
        if self.rps_cpus is None:
            return
        inst.net.steered = True  # a warm network's reset undoes it (the veths outlive the run)
        for ep in inst.net.endpoints.values():
            set_rps(ep.netns, ep.ifname, self.rps_cpus)

    def _check_nice(self) -> None:
        """Say so if the system kept the engine thread at the applications' weight (no CAP_SYS_NICE)."""
        deadline = time.monotonic() + 2
        while (nice := self.engine.nice) is None and time.monotonic() < deadline:
            time.sleep(0.001)
        if nice is not None and nice != self.engine_nice and self.engine_nice < os.getpriority(os.PRIO_PROCESS, 0):
            sys.stderr.write(f"rattan: warning: the engine thread runs at nice {nice}, not {self.engine_nice} "
                             "(raising a priority needs CAP_SYS_NICE); busy applications will slow it\n")

    def timing(self, wait_s: float = 2.0) -> dict | None:
        """How the engine's loop sleeps and wakes (Engine.timing), waiting up to `wait_s` for the
        loop to start (in precise mode it first measures the stretch)."""
        deadline = time.monotonic() + wait_s
        while (t := self.engine.timing()) is None and time.monotonic() < deadline and self.engine.running:
            time.sleep(0.002)
        return t

    def lateness(self):
        """How late the frames of every instance's endpoints left, merged (see Engine.lateness)."""
        total = None
        for inst in self.instances:
            for name in inst.net.endpoints:
                one = self.engine.lateness(inst.nodes[name])
                total = one if total is None else total.merged(one)
        return total

    def stop(self) -> None:
        """Stop forwarding and write out the packet log, so that counters and log are final and
        agree (the closing table is read after this). Idempotent."""
        if self.python_cells is not None:  # no tick after the last frame: its changes would be lost
            self.python_cells.stop()
        if self.engine is not None:
            self.engine.stop()
            if self.packet_log:
                self.engine.flush_packet_log()

    def close(self) -> None:
        try:
            self.stop()
            if self.engine is not None:
                self.engine.return_ports()  # the rings stay open with their networks, for the next run
        finally:
            for inst in self.instances:
                if inst.owns_net:
                    inst.net.close()

    def __enter__(self) -> "LiveRun":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


    def _set_slack(self) -> None:
        """Paced cells (their schema's `x-rattan.departures`) get their departure slack."""
        from ..registry import default_registry
        reg = default_registry()
        for inst in self.instances:
            for cell in inst.channel["cells"]:
                ct = reg.get(cell["type"])
                if ct is not None and ct.paced():
                    if self.slack_ns is None:
                        self.engine.set_slack(inst.nodes[cell["name"]])
                    else:
                        self.engine.set_slack(inst.nodes[cell["name"]], self.slack_ns)


class ChannelRun(LiveRun):
    """One instance of one channel (the common case, and what tests and benchmarks drive)."""

    def __init__(self, plan: dict, channel: dict[str, Any], seed: int = 1, engine_nice: int = ENGINE_NICE,
                 precise: bool = False, coalesce_ns: int | None = None,
                 app_cpus: str = cpu_sets.APP_CPUS_DEFAULT, rps_cpus: str = cpu_sets.RPS_CPUS_DEFAULT,
                 packet_log: str | None = None, log_cells: list[str] | None = None, merge: bool = True,
                 slack_ns: int | None = None, cores: int | None = None, split: bool = False, split_ring: int = 0) -> None:
        super().__init__(plan, [channel], seed, engine_nice=engine_nice, precise=precise, coalesce_ns=coalesce_ns,
                         app_cpus=app_cpus, rps_cpus=rps_cpus, packet_log=packet_log, log_cells=log_cells,
                         merge=merge, slack_ns=slack_ns, cores=cores, split=split, split_ring=split_ring)
        self.channel = channel

    @property
    def net(self) -> ChannelNetwork:
        return self.instances[0].net

    @property
    def nodes(self) -> dict[str, int]:
        return self.instances[0].nodes

    def environment(self, side: str = "left") -> dict[str, str]:
        return self.instances[0].environment(side)


# -- what runs where

@dataclass(frozen=True)
class Commands:
    """The main command (left side) and the right side's, as argument lists."""
    main: list[str] | None
    right: list[str] | None
    shell: list[str] | None = None  # the interactive session, when there is no main command
    shell_env: dict[str, str] = field(default_factory=dict)  # ... and what it gets in its environment
    both: bool = False  # upstream's Isolated mode: the run lasts until both commands have ended

    @staticmethod
    def resolve(plan: dict, cmd: list[str], right: str | None) -> "Commands":
        """The command line's `-- CMD` and `--right`, else an upstream document's `[commands]`, as
        upstream's src/main.rs runs them: every command of the file goes to `/usr/bin/env`
        unchanged; `Compatible` mode runs `left` only (the right side is the namespace rattan runs
        in), or the shell without it; `Isolated` mode runs `right`, then `left`, and needs both."""
        right_argv = ["/bin/sh", "-c", right] if right else None
        env = upstream_env(plan)
        if env is None:
            return Commands(list(cmd) if cmd else None, right_argv)
        settings = (plan.get("run") or {}).get("commands") or {}
        main = list(cmd) if cmd else ([UPSTREAM_ENV, *settings["left"]] if settings.get("left") else None)
        choice = settings.get("shell") or "Default"
        shell = (os.environ.get("SHELL") or "/bin/sh") if choice == "Default" else SHELLS[choice]
        shell_env = BASH_PROMPT if shell.endswith("/bash") else {}
        if (env.get("mode") or "Compatible") == "Compatible":
            if settings.get("right"):
                sys.stderr.write("rattan: warning: [commands] right is ignored in Compatible mode, as upstream "
                                 "ignores it: the right side is the namespace rattan runs in (use "
                                 "`mode = \"Isolated\"` to run it in a namespace of its own, or --right)\n")
            return Commands(main, right_argv, [UPSTREAM_ENV, shell], shell_env)
        if right_argv is None and settings.get("right"):
            right_argv = [UPSTREAM_ENV, *settings["right"]]
        missing = [side for side, argv in (("left", main), ("right", right_argv)) if not argv]
        if missing:
            raise RunError(f"Isolated mode runs a command on both sides (upstream: \"Isolated mode requires "
                           f"commands to be set in both sides\"); no {' and no '.join(missing)} command: give "
                           "[commands] left and right in the file, or `-- CMD` and --right")
        return Commands(main, right_argv, None, {}, both=True)


def select_channels(plan: dict, names: list[str] | None, every: bool, instances: int) -> list[dict]:
    """The channels to start, each repeated `instances` times, in file order then copy order."""
    if instances < 1:
        raise RunError(f"--instances must be at least 1, not {instances}")
    if every:
        if names:
            raise RunError("--all and --channel choose channels two ways: give one of them")
        chosen = list(plan["channels"])
        if not chosen:
            raise ChannelError("the file has no channel")
    elif names:
        chosen = [choose_channel(plan, n) for n in dict.fromkeys(names)]
    else:
        try:
            chosen = [choose_channel(plan, None)]
        except ChannelError as e:
            raise ChannelError(f"{e}, or run them all with --all") from None
    return [c for c in chosen for _ in range(instances)]


def _check_endpoints(channels: list[dict], commands: Commands) -> None:
    for c in {c["name"]: c for c in channels}.values():
        if len(c["endpoints"]) < 1:
            raise RunError(f"channel `{c['name']}` has no endpoints")
        if commands.right and len(c["endpoints"]) < 2:
            raise RunError(f"channel `{c['name']}` has one endpoint: the right command needs a second")


def _pump(stream: TextIO, out: TextIO, prefix: str, lock: threading.Lock) -> None:
    """Copy a child's output line by line, each line prefixed with its instance's label."""
    for line in iter(stream.readline, ""):
        with lock:
            out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            out.flush()
    stream.close()


def run(plan: dict, channel_names: list[str] | str | None, cmd: list[str], right_cmd: str | None = None,
        seed: int = 1, every: bool = False, instances: int = 1, late_threshold: str = "1ms",
        http: str | None = None, packet_log: str | None = None, log_cells: list[str] | None = None,
        quiet: bool = False, engine_nice: int = ENGINE_NICE, packet_log_snaplen: int = 0,
        precise: bool = False, app_cpus: str = cpu_sets.APP_CPUS_DEFAULT,
        rps_cpus: str = cpu_sets.RPS_CPUS_DEFAULT, cores: int | None = None, split: bool = False) -> int:
    """Run the chosen channel instances with their commands; the exit status (see `_run_many`)."""
    if isinstance(channel_names, str):
        channel_names = [channel_names]
    channels = select_channels(plan, channel_names, every, instances)
    commands = Commands.resolve(plan, cmd, right_cmd)
    _check_endpoints(channels, commands)
    from_file = packet_log is None
    http, packet_log, packet_log_snaplen = file_settings(plan, http, packet_log, packet_log_snaplen)
    if packet_log and from_file and os.path.dirname(packet_log):
        os.makedirs(os.path.dirname(packet_log), exist_ok=True)  # as upstream does for its log
    _threshold(late_threshold)  # a bad threshold is refused before anything is built
    if http:
        from ..control import parse_address
        parse_address(http)  # a bad address is refused before anything is built
    from ..library import Run
    previous = signal.signal(signal.SIGTERM, _sigterm_handler(os.getpid()))
    try:
        # setup and teardown are the library's (rattan.library.Run); the terminal is this function's
        with Run(plan, channels, seed, late_threshold, packet_log, log_cells, packet_log_snaplen, http,
                 quiet=False, engine_nice=engine_nice, app_cpus=app_cpus, rps_cpus=rps_cpus, precise=precise,
                 cores=cores, split=split) as session:
            live = session.live
            started = time.monotonic()
            # the live line shares the terminal with the commands' output; not with an interactive shell
            view = None if quiet else RunView(live, live_line_wanted(sys.stderr.isatty()) and bool(commands.main))
            try:
                with view or nullcontext():
                    if len(live.instances) == 1:
                        return _run_one(live.instances[0], commands)
                    return _run_many(live, commands)
            finally:
                live.stop()  # the table below and the packet log then count the same frames
                if view:
                    print_summary(live, time.monotonic() - started)
                # leaving the block warns when frames left late (Run, quiet=False), after the table
    except _Terminated:
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def file_settings(plan: dict, http: str | None, packet_log: str | None,
                  snaplen: int) -> tuple[str | None, str | None, int]:
    """The control API's address, the packet log and its snap length: the command line's, else an
    upstream document's `[http]` (`enable`, `port`: upstream serves 127.0.0.1:PORT) and `[general]`
    (`packet_log`, a path as given, so relative to the working directory as upstream;
    `packet_log_mode`, whose header-only records become HEADERS_SNAPLEN bytes of each packet)."""
    settings = plan.get("run") or {}
    web, general = settings.get("http") or {}, settings.get("general") or {}
    if http is None and web.get("enable"):
        http = f"127.0.0.1:{web.get('port', 8086)}"
    if packet_log is None and general.get("packet_log"):
        packet_log = str(general["packet_log"])
    if packet_log and not snaplen and (general.get("packet_log") or general.get("packet_log_mode")):
        snaplen = HEADERS_SNAPLEN
    return http, packet_log, snaplen


def _threshold(text: str) -> int:
    from .sim import TIME, quantity
    ns = round(quantity(text, TIME, "--late-threshold") * 10**9)
    if ns <= 0:
        raise RunError("--late-threshold must be longer than 0s")
    return ns


class _Right:
    """The right side's command of one instance: started first, in its own session (a terminal's
    Ctrl-C is the main command's), lingering while what it started runs. With `report` (upstream's
    Isolated mode, where the run waits for both commands), its nsexec says when the command itself
    ends, and with which status."""

    def __init__(self, inst: Instance, argv: list[str], report: bool, **kw) -> None:
        self.status_r = None
        if report:
            self.status_r, w = os.pipe()
            kw["pass_fds"] = (w,)
            argv_opts = ["--status-fd", str(w)]
        else:
            argv_opts = []
        if inst.app_cpus:
            argv_opts += ["--cpus", cpu_sets.format_list(inst.app_cpus)]
        self.netns = inst.netns_path("right")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "rattan.runtime.nsexec", "--linger", *argv_opts,
                                          self.netns, *argv], env=inst.environment("right"),
                                         start_new_session=True, **kw)
        finally:
            if report:
                os.close(w)

    def wait(self) -> int:
        """The command's exit status, once it has ended (what it started may run on until the end)."""
        text = b""
        while chunk := os.read(self.status_r, 64):
            text += chunk
        if text:
            return exit_status(os.waitstatus_to_exitcode(int(text)))
        return exit_status(self.proc.wait())  # nsexec could not start it: its own status

    def stop(self) -> None:
        _stop(self.proc, group=True)
        if self.status_r is not None:
            os.close(self.status_r)
            self.status_r = None


def _run_one(inst: Instance, commands: Commands) -> int:
    """One instance: the command (or an interactive shell) on this terminal; its exit status. In
    upstream's Isolated mode, the run lasts until the right command has ended too (unless a Ctrl-C
    stopped the main one), and its status counts when the main one succeeded."""
    right = main = None
    try:
        if commands.right:
            right = _Right(inst, commands.right, commands.both)
            _wait_until_listening([(right.proc, right.netns)])
        argv = commands.main or commands.shell or [os.environ.get("SHELL", "/bin/sh")]
        env = inst.environment("left")
        if not commands.main:
            env.update(commands.shell_env)
        # Ctrl-C belongs to the command (a shell at its prompt ignores it); the run ends when it does.
        # A SIGINT sent to rattan alone ends the run (see _CtrlC).
        with _CtrlC() as ctrl_c:
            main = in_namespace(inst.netns_path("left"), argv, env, ctrl_c_fd=ctrl_c.write, cpus=inst.app_cpus)
            try:
                status = exit_status(main.wait())
            except KeyboardInterrupt:
                sys.stderr.write("rattan: interrupted (SIGINT); stopping the run\n")
                return 128 + signal.SIGINT
        if commands.both and right is not None and not ctrl_c.seen:
            try:
                right_status = right.wait()
            except KeyboardInterrupt:
                sys.stderr.write("rattan: interrupted (SIGINT); stopping the run\n")
                return 128 + signal.SIGINT
            return status or right_status
        return status
    finally:
        _stop(main)
        if right is not None:
            right.stop()


def exit_status(returncode: int) -> int:
    """A command's status as a shell reports it: a death by signal N is 128 + N (Popen gives -N,
    which as an exit code would read 256 - N)."""
    return 128 - returncode if returncode < 0 else returncode


def _run_many(live: LiveRun, commands: Commands) -> int:
    """Several instances at once, their output prefixed by label. With a main command: wait for
    every instance's, print a summary, and return 0 if all succeeded, else the first failure's
    status. Without: keep the instances up until Ctrl-C or SIGTERM."""
    lock = threading.Lock()
    rights: list[_Right] = []
    mains: list[tuple[Instance, subprocess.Popen]] = []
    pumps: list[threading.Thread] = []
    piped = dict(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 errors="replace")

    def pump(inst: Instance, p: subprocess.Popen) -> subprocess.Popen:
        for stream, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
            t = threading.Thread(target=_pump, args=(stream, out, f"[{inst.label}] ", lock), daemon=True)
            t.start()
            pumps.append(t)
        return p

    try:
        if commands.right:
            for inst in live.instances:
                rights.append(_Right(inst, commands.right, commands.both, **piped))
                pump(inst, rights[-1].proc)
            _wait_until_listening([(r.proc, r.netns) for r in rights])
        if not commands.main:
            _print_instances(live, None)
            sys.stderr.write(f"rattan: {len(live.instances)} instances up; Ctrl-C to stop them\n")
            while True:
                time.sleep(3600)
        mains = [(inst, pump(inst, in_namespace(inst.netns_path("left"), commands.main,
                                                inst.environment("left"), cpus=inst.app_cpus, **piped)))
                 for inst in live.instances]
        statuses = {inst.number: exit_status(p.wait()) for inst, p in mains}
        if commands.both:  # upstream's Isolated mode: each instance's status is its left's, or its right's
            for (inst, _), r in zip(mains, rights):
                statuses[inst.number] = statuses[inst.number] or r.wait()
        for t in pumps:
            t.join(timeout=1.0)
        _print_instances(live, statuses)
        failed = [s for s in statuses.values() if s != 0]
        return failed[0] if failed else 0
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        for _, p in mains:
            _stop(p)
        for r in rights:
            r.stop()


def _print_instances(live: LiveRun, statuses: dict[int, int] | None) -> None:
    """A table of the instances (label, namespaces' addresses, and the command's exit status)."""
    rows = [["instance", "endpoints"] + (["status"] if statuses is not None else [])]
    for inst in live.instances:
        eps = " ".join(f"{n}={ep.address}" for n, ep in inst.net.endpoints.items())
        rows.append([inst.label, eps] + ([str(statuses[inst.number])] if statuses is not None else []))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stderr.write("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() + "\n")

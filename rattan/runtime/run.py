"""`rattan run`: one channel of a plan on real packets between network namespaces.

Builds the instance's namespaces (netns.py), loads the channel into the engine with each endpoint
attached to its veth, runs the engine in real time in its own thread, starts the commands inside
the endpoints' namespaces, and tears everything down however the run ends (normal exit, Ctrl-C,
SIGTERM; a SIGKILL is cleaned up by the next start).
"""
from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from typing import Any

from .netns import ChannelNetwork
from .channel import choose_channel, schedule_timeline

FOREVER = 2**63
TIMELINE_HORIZON_NS = 24 * 3600 * 10**9  # `every` changes are scheduled this far ahead


class RunError(RuntimeError):
    """A run that cannot start; the message says why."""


def in_namespace(netns_path: str, argv: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    """Start argv inside a network namespace (through rattan.runtime.nsexec)."""
    return subprocess.Popen([sys.executable, "-m", "rattan.runtime.nsexec", netns_path, *argv], env=env, **kw)


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


class _Terminated(Exception):
    """SIGTERM arrived: unwind and tear down."""


def _on_sigterm(signum, frame):
    raise _Terminated()


class ChannelRun:
    """A live channel instance: namespaces, the engine attached to them, and their environment."""

    def __init__(self, plan: dict, channel: dict[str, Any], seed: int = 1) -> None:
        self.plan, self.channel, self.seed = plan, channel, seed
        self.net = ChannelNetwork(channel["endpoints"], channel["name"])
        self.engine = None
        self.nodes: dict[str, int] = {}

    def start(self) -> "ChannelRun":
        from ..engine import Engine
        from ..engine.load import load_channel
        self.net.open()
        try:
            eps = self.net.endpoints
            addresses = {n: int(ipaddress.IPv4Address(ep.address)) for n, ep in eps.items()}
            self.engine = Engine(self.seed)
            self.nodes = load_channel(self.engine, self.channel, horizon_ns=TIMELINE_HORIZON_NS,
                                      addresses=addresses)
            for name, ep in eps.items():
                self.engine.attach(self.nodes[name], self.net.engine_netns_path, ep.engine_ifname)
            schedule_timeline(self.engine, self.nodes, self.channel, TIMELINE_HORIZON_NS)
            self.engine.start(FOREVER, clock="real")
        except BaseException:
            self.close()
            raise
        return self

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.net.environment()}

    def close(self) -> None:
        if self.engine is not None:
            self.engine.stop()
        self.net.close()

    def __enter__(self) -> "ChannelRun":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def run(plan: dict, channel_name: str | None, cmd: list[str], right_cmd: str | None = None,
        seed: int = 1) -> int:
    """Run CMD in the first endpoint's namespace (a shell if empty); its exit status."""
    channel = choose_channel(plan, channel_name)
    if len(channel["endpoints"]) < 1:
        raise RunError(f"channel `{channel['name']}` has no endpoints")
    if right_cmd and len(channel["endpoints"]) < 2:
        raise RunError("--right needs a second endpoint")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    right = main = None
    try:
        with ChannelRun(plan, channel, seed) as live:
            env = live.environment()
            eps = list(live.net.endpoints.values())
            if right_cmd:
                right = in_namespace(eps[1].netns_path, ["/bin/sh", "-c", right_cmd], env, start_new_session=True)
                time.sleep(0.3)  # let a server bind before the client starts
            argv = cmd or [os.environ.get("SHELL", "/bin/sh")]
            main = in_namespace(eps[0].netns_path, argv, env)
            try:
                return main.wait()
            finally:
                _stop(main)
                _stop(right, group=True)
    except _Terminated:
        _stop(main)
        _stop(right, group=True)
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)

"""`rattan link`: a two-endpoint path from flags, like Mahimahi's mm-link and mm-delay, and like
upstream Rattan's `rattan link`.

The flags become a small `.rtn` channel (`left` is the command's side, `right` the far side; the
uplink goes left -> right), compiled like any file, so a bad value gets the compiler's own message
pointing at the flag's text. Its cells are named as upstream's `rattan link` names them (`up_1`,
`up_2`, ... and `down_1`, ...: the rate cell, then the delay, then the loss, numbering only the
cells asked for), so upstream scripts reach them through `POST /config/up_1`.

Upstream's flags (stack-rs/rattan `src/channel.rs`, `ChannelArgs`, and the global flags of
`src/main.rs`) are read as upstream reads them: `--uplink-bandwidth` is a human-bandwidth string,
`--uplink-delay` a duration, `--uplink-loss` a probability, `--uplink-queue` one of `infinite`,
`droptail`, `drophead`, `codel` with `--uplink-queue-args` the queue's config as JSON. Our own
spellings (`--uplink-rate`, `.rtn` values and queues) keep working.
"""
from __future__ import annotations

import json
import math
import os
from fractions import Fraction

from ..control.upstream import cell_time
from ..tools.fmt import string_literal
from ..units import RATE, SIZE, TIME, format_quantity

_EXAMPLES = {"rate": "10Mbps", "delay": "20ms", "loss": "1%", "queue": "droptail { packets = 100 }",
             "bandwidth": "10Mbps"}
UPSTREAM_QUEUES = ("infinite", "droptail", "drophead", "codel")
LINK_LAYER_OVERHEAD = 38  # bytes of upstream's BwType::LinkLayer
# upstream's queue configs (cells/bandwidth/queue/*.rs) and their serde fields
_QUEUE_FIELDS = {"droptail": ("packet_limit", "byte_limit", "bw_type"),
                 "drophead": ("packet_limit", "byte_limit", "bw_type"),
                 "codel": ("packet_limit", "byte_limit", "interval", "target", "mtu", "bw_type")}
_CODEL_DEFAULTS = {"interval": 100_000_000, "target": 5_000_000, "mtu": 1500}  # CoDelQueueConfig::default
SHELLS = {"sh": "/bin/sh", "bash": "/bin/bash", "zsh": "/bin/zsh", "fish": "/bin/fish"}  # TaskShell::shell


class LinkFlagError(ValueError):
    """Flags of `rattan link` that cannot all take effect; the message names them and says why."""


def _rate(ns: int) -> str:
    return format_quantity(Fraction(ns), RATE)


def _time(ns: int) -> str:
    return format_quantity(Fraction(ns, 10**9), TIME)


def _size(n_bytes: int) -> str:
    return format_quantity(Fraction(n_bytes * 8), SIZE)


def _upstream_loss(d: str, text: str, warnings: list[str]) -> str | None:
    """`--{d}-loss` as upstream reads it (an f64: a draw in [0, 1) below it drops the packet, so above
    1 always drops and 0 or below never does), as a `.rtn` probability; None if it is no plain number."""
    try:
        p = float(text)
    except ValueError:
        return None
    if math.isnan(p):
        raise LinkFlagError(f"--{d}-loss {text}: not a probability")
    clamped = min(1.0, max(0.0, p))
    if clamped != p:
        warnings.append(f"--{d}-loss {text}: {'above 1 every packet is dropped' if p > 1 else 'at or below 0 none is'}"
                        f" (as upstream); the loss is {clamped:g}")
    return repr(clamped)


def _upstream_queue(d: str, kind: str, args: str | None, warnings: list[str]) -> str:
    """`--{d}-queue KIND [--{d}-queue-args JSON]` as a `.rtn` queue. Without args upstream builds the
    queue's default config (DropTail/DropHead unlimited; CoDel 100ms/5ms/1500B, unlimited)."""
    if kind == "infinite":
        if args is not None:  # channel.rs: the Infinite arm never reads the args
            warnings.append(f"--{d}-queue-args is ignored with --{d}-queue infinite (as upstream)")
        return "infinite {}"
    doc: dict = {}
    if args is not None:
        try:
            doc = json.loads(args)
        except ValueError as e:
            raise LinkFlagError(f"--{d}-queue-args is not JSON: {e} (e.g. '{{\"packet_limit\": 100}}')") from None
        if not isinstance(doc, dict):
            raise LinkFlagError(f"--{d}-queue-args must be a JSON object of the {kind} queue's config "
                                f"({', '.join(_QUEUE_FIELDS[kind])}), not {args}")
    fields = _QUEUE_FIELDS[kind]
    for key in doc:
        if key not in fields:
            from ..diagnostics import did_you_mean
            hint = did_you_mean(key, fields)
            warnings.append(f"--{d}-queue-args: `{key}` is not a field of the {kind} queue ({', '.join(fields)}); "
                            f"upstream ignores it, and so does rattan" + (f"; did you mean `{hint}`?" if hint else ""))

    def count(key: str) -> int | None:
        v = doc.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise LinkFlagError(f"--{d}-queue-args: `{key}` must be a whole number, 0 or more, or null, not {json.dumps(v)}")
        return v

    packets, size = count("packet_limit"), count("byte_limit")
    params = []
    if packets is not None:
        params.append(f"packets = {packets}")
    if size is not None:
        params.append(f"bytes = {_size(size)}")
    bw_type = doc.get("bw_type", "NetworkLayer")
    if bw_type not in ("NetworkLayer", "LinkLayer"):
        raise LinkFlagError(f"--{d}-queue-args: `bw_type` is `NetworkLayer` or `LinkLayer`, not {json.dumps(bw_type)}")
    if bw_type == "LinkLayer" and size is not None:  # bytes counted against byte_limit only
        params.append(f"overhead = {_size(LINK_LAYER_OVERHEAD)}")
    if kind == "codel":
        for key in ("target", "interval"):
            v = doc.get(key)
            ns = _CODEL_DEFAULTS[key] if v is None else (cell_time(v) if isinstance(v, str) else None)
            if ns is None:
                raise LinkFlagError(f"--{d}-queue-args: `{key}` must be a duration like \"5ms\", not {json.dumps(v)}")
            params.append(f"{key} = {_time(ns)}")
        mtu = doc.get("mtu", _CODEL_DEFAULTS["mtu"])
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 0 <= mtu < 2**32:
            raise LinkFlagError(f"--{d}-queue-args: `mtu` must be a whole number of bytes, not {json.dumps(mtu)}")
        params.append(f"mtu = {_size(mtu)}")
        if packets is None and size is None:  # upstream's CoDel without limits is unbounded
            params.insert(0, "packets = unlimited")
        return f"codel {{ {', '.join(params)} }}"
    if packets is None and size is None:  # a DropTail/DropHead without limits never drops
        return "infinite {}"
    return f"{kind} {{ {', '.join(params)} }}"


def _direction(a, d: str, prefix: str, warnings: list[str]) -> tuple[list[tuple[str, str]], str]:
    """The cells of direction `d` (uplink, downlink) as (name, `.rtn` cell), and its chain (`pass {}`
    when nothing is asked). Every given flag lands in a cell, or LinkFlagError says why it cannot."""
    from ..frontends.upstream import parse_rate
    get = {f: getattr(a, f"{d}_{f}".replace("-", "_"), None)
           for f in ("rate", "bandwidth", "delay", "loss", "trace", "queue", "queue_args")}
    for flag, value in get.items():
        name = flag.replace("_", "-")
        if value is not None and not value.strip():
            raise LinkFlagError(f"--{d}-{name} is empty: give a value or leave the flag out")
        if value is not None and flag in ("rate", "delay", "loss", "queue") and not _one_value(value) \
                and not (flag == "delay" and cell_time(value) is not None) and not (flag == "loss" and _is_float(value)):
            # Pasted into the channel, `10Mbps } -> loss { rate = 50%` would add a cell of its own.
            raise LinkFlagError(f"--{d}-{flag} takes one value, e.g. {_EXAMPLES[flag]}; `{value}` is not one")
    rates = [f"--{d}-{f}" for f in ("rate", "bandwidth", "trace") if get[f] is not None]
    if len(rates) > 1:
        raise LinkFlagError(f"{' and '.join(rates)} all give the {d} rate; choose one"
                            if len(rates) > 2 else f"{rates[0]} and {rates[1]} both give the {d} rate; choose one")
    queue, args = get["queue"], get["queue_args"]
    if queue is not None and not rates:
        # Only a rate-limited cell holds a queue: without one nothing would ever drain it.
        raise LinkFlagError(f"--{d}-queue needs a rate that drains it: give --{d}-rate or --{d}-trace "
                            f"(or upstream's --{d}-bandwidth)")
    if args is not None and queue is None:
        raise LinkFlagError(f"--{d}-queue-args needs --{d}-queue (one of {', '.join(UPSTREAM_QUEUES)})")
    if queue is not None and queue.strip() in UPSTREAM_QUEUES:
        queue = _upstream_queue(d, queue.strip(), args, warnings)
    elif args is not None:
        raise LinkFlagError(f"--{d}-queue-args goes with an upstream queue type ({', '.join(UPSTREAM_QUEUES)}); "
                            f"the .rtn queue `{queue}` carries its own parameters")
    q = f", queue = {queue}" if queue is not None else ""
    cells: list[str] = []
    if get["trace"] is not None:
        cells.append(f"bw_trace {{ trace = {string_literal(os.path.abspath(get['trace']))}{q} }}")
    elif get["bandwidth"] is not None:
        bps = parse_rate(get["bandwidth"])
        if bps is None:
            raise LinkFlagError(f"--{d}-bandwidth `{get['bandwidth']}` is not a bandwidth upstream reads "
                                f"(human-bandwidth: 10Mbps, 1Gbps 200Mbps, 500kbps)")
        cells.append(f"bw {{ rate = {_rate(bps)}{q} }}")
    elif get["rate"] is not None:
        cells.append(f"bw {{ rate = {get['rate']}{q} }}")
    if get["delay"] is not None:
        ns = cell_time(get["delay"])  # upstream's reading; where it reads nothing, the .rtn value's
        cells.append(f"delay {{ delay = {_time(ns) if ns is not None else get['delay']} }}")
    if get["loss"] is not None:
        cells.append(f"loss {{ rate = {_upstream_loss(d, get['loss'], warnings) or get['loss']} }}")
    named = [(f"{prefix}_{i}", c) for i, c in enumerate(cells, start=1)]
    return named, " -> ".join(n for n, _ in named) or "pass {}"


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _one_value(text: str) -> bool:
    """Whether `text` reads as exactly one `.rtn` value (a bad unit is still one value: the compiler
    reports it, pointing at the flag's text)."""
    from ..diagnostics import Sink
    from ..source import SourceMap
    from ..syntax import ast
    from ..syntax.parser import parse
    head = "let v = "
    file = parse(SourceMap().add("<flag>.rtn", f"{head}{text}\n"), Sink())
    return (len(file.body) == 1 and isinstance(file.body[0], ast.Let)
            and file.body[0].value.span.end == len(head) + len(text.rstrip()))


def link_source(a, warnings: list[str] | None = None) -> str:
    """The `.rtn` text of the path that `rattan link` flags describe (LinkFlagError if some flag
    could not take effect). What upstream would ignore is appended to `warnings`."""
    warnings = [] if warnings is None else warnings
    (up, up_chain), (down, down_chain) = (_direction(a, d, p, warnings)
                                          for d, p in (("uplink", "up"), ("downlink", "down")))
    cells = "".join(f"    cell {n}: {c}\n" for n, c in up + down)
    return (f"# made by rattan link\nchannel link {{\n    endpoints left, right\n{cells}"
            f"    left -> {up_chain} -> right\n    right -> {down_chain} -> left\n}}\n")


def shell_command(a) -> list[str] | None:
    """`-s SHELL` without a command: the shell to run (upstream's TaskShell); None for the default."""
    shell = getattr(a, "shell", None) or "default"
    return [SHELLS[shell]] if shell != "default" else None

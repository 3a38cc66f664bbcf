"""`rattan link`: a two-endpoint path from flags, like Mahimahi's mm-link and mm-delay.

The flags become a small `.rtn` channel (`left` is the command's side, `right` the far side; the
uplink goes left -> right), compiled like any file, so a bad value gets the compiler's own message
pointing at the flag's text.
"""
from __future__ import annotations

import os

from ..tools.fmt import string_literal

_EXAMPLES = {"rate": "10Mbps", "delay": "20ms", "loss": "1%", "queue": "droptail { packets = 100 }"}


class LinkFlagError(ValueError):
    """Flags of `rattan link` that cannot all take effect; the message names them and says why."""


def _direction(d: str, rate: str | None, delay: str | None, loss: str | None, trace: str | None,
               queue: str | None) -> str:
    """The chain of cells of direction `d` (uplink, downlink), in `.rtn` (`pass {}` when nothing is
    asked). Every given flag lands in a cell, or LinkFlagError says why it cannot."""
    given = {"rate": rate, "delay": delay, "loss": loss, "trace": trace, "queue": queue}
    for flag, value in given.items():
        if value is not None and not value.strip():
            raise LinkFlagError(f"--{d}-{flag} is empty: give a value or leave the flag out")
        if value is not None and flag != "trace" and not _one_value(value):
            # Pasted into the channel, `10Mbps } -> loss { rate = 50%` would add a cell of its own.
            raise LinkFlagError(f"--{d}-{flag} takes one value, e.g. {_EXAMPLES[flag]}; `{value}` is not one")
    if rate is not None and trace is not None:
        raise LinkFlagError(f"--{d}-rate and --{d}-trace both give the {d} rate; choose one")
    if queue is not None and rate is None and trace is None:
        # Only a rate-limited cell holds a queue: without one nothing would ever drain it.
        raise LinkFlagError(f"--{d}-queue needs a rate that drains it: give --{d}-rate or --{d}-trace")
    q = f", queue = {queue}" if queue is not None else ""
    cells = []
    if trace is not None:
        cells.append(f"bw_trace {{ trace = {string_literal(os.path.abspath(trace))}{q} }}")
    elif rate is not None:
        cells.append(f"bw {{ rate = {rate}{q} }}")
    if delay is not None:
        cells.append(f"delay {{ delay = {delay} }}")
    if loss is not None:
        cells.append(f"loss {{ rate = {loss} }}")
    return " -> ".join(cells) or "pass {}"


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


def link_source(a) -> str:
    """The `.rtn` text of the path that `rattan link` flags describe (LinkFlagError if some flag
    could not take effect)."""
    up, down = (_direction(d, *(getattr(a, f"{d}_{flag}") for flag in ("rate", "delay", "loss", "trace", "queue")))
                for d in ("uplink", "downlink"))
    return (f"# made by rattan link\nchannel link {{\n    endpoints left, right\n"
            f"    left -> {up} -> right\n    right -> {down} -> left\n}}\n")

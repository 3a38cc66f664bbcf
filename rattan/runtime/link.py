"""`rattan link`: a two-endpoint path from flags, like Mahimahi's mm-link and mm-delay.

The flags become a small `.rtn` channel (`left` is the command's side, `right` the far side; the
uplink goes left -> right), compiled like any file, so a bad value gets the compiler's own message
pointing at the flag's text.
"""
from __future__ import annotations

import json
import os


def _direction(rate: str | None, delay: str | None, loss: str | None, trace: str | None,
               queue: str | None) -> str:
    """The chain of cells of one direction, in `.rtn` (`pass {}` when nothing is asked)."""
    q = f", queue = {queue}" if queue else ""
    cells = []
    if trace:
        cells.append(f"bw_trace {{ trace = {json.dumps(os.path.abspath(trace))}{q} }}")
    elif rate:
        cells.append(f"bw {{ rate = {rate}{q} }}")
    if delay:
        cells.append(f"delay {{ delay = {delay} }}")
    if loss:
        cells.append(f"loss {{ rate = {loss} }}")
    return " -> ".join(cells) or "pass {}"


def link_source(a) -> str:
    """The `.rtn` text of the path that `rattan link` flags describe."""
    up = _direction(a.uplink_rate, a.uplink_delay, a.uplink_loss, a.uplink_trace, a.uplink_queue)
    down = _direction(a.downlink_rate, a.downlink_delay, a.downlink_loss, a.downlink_trace, a.downlink_queue)
    return (f"# made by rattan link\nchannel link {{\n    endpoints left, right\n"
            f"    left -> {up} -> right\n    right -> {down} -> left\n}}\n")

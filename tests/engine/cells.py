"""Cells for engine tests, through the engine's one generic entry point, and the shared helpers of the
engine's and the cells' tests (a chain of cells between two endpoints, conservation of packets).

A test writes only the parameters it cares about, in the plan's form (base units); the rest come
from the cell's schema defaults, as the compiler fills them in a plan.
"""
from __future__ import annotations

import ipaddress

from rattan.engine.binding import Engine
from rattan.registry import default_registry

SEC = 10**9


def with_defaults(type_: str, config: dict) -> dict:
    """`config` with the schema's top-level defaults added (the compiler's job for a plan)."""
    ct = default_registry().get(type_)
    out = {k: v for k, v in ct.properties.items() if "default" in v and k not in config}
    out = {k: v["default"] for k, v in out.items()}
    out.update(config)
    return out


def cell(engine: Engine, type_: str, outputs: int = 1, **config) -> int:
    """A cell of `type_` with these parameters (plan form) and the schema's defaults for the rest."""
    return engine.add_cell(type_, with_defaults(type_, config), outputs)


def chain(engine: Engine, *cells: int):
    """left -> cells... -> right; returns (left, right)."""
    left, right = engine.add_endpoint(), engine.add_endpoint()
    prev = left
    for c in cells:
        engine.link(prev, 0, c)
        prev = c
    engine.link(prev, 0, right)
    return left, right


def conserved(engine: Engine, *nodes: int) -> None:
    """Every packet and byte that came in or was created went out, was dropped or still waits."""
    for n in nodes:
        c = engine.counters(n)
        assert c.in_packets + c.created_packets == c.out_packets + c.dropped_packets + c.queued_packets, (n, c)
        assert c.in_bytes + c.created_bytes == c.out_bytes + c.dropped_bytes + c.queued_bytes, (n, c)


def route(addr: int, prefix_len: int, port: int) -> dict:
    """A router's route record for an integer IPv4 address."""
    return {"kind": "route", "prefix": f"{ipaddress.IPv4Address(addr)}/{prefix_len}", "port": port}


def steps(points: list[tuple[int, float]], period_ns: int | None = None) -> dict:
    """A `TIME VALUE` trace as the compiler loads it; with a period, a last line ends it (to loop)."""
    lines = [[t, v] for t, v in points]
    if period_ns is not None:
        lines.append([period_ns, points[-1][1]])
    return {"format": "steps", "steps": lines}


def plan_of(text: str) -> dict:
    """The plan the compiler makes of a `.rtn` text (which must compile without errors)."""
    from rattan.compiler import compile_text
    from rattan.plan.emit import build_plan

    comp = compile_text(text)
    errors = [d for d in comp.diagnostics if d.severity == "error"] if hasattr(comp, "diagnostics") else []
    assert comp.program is not None and not errors, errors
    return build_plan(comp.program, comp.sources, default_registry())


def sim_document(directory, text: str, flow: str, duration: str, interval: str = "1s",
                 files: dict[str, str] | None = None, name: str = "doc.toml") -> dict:
    """`rattan sim --json` of a document (and the files it reads) written in `directory`: the result."""
    import contextlib
    import io
    import json
    import os

    from rattan.cli import main

    for fname, body in {**(files or {}), name: text}.items():
        with open(os.path.join(directory, fname), "w", encoding="utf-8") as fh:
            fh.write(body)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["sim", os.path.join(directory, name), "--flow", flow, "--duration", duration,
                     "--interval", interval, "--json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())

"""The engine's reader of `TIME VALUE` traces, shared by delay_trace and loss_trace: what it refuses and why.
(Each cell's own behaviour is tested in its folder, stdlib_cells/<type>/.)"""
from __future__ import annotations

import pytest

from rattan.engine import Engine, EngineError

from tests.engine.cells import cell, steps

MS = 10**6


def test_step_traces_are_checked():
    e = Engine(1)
    with pytest.raises(EngineError, match=r"cell type `loss_trace`: parameter `trace.steps\[1\]`: times must increase"):
        cell(e, "loss_trace", trace=steps([(0, 0.1), (0, 0.2)]))
    with pytest.raises(EngineError, match="loss probability must be between 0 and 1"):
        cell(e, "loss_trace", trace=steps([(0, 1.5)]))
    with pytest.raises(EngineError, match=r"parameter `trace.steps`: no steps"):
        cell(e, "delay_trace", trace={"format": "steps", "steps": []})
    with pytest.raises(EngineError, match=r"parameter `trace.format`: missing"):
        cell(e, "delay_trace", trace={"steps": [[0, MS]]})

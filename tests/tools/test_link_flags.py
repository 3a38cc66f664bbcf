"""`rattan link` turns its flags into a channel (no root needed to check them): every flag either
lands in a cell of its direction or is a usage error naming it."""
from __future__ import annotations

import itertools
import os

import pytest

from tests.conftest import ROOT

TRACE = ROOT / "examples" / "traces" / "synthetic-lte.down"
# Each flag of one direction, the value given, and what the plan's cell must then carry.
FLAGS = {
    "rate": ("10Mbps", ("bw", "rate", 10_000_000)),
    "delay": ("20ms", ("delay", "delay", 20_000_000)),
    "loss": ("1%", ("loss", "rate", 0.01)),
    "trace": (str(TRACE), ("bw_trace", "trace", str(TRACE))),
    "queue": ("droptail { packets = 100 }", (None, "queue", {"kind": "droptail", "packets": 100})),
}
COMBINATIONS = [c for n in range(len(FLAGS) + 1) for c in itertools.combinations(FLAGS, n)]


def _path(channel: dict, src: str, dst: str) -> list[dict]:
    """The cells a packet from `src` crosses to `dst`, in order (each cell of a link has one output)."""
    cells = {c["name"]: c for c in channel["cells"]}
    nxt = {(lk["from"], lk["port"]): lk["to"] for lk in channel["links"]}
    out, at = [], nxt[(src, 0)]
    while at != dst:
        out.append(cells[at])
        at = nxt[(at, 0)]
    return out


def _plan(text: str) -> dict:
    from rattan.compiler import compile_text
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    comp = compile_text(text, "<rattan link>.rtn", path=str(ROOT / "link.rtn"))
    assert comp.ok, [d.message for d in comp.diagnostics]
    (channel,) = build_plan(comp.program, comp.sources, default_registry())["channels"]
    return channel


@pytest.mark.parametrize("direction", ["uplink", "downlink"])
@pytest.mark.parametrize("given", COMBINATIONS, ids=lambda c: "+".join(c) or "none")
def test_every_flag_takes_effect_or_is_a_usage_error(run_cli, direction, given):
    argv = [x for flag in given for x in (f"--{direction}-{flag}", FLAGS[flag][0])]
    code, out, err = run_cli("link", *argv, "--print")
    if "rate" in given and "trace" in given:
        assert code == 2 and out == ""
        assert f"--{direction}-rate and --{direction}-trace both give the {direction} rate; choose one" in err
        return
    if "queue" in given and "rate" not in given and "trace" not in given:
        assert code == 2 and out == ""
        assert (f"--{direction}-queue needs a rate that drains it: give --{direction}-rate or "
                f"--{direction}-trace") in err
        return
    assert code == 0, err
    channel = _plan(out)
    ends = ("left", "right") if direction == "uplink" else ("right", "left")
    cells = _path(channel, *ends)
    assert _path(channel, *reversed(ends)) == []  # the other direction is untouched
    rate_cell = next((c for c in cells if c["type"] in ("bw", "bw_trace")), None)
    for flag in given:
        kind, key, want = FLAGS[flag][1]
        cell = rate_cell if kind is None else next((c for c in cells if c["type"] == kind), None)
        assert cell is not None and cell["config"][key] == want, (flag, cells)
    # Nothing asked, nothing added: the direction holds exactly the cells of its flags.
    assert len(cells) == len({"rate", "trace", "delay", "loss"} & set(given))


@pytest.mark.parametrize("flag", list(FLAGS))
def test_an_empty_flag_value_is_a_usage_error(run_cli, flag):
    code, out, err = run_cli("link", f"--uplink-{flag}", " ", "--print")
    assert code == 2 and out == ""
    assert f"--uplink-{flag} is empty" in err


@pytest.mark.parametrize("flag, value", [
    ("rate", "10Mbps } -> loss { rate = 50%"),      # would add a loss cell
    ("rate", "10Mbps, queue = codel {}"),           # would add a parameter
    ("delay", "20ms # a comment"),                  # would comment out the rest of the path
    ("loss", "1% } -> delay { delay = 1s"),
    ("queue", "droptail { packets = 100 } } -> loss { rate = 9%"),
])
def test_a_flag_value_cannot_reach_beyond_its_cell(run_cli, flag, value):
    extra = ["--uplink-rate", "10Mbps"] if flag == "queue" else []  # a queue alone is refused anyway
    code, out, err = run_cli("link", f"--uplink-{flag}", value, *extra, "--print")
    assert code == 2 and out == ""
    assert f"--uplink-{flag} takes one value" in err and value in err


def test_a_trace_path_keeps_every_character(run_cli, tmp_path):
    trace = tmp_path / 'lte "é"\\1.down'
    trace.write_bytes(TRACE.read_bytes())
    code, out, err = run_cli("link", "--uplink-trace", str(trace), "--print")
    assert code == 0, err
    (cell,) = _path(_plan(out), "left", "right")
    assert cell["config"]["trace"] == os.path.abspath(trace)


def test_link_prints_the_path_it_would_run(run_cli):
    code, out, _ = run_cli("link", "--uplink-rate", "10Mbps", "--uplink-delay", "20ms", "--downlink-loss", "1%",
                           "--uplink-queue", "droptail { packets = 100 }", "--print")
    assert code == 0
    assert "cell up_1: bw { rate = 10Mbps, queue = droptail { packets = 100 } }\n    cell up_2: delay { delay = 20ms }" in out
    assert "cell down_1: loss { rate = 1% }" in out
    assert "left -> up_1 -> up_2 -> right" in out and "right -> down_1 -> left" in out


@pytest.mark.parametrize("rate", ["10Mbsp", "10Mbs"])  # `10Mbs` in a rate is no size of megabits
def test_link_reports_a_bad_flag_value_with_the_compiler_message(run_cli, rate):
    code, _, err = run_cli("link", "--uplink-rate", rate, "--", "true")
    assert code == 1
    assert "error[RTN004]" in err and "did you mean `10Mbps`" in err and "RTN021" not in err

"""The `loss_trace` cell in virtual time."""
from __future__ import annotations

import json

import pytest

from rattan.engine import Engine, EngineError

from tests.engine.cells import SEC, cell, chain, conserved, sim_document, steps


def test_loss_trace_follows_the_trace():
    e = Engine(3)
    lt = cell(e, "loss_trace", trace=steps([(0, 0.0), (10 * SEC, 0.2), (20 * SEC, 0.05)]), loop=False)
    left, right = chain(e, lt)
    f = e.add_flow(left, right, "cbr", 120_000_000, 1500)  # 10k packets/s
    e.run_until(10 * SEC)
    assert e.counters(lt).dropped_packets == 0
    e.run_until(20 * SEC)
    assert e.counters(lt).dropped_packets / 100_000 == pytest.approx(0.2, abs=0.005)
    before = e.counters(lt).dropped_packets
    e.run_until(40 * SEC)
    assert (e.counters(lt).dropped_packets - before) / 200_000 == pytest.approx(0.05, abs=0.002)
    assert e.counters(lt).dropped_by_reason.keys() == {"loss"}
    assert e.flow_stats(f)["received_packets"] == e.counters(lt).out_packets
    conserved(e, lt)


@pytest.mark.parametrize("start, lost", [("run", 0), ("first_packet", 1000)])
def test_loss_trace_can_start_at_the_first_packet(start, lost):
    # everything is lost in the trace's first second; the only flow starts 2 s into the run
    e = Engine(1)
    lt = cell(e, "loss_trace", trace=steps([(0, 1.0), (SEC, 0.0)]), loop=False, start=start)
    left, right = chain(e, lt)
    e.add_flow(left, right, "cbr", 12_000_000, 1500, start_ns=2 * SEC)  # 1000 packets/s
    e.run_until(5 * SEC)
    assert e.counters(lt).dropped_packets == lost
    conserved(e, lt)


def segments(*segs, repeat=1):
    """A netem-trace model as the front end puts it in a plan: (duration_ns, loss pattern) segments."""
    return {"format": "segments", "value": "loss_pattern", "segments": [[d, p] for d, p in segs], "repeat": repeat}


def test_a_model_step_holds_a_burst_pattern_and_the_last_stays_after_the_model():
    # [0.5, 0.0]: a packet after a loss is never lost, so 1/3 are lost (L = (1 - L) / 2) and never two
    # in a row; [0.1, 0.2] (StaticLossConfig's default): L = 0.1 (1 - L) + 0.2 L = 1/9, not 0.1
    e = Engine(5)
    lt = cell(e, "loss_trace", trace=segments((10 * SEC, [0.5, 0.0]), (10 * SEC, [0.1, 0.2])))
    left, right = chain(e, lt)
    f = e.add_flow(left, right, "cbr", 120_000_000, 1500, samples=True)  # 10k packets/s
    e.run_until(10 * SEC)
    assert e.counters(lt).dropped_packets / 100_000 == pytest.approx(1 / 3, abs=0.006)
    _, seqs = e.flow_samples(f)
    assert max(b - a for a, b in zip(seqs, seqs[1:])) == 2  # one lost packet at a time
    first = e.counters(lt).dropped_packets
    e.run_until(20 * SEC)
    assert (e.counters(lt).dropped_packets - first) / 100_000 == pytest.approx(1 / 9, abs=0.004)
    second = e.counters(lt).dropped_packets
    e.run_until(40 * SEC)  # the model ended at 20 s: its last pattern stays (upstream's LossReplay)
    assert (e.counters(lt).dropped_packets - second) / 200_000 == pytest.approx(1 / 9, abs=0.003)
    assert e.flow_stats(f)["received_packets"] == e.counters(lt).out_packets
    conserved(e, lt)


def test_losses_in_a_row_carry_over_into_the_next_step():
    # upstream's LossReplay counts losses in a row for the cell (`prev_loss`), not per step: after a
    # second of [1.0] the run is long, so [0.0, 1.0] keeps losing everything; counted afresh it would
    # lose nothing
    e = Engine(1)
    lt = cell(e, "loss_trace", trace=segments((SEC, [1.0]), (SEC, [0.0, 1.0])))
    left, right = chain(e, lt)
    e.add_flow(left, right, "cbr", 12_000_000, 1500)  # 1000 packets/s
    e.run_until(5 * SEC)
    assert e.counters(lt).out_packets == 0 and e.counters(lt).dropped_packets == e.counters(lt).in_packets > 4900
    conserved(e, lt)


def test_an_empty_pattern_never_drops_and_patterns_are_checked():
    e = Engine(1)
    lt = cell(e, "loss_trace", trace=segments((SEC, []), (SEC, [0.0])))  # upstream: last().unwrap_or(0.0)
    left, right = chain(e, lt)
    e.add_flow(left, right, "cbr", 12_000_000, 1500)
    e.run_until(3 * SEC)
    assert e.counters(lt).dropped_packets == 0 and e.counters(lt).out_packets > 2900
    with pytest.raises(EngineError, match="loss probability must be between 0 and 1"):
        cell(Engine(1), "loss_trace", trace=segments((SEC, [0.1, 1.5])))
    with pytest.raises(EngineError, match=r"`trace.segments\[0\]\[1\]`: a pattern of several values is a loss "
                                          r"pattern, for `loss_trace` only"):
        cell(Engine(1), "delay_trace", trace={"format": "segments", "segments": [[SEC, [1, 2]]], "repeat": 1})


def test_an_upstream_loss_replay_with_a_burst_pattern_compiles_and_simulates(tmp_path, capsys, monkeypatch):
    """A TOML LossReplay whose model is StaticLossConfig's default pattern [0.1, 0.2], repeated forever."""
    from rattan.cli import main
    (tmp_path / "loss.json").write_text('{"RepeatedLossPatternConfig": {"pattern": ['
                                        '{"StaticLossConfig": {"loss": [0.1, 0.2], "duration": "1s"}}]}}')
    (tmp_path / "up.toml").write_text('[cells.l]\ntype = "LossReplay"\ntrace = "loss.json"\n'
                                      '[links]\nleft = "l"\nl = "right"\nright = "left"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "up.toml", "-o", "up.json"]) == 0, capsys.readouterr().err
    assert main(["sim", "up.json", "--flow", "left->right:cbr:120Mbps", "--duration", "20s", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    c = out["cells"]["l"]
    assert c["dropped_packets"] / c["in_packets"] == pytest.approx(1 / 9, abs=0.004)  # 0.1 if it were Bernoulli


def test_after_a_finite_model_ends_its_last_pattern_stays(tmp_path):
    """Upstream's LossReplay (rattan-core/src/cells/loss.rs, update_loss): when next_loss() gives None
    the pattern is not updated ("if the trace has gone to an end, the last value will be used")."""
    model = ('{"RepeatedLossPatternConfig": {"count": 1, "pattern": ['
             '{"StaticLossConfig": {"loss": [0.0], "duration": "2s"}}, '
             '{"StaticLossConfig": {"loss": [0.5, 0.0], "duration": "2s"}}]}}')
    doc = '[cells.l]\ntype = "LossReplay"\ntrace = "l.json"\n[links]\nleft = "l"\nl = "right"\nright = "left"\n'
    r = sim_document(str(tmp_path), doc, "left->right:cbr:120Mbps", "10s", interval="2s", files={"l.json": model})
    dropped = dict(zip(r["series"]["t_s"], r["series"]["cells"]["l"]["dropped_packets"]))
    assert dropped[2.0] <= 1  # (the sample at 2 s ends with the packet that arrives at 2 s)
    for t in (4.0, 6.0, 8.0, 10.0):  # 20,000 packets each 2 s, a third of them lost
        assert dropped[t] / 20_000 == pytest.approx(1 / 3, abs=0.015), t

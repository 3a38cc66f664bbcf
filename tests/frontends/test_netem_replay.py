"""Upstream replay cells with netem-trace models, run in virtual time: a model says itself how it repeats."""
from __future__ import annotations

import json


def _sim(run_cli, path, flow: str, duration: str = "6s") -> dict:
    code, out, err = run_cli("sim", str(path), "--flow", flow, "--duration", duration, "--interval", "1s", "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_pattern_without_count_repeats_forever_in_a_delay_replay(run_cli, tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"RepeatedDelayPatternConfig": {"pattern": [
        {"StaticDelayConfig": {"delay": "10ms"}}, {"StaticDelayConfig": {"delay": "50ms"}}]}}))
    doc = tmp_path / "r.toml"
    doc.write_text('[cells.d]\ntype = "DelayReplay"\ntrace = "d.json"\n'
                   '[links]\nleft = "d"\nd = "right"\nright = "left"\n')
    means = _sim(run_cli, doc, "left->right:cbr:1Mbps")["series"]["flows"][0]["delay_ms_mean"]
    # 10 ms, then 50 ms, and again: the second period starts at 2 s (a packet queued behind a
    # 50 ms one in a 10 ms second keeps its order, so allow a little above 10)
    assert [round(m) for m in means[1:6:2]] == [50, 50, 50]
    assert all(10 <= m < 13 for m in means[2:6:2])


def test_a_forever_tail_after_a_prefix_replays_only_the_tail(run_cli, tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"RepeatedBwPatternConfig": {"count": 1, "pattern": [
        {"StaticBwConfig": {"bw": "2Mbps", "duration": "1s"}},
        {"RepeatedBwPatternConfig": {"pattern": [{"StaticBwConfig": {"bw": "8Mbps"}},
                                                 {"StaticBwConfig": {"bw": "4Mbps"}}]}}]}}))
    doc = tmp_path / "b.toml"
    doc.write_text('[cells.b]\ntype = "BwReplay"\ntrace = "b.json"\nqueue = "DropTail"\n'
                   '[cells.b.queue_config]\npacket_limit = 10\n'
                   '[links]\nleft = "b"\nb = "right"\nright = "left"\n')
    bps = _sim(run_cli, doc, "left->right:cbr:10Mbps", "7s")["series"]["flows"][0]["received_bps"]
    assert [round(x / 1e6) for x in bps] == [2, 8, 4, 8, 4, 8, 4]

"""Upstream netem-trace models (`.json`/`.toml`) read by the *_trace cells."""
from __future__ import annotations

import json

import pytest

from rattan.frontends.netem_trace import ModelError, parse_model


def test_repeated_bw_pattern_with_both_encodings():
    text = json.dumps({"RepeatedBwPatternConfig": {"pattern": [
        {"StaticBwConfig": {"bw": {"gbps": 0, "bps": 12000000}, "duration": {"secs": 1, "nanos": 0}}},
        {"StaticBwConfig": {"bw": "24Mbps", "duration": "1s 500ms"}}], "count": 2}})
    m = parse_model(text, "json", "bw")
    assert m["segments"] == [[10**9, 12_000_000], [1_500_000_000, 24_000_000]] * 2
    assert m["repeat"] == 1 and m["value"] == "rate_bps"


def test_count_zero_repeats_forever():
    text = '{"RepeatedDelayPatternConfig": {"pattern": [{"StaticDelayConfig": {"delay": "5ms"}}], "count": 0}}'
    m = parse_model(text, "json", "delay")
    assert m == {"format": "segments", "value": "delay_ns", "segments": [[10**9, 5_000_000]], "repeat": 0}


def test_toml_loss_model():
    text = 'StaticLossConfig = { loss = [0.1, 0.5], duration = "2s" }\n'
    assert parse_model(text, "toml", "loss")["segments"] == [[2 * 10**9, [0.1, 0.5]]]


@pytest.mark.parametrize("text, message", [
    ('{"NormalizedBwConfig": {"mean": "12Mbps"}}', "random model"),
    ('{"StaticBwConfig": {"duration": "1s"}}', "`bw` is required"),
    ('{"StaticBwConfig": {"bw": "12 parsecs"}}', "expected a rate"),
    ('{"StaticDelayConfig": {"delay": "10ms", "duraton": "1s"}}', "unknown field `duraton`"),
    ('{"StaticLossConfig": {"loss": [1.5]}}', "list of probabilities"),
    ('{"StaticBwConfig": {"bw": "1Mbps", "duration": "0s"}}', "no segment"),
    ('[1, 2]', "one model tagged"),
    ('{', "not valid JSON"),
])
def test_bad_models_are_explained(text, message):
    with pytest.raises(ModelError, match=message):
        parse_model(text, "json", "bw" if "Bw" in text or text in ("[1, 2]", "{") else
                    "delay" if "Delay" in text else "loss")


def test_replay_cells_compile_with_models(run_cli, tmp_path):
    (tmp_path / "bw.json").write_text('{"StaticBwConfig": {"bw": "10Mbps", "duration": "2s"}}')
    (tmp_path / "d.toml").write_text('StaticDelayConfig = { delay = "30ms", duration = "1s" }\n')
    doc = tmp_path / "replay.toml"
    doc.write_text('[cells.a]\ntype = "BwReplay"\ntrace = "bw.json"\n'
                   '[cells.b]\ntype = "DelayReplay"\ntrace = "d.toml"\n'
                   '[links]\nleft = "a"\na = "b"\nb = "right"\nright = "left"\n')
    code, out, err = run_cli("compile", str(doc))
    assert code == 0, err
    cells = {c["name"]: c for c in json.loads(out)["channels"][0]["cells"]}
    assert cells["a"]["trace"]["segments"] == [[2 * 10**9, 10_000_000]]
    assert cells["b"]["trace"]["segments"] == [[10**9, 30_000_000]]
    (tmp_path / "bw.json").write_text('{"SawtoothBwConfig": {}}')
    code, _, err = run_cli("check", str(doc))
    assert code == 1 and "RTN051" in err and "SawtoothBwConfig" in err

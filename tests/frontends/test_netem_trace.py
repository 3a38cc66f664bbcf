"""Upstream netem-trace models (`.json`/`.toml`, netem-trace 0.4 as Rattan builds it: `human` feature).

The sample models are written as netem-trace's own doc tests write them (src/model/*.rs)."""
from __future__ import annotations

import json

import pytest

from rattan.frontends.netem_trace import (ModelError, parse_humantime, parse_model, per_packet_model,
                                          read_model_file)

MS, S = 10**6, 10**9


def test_repeated_bw_pattern_from_upstreams_doc():
    # bw.rs: the `human` config_file_content of the RepeatedBwPatternConfig example
    text = ('{"RepeatedBwPatternConfig":{"pattern":[{"StaticBwConfig":{"bw":"12Mbps","duration":"1s"}},'
            '{"StaticBwConfig":{"bw":"24Mbps","duration":"1s"}}],"count":2}}')
    m = parse_model(text, "json", "bw")
    assert m["segments"] == [[S, 12_000_000], [S, 24_000_000]] * 2
    assert m["repeat"] == 1 and m["value"] == "rate_bps" and "loop_from" not in m


def test_the_non_human_struct_encodings_are_refused_as_upstream_refuses_them():
    # the doc's `#[cfg(not(feature = "human"))]` spelling: Rattan's netem-trace has `human`
    with pytest.raises(ModelError, match="humantime durations"):
        parse_model('{"StaticDelayConfig":{"delay":"10ms","duration":{"secs":1,"nanos":0}}}', "json", "delay")
    with pytest.raises(ModelError, match="human-bandwidth"):
        parse_model('{"StaticBwConfig":{"bw":{"gbps":0,"bps":12000000},"duration":"1s"}}', "json", "bw")


def test_a_repeated_pattern_without_count_repeats_forever():
    m = parse_model('{"RepeatedDelayPatternConfig": {"pattern": [{"StaticDelayConfig": {"delay": "5ms"}}]}}',
                    "json", "delay")
    assert m == {"format": "segments", "value": "delay_ns", "segments": [[S, 5 * MS]], "repeat": 0}


def test_an_inner_forever_pattern_never_ends_so_what_follows_never_plays():
    warnings: list[str] = []
    text = json.dumps({"RepeatedDelayPatternConfig": {"count": 3, "pattern": [
        {"StaticDelayConfig": {"delay": "5ms"}},
        {"RepeatedDelayPatternConfig": {"pattern": [{"StaticDelayConfig": {"delay": "20ms"}},
                                                    {"StaticDelayConfig": {"delay": "40ms"}}]}},
        {"StaticDelayConfig": {"delay": "99ms"}}]}})
    m = parse_model(text, "json", "delay", warnings=warnings)
    assert m["segments"] == [[S, 5 * MS], [S, 20 * MS], [S, 40 * MS]]
    assert m["repeat"] == 0 and m["loop_from"] == 1
    assert warnings == ["RepeatedDelayPatternConfig.pattern[2]: never plays, since `pattern[1]` repeats "
                        "forever (as upstream)"]


@pytest.mark.parametrize("model, kind, segments", [
    ('{"StaticBwConfig": {}}', "bw", [[S, 12_000_000]]),
    ('{"StaticDelayConfig": {}}', "delay", [[S, 10 * MS]]),
    ('{"StaticLossConfig": {"duration": "2s"}}', "loss", [[2 * S, [0.1, 0.2]]]),
    ('{"StaticBwConfig": {"bw": null, "duration": "100ms"}}', "bw", [[100 * MS, 12_000_000]]),
])
def test_absent_fields_take_upstreams_defaults(model, kind, segments):
    assert parse_model(model, "json", kind)["segments"] == segments


def test_a_model_may_list_its_fields_in_order_as_serde_reads_structs():
    assert parse_model('{"StaticBwConfig": ["2Mbps", "3s"]}', "json", "bw")["segments"] == [[3 * S, 2_000_000]]
    assert parse_model('{"StaticDelayConfig": ["7ms"]}', "json", "delay")["segments"] == [[S, 7 * MS]]
    with pytest.raises(ModelError, match="has 2 fields"):
        parse_model('{"StaticBwConfig": ["2Mbps", "3s", 4]}', "json", "bw")
    with pytest.raises(ModelError, match=r"RepeatedBwPatternConfig\.count: expected a whole number"):
        parse_model('{"RepeatedBwPatternConfig": {"count": null}}', "json", "bw")


def test_a_zero_duration_ends_a_static_model_inside_a_pattern():
    text = ('{"RepeatedBwPatternConfig":{"count":1,"pattern":[{"StaticBwConfig":{"bw":"1Mbps","duration":"0s"}},'
            '{"StaticBwConfig":{"bw":"2Mbps"}}]}}')
    assert parse_model(text, "json", "bw")["segments"] == [[S, 2_000_000]]


def test_normalized_bw_gives_upstreams_sequence():
    # bw.rs doc: seed 42, N(12 Mbit/s, 1 Mbit/s), 100 ms steps; then with bounds
    text = ('{"NormalizedBwConfig":{"mean":"12Mbps","std_dev":"1Mbps","duration":"1s","step":"100ms",'
            '"seed":42%s}}')
    free = parse_model(text % "", "json", "bw")["segments"]
    assert free[:2] == [[100 * MS, 12_069_427], [100 * MS, 12_132_938]] and len(free) == 10
    bounded = parse_model(text % ',"upper_bound":"12100kbps","lower_bound":"11900kbps"', "json", "bw")
    assert bounded["segments"][:2] == [[100 * MS, 12_069_427], [100 * MS, 12_100_000]]
    # the seed defaults to 42, and another seed gives another sequence
    assert parse_model((text % "").replace(',"seed":42', ""), "json", "bw")["segments"] == free
    assert parse_model((text % "").replace('"seed":42', '"seed":7'), "json", "bw")["segments"] != free


def test_normalized_bw_defaults_and_last_short_step():
    m = parse_model('{"NormalizedBwConfig": {"duration": "2500us", "step": "1ms", "std_dev": "0bps"}}', "json", "bw")
    assert m["segments"] == [[MS, 12_000_000], [MS, 12_000_000], [MS // 2, 12_000_000]]


def test_sawtooth_bw_gives_upstreams_sequences():
    base = ('{"SawtoothBwConfig":{"bottom":"12Mbps","top":"16Mbps","duration":"1s","step":"100ms",'
            '"interval":"500ms","duty_ratio":0.8%s}}')
    plain = [bw for _, bw in parse_model(base % "", "json", "bw")["segments"]]
    assert plain == [12_000_000, 13_000_000, 14_000_000, 15_000_000, 16_000_000] * 2
    noisy = parse_model(base % ',"std_dev":"5Mbps","upper_noise_bound":"1Mbps","lower_noise_bound":"500kbps"',
                        "json", "bw")
    assert [bw for _, bw in noisy["segments"][:4]] == [12_347_139, 13_664_690, 15_000_000, 14_500_000]


def test_trace_bw_replays_its_pattern():
    # bw.rs: the `human` json_str of the TraceBwConfig example, a forever pattern around it
    text = ('{"RepeatedBwPatternConfig":{"pattern":[{"TraceBwConfig":{"pattern":[["1ms",["2Mbps","4Mbps"]],'
            '["2ms",["1Mbps"]]]}}],"count":0}}')
    m = parse_model(text, "json", "bw")
    assert m["segments"] == [[MS, 2_000_000], [MS, 4_000_000], [2 * MS, 1_000_000]] and m["repeat"] == 0


def test_toml_models():
    text = 'StaticLossConfig = { loss = [0.1, 0.5], duration = "2s" }\n'
    assert parse_model(text, "toml", "loss")["segments"] == [[2 * S, [0.1, 0.5]]]
    text = ('[RepeatedBwPatternConfig]\ncount = 2\n[[RepeatedBwPatternConfig.pattern]]\n'
            'StaticBwConfig = { bw = "10Mbps", duration = "500ms" }\n')
    assert parse_model(text, "toml", "bw")["segments"] == [[500 * MS, 10_000_000]] * 2


def test_loss_probabilities_outside_0_1_mean_always_or_never():
    m = parse_model('StaticLossConfig = { loss = [1.5, -0.2, nan] }\n', "toml", "loss")
    assert m["segments"] == [[S, [1.0, 0.0, 0.0]]]


@pytest.mark.parametrize("text, ns", [
    ("100ms", 100 * MS), ("1s 500ms", 1500 * MS), ("2 min", 120 * S), ("1h 2m 3s", 3723 * S),
    ("250\u00b5s", 250_000), ("1 0s", 10 * S), ("20 min 17 nsec ", 1200 * S + 17), ("1M", 2_630_016 * S),
])
def test_humantime_durations(text, ns):
    assert parse_humantime(text) == ns


@pytest.mark.parametrize("text, why", [
    ("1.5s", "invalid character"), ("10", "time unit needed"), ("-1s", "expected number"),
    ("", "empty"), ("5 parsecs", "unknown time unit"), ("PT0.05S", "expected number"),
])
def test_humantime_refuses_what_humantime_refuses(text, why):
    with pytest.raises(ValueError, match=why):
        parse_humantime(text)


def test_ignored_keys_are_warnings_with_a_did_you_mean():
    warnings: list[str] = []
    m = parse_model('{"StaticDelayConfig": {"delay": "10ms", "duraton": "3s"}}', "json", "delay", warnings=warnings)
    assert m["segments"] == [[S, 10 * MS]]  # upstream ignores `duraton`: the default 1s holds
    assert warnings == ["StaticDelayConfig.duraton: `StaticDelayConfig` has no field `duraton`, upstream "
                        "ignores it; did you mean `duration`?"]


@pytest.mark.parametrize("text, kind, message", [
    ('{"StaticBwConfig": {"bw": "12 parsecs"}}', "bw", r"StaticBwConfig\.bw: `12 parsecs` is not a bandwidth"),
    ('{"RepeatedBwPatternConfig": {"pattern": [{"StaticBwConfig": {"duration": "1.5s"}}]}}', "bw",
     r"RepeatedBwPatternConfig\.pattern\[0\]\.StaticBwConfig\.duration: `1\.5s` is not a humantime"),
    ('{"StaticBwConfg": {}}', "bw", "unknown model `StaticBwConfg`.*did you mean `StaticBwConfig`"),
    ('{"NormalizedDelayConfig": {}}', "delay", "unknown model `NormalizedDelayConfig`"),
    ('{"RepeatedLossPatternConfig": {"count": -1}}', "loss", r"RepeatedLossPatternConfig\.count: expected a whole"),
    ('{"RepeatedLossPatternConfig": {"count": 0, "pattern": [{"StaticLossConfig": {"duration": "0s"}}]}}',
     "loss", "takes no time"),
    ('{"SawtoothBwConfig": {"bottom": "20Mbps", "top": "10Mbps"}}', "bw", "`bottom` is above `top`"),
    ('{"NormalizedBwConfig": {"step": "0s"}}', "bw", r"NormalizedBwConfig\.step: a step of 0"),
    ('{"StaticBwConfig": {"bw": "1Mbps", "duration": "0s"}}', "bw", "ends at once"),
    ('[1, 2]', "bw", "one model tagged"),
    ('{', "bw", "not valid JSON"),
])
def test_bad_models_are_explained_at_their_path(text, kind, message):
    with pytest.raises(ModelError, match=message):
        parse_model(text, "json", kind)


# ---- DelayPerPacket models ------------------------------------------------------------------------

def test_per_packet_repeated_pattern_from_upstreams_doc():
    # delay_per_packet.rs: the `human` config_file_content
    doc = json.loads('{"RepeatedDelayPerPacketPatternConfig":{"pattern":[{"StaticDelayPerPacketConfig":'
                     '{"delay":"10ms","count":1}},{"StaticDelayPerPacketConfig":{"delay":"20ms","count":1}}],'
                     '"count":2}}')
    assert per_packet_model(doc) == ([{"kind": "static", "delay": 10 * MS, "count": 1},
                                      {"kind": "static", "delay": 20 * MS, "count": 1}], 2)


def test_per_packet_defaults():
    segs, repeat = per_packet_model({"NormalizedDelayPerPacketConfig": {"std_dev": "2ms"}})
    assert (segs, repeat) == ([{"kind": "normal", "mean": 10 * MS, "std_dev": 2 * MS, "lower_bound": 0,
                                "upper_bound": None, "count": 0, "seed": 42}], 1)
    assert per_packet_model({"StaticDelayPerPacketConfig": {}}) == (
        [{"kind": "static", "delay": 10 * MS, "count": 0}], 1)
    segs, _ = per_packet_model({"LogNormalizedDelayPerPacketConfig": {"mean": "12ms", "upper_bound": "20ms",
                                                                      "lower_bound": "1ms", "seed": 7, "count": 3}})
    assert segs == [{"kind": "lognormal", "mean": 12 * MS, "std_dev": 0, "lower_bound": MS,
                     "upper_bound": 20 * MS, "count": 3, "seed": 7}]


def test_per_packet_outer_pattern_without_count_repeats_forever_and_inner_ones_unroll():
    doc = {"RepeatedDelayPerPacketPatternConfig": {"pattern": [
        {"StaticDelayPerPacketConfig": {"delay": "1ms", "count": 1}},
        {"RepeatedDelayPerPacketPatternConfig": {"count": 2, "pattern": [
            {"NormalizedDelayPerPacketConfig": {"mean": "5ms", "count": 3, "seed": 9}}]}}]}}
    segs, repeat = per_packet_model(doc)
    assert repeat == 0
    assert [(s["kind"], s["count"]) for s in segs] == [("static", 1), ("normal", 3), ("normal", 3)]
    assert all(s["seed"] == 9 for s in segs[1:])  # re-created each play: the same seed each time


def test_per_packet_forever_segment_ends_the_list():
    warnings: list[str] = []
    doc = {"RepeatedDelayPerPacketPatternConfig": {"count": 5, "pattern": [
        {"StaticDelayPerPacketConfig": {"delay": "1ms", "count": 2}},
        {"NormalizedDelayPerPacketConfig": {"mean": "5ms"}},
        {"StaticDelayPerPacketConfig": {"delay": "9ms", "count": 1}}]}}
    segs, repeat = per_packet_model(doc, warnings=warnings)
    assert [s["kind"] for s in segs] == ["static", "normal"] and segs[1]["count"] == 0 and repeat == 1
    assert "pattern[2]: never plays" in warnings[0]


def test_per_packet_errors_name_the_path_inside_the_model():
    doc = {"RepeatedDelayPerPacketPatternConfig": {"pattern": [
        {"StaticDelayPerPacketConfig": {"count": 1}}, {"StaticDelayPerPacketConfig": {"count": 1}},
        {"NormalizedDelayPerPacketConfig": {"mean": 12}}]}}
    with pytest.raises(ModelError, match=r"^RepeatedDelayPerPacketPatternConfig\.pattern\[2\]\."
                                         r"NormalizedDelayPerPacketConfig\.mean: expected a duration"):
        per_packet_model(doc)
    with pytest.raises(ModelError, match=r"LogNormalizedDelayPerPacketConfig\.mean: a log-normal delay needs"):
        per_packet_model({"LogNormalizedDelayPerPacketConfig": {"mean": "0s"}})
    with pytest.raises(ModelError, match="unknown model `StaticDelayConfig`"):
        per_packet_model({"StaticDelayConfig": {}})


def test_per_packet_model_files(tmp_path):
    (tmp_path / "d.toml").write_text('[NormalizedDelayPerPacketConfig]\nmean = "20ms"\nstd_dev = "5ms"\n'
                                     'upper_bound = "40ms"\ncount = 100\nseed = 3\n')
    (tmp_path / "d.json").write_text('{"StaticDelayPerPacketConfig": {"delay": "7ms", "count": 0}}')
    segs, _ = per_packet_model(read_model_file(str(tmp_path / "d.toml")))
    assert segs[0]["mean"] == 20 * MS and segs[0]["upper_bound"] == 40 * MS and segs[0]["seed"] == 3
    assert per_packet_model(read_model_file(str(tmp_path / "d.json")))[0][0]["delay"] == 7 * MS
    with pytest.raises(ModelError, match="ends in .json or .toml"):
        read_model_file(str(tmp_path / "d.yaml"))


# ---- through the compiler -------------------------------------------------------------------------

def test_replay_cells_compile_with_models(run_cli, tmp_path):
    (tmp_path / "bw.json").write_text('{"StaticBwConfig": {"bw": "10Mbps", "duration": "2s"}}')
    (tmp_path / "d.toml").write_text('StaticDelayConfig = { delay = "30ms", duration = "1s", dleay = "1ms" }\n')
    (tmp_path / "l.json").write_text('{"RepeatedLossPatternConfig": {"pattern": [{"StaticLossConfig": {"loss": [0.5]}}]}}')
    doc = tmp_path / "replay.toml"
    doc.write_text('[cells.a]\ntype = "BwReplay"\ntrace = "bw.json"\nqueue = "Infinite"\n'
                   '[cells.b]\ntype = "DelayReplay"\ntrace = "d.toml"\n'
                   '[cells.c]\ntype = "LossReplay"\ntrace = "l.json"\n'
                   '[links]\nleft = "a"\na = "b"\nb = "c"\nc = "right"\nright = "left"\n')
    code, out, err = run_cli("compile", str(doc))
    assert code == 0, err
    cells = {c["name"]: c for c in json.loads(out)["channels"][0]["cells"]}
    assert cells["a"]["trace"]["segments"] == [[2 * S, 10_000_000]]
    assert cells["b"]["trace"]["segments"] == [[S, 30 * MS]]
    assert cells["c"]["trace"]["segments"] == [[S, [0.5]]] and cells["c"]["trace"]["repeat"] == 0
    assert "RTN075" in err and "StaticDelayConfig.dleay" in err and "did you mean `delay`" in err
    (tmp_path / "bw.json").write_text('{"SawtoothBwConfig": {"bottom": "9Mbps", "top": "1Mbps"}}')
    code, _, err = run_cli("check", str(doc))
    assert code == 1 and "RTN051" in err and "SawtoothBwConfig: `bottom` is above `top`" in err

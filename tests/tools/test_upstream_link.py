"""`rattan link` with upstream Rattan's flags (stack-rs/rattan src/channel.rs `ChannelArgs`, src/main.rs):
`--print` gives the `.rtn` upstream's `build_rattan_config` describes, cells named as upstream names
them (up_1, ...); invalid combinations are usage errors naming the flags; what upstream ignores is a
warning. No root needed."""
from __future__ import annotations

import json

import pytest

from tests.control.test_upstream_api import JIFF
from tests.tools.test_link_flags import TRACE, _path, _plan


def _cells(out: str) -> dict[str, dict]:
    return {c["name"]: c for c in _plan(out)["cells"]}


def test_the_guides_example_gives_upstreams_cells(run_cli):
    # guide/src/guide/predefined-channels.md: 10Mbps, infinite queue, 50ms, loss 0.1 each way
    code, out, err = run_cli("link", "--uplink-bandwidth", "10Mbps", "--uplink-delay", "50ms", "--uplink-loss", "0.1",
                             "--downlink-bandwidth", "10Mbps", "--downlink-delay", "50ms", "--downlink-loss", "0.1",
                             "--print")
    assert code == 0, err
    channel = _plan(out)
    for d, ends in (("up", ("left", "right")), ("down", ("right", "left"))):
        cells = _path(channel, *ends)
        assert [c["name"] for c in cells] == [f"{d}_1", f"{d}_2", f"{d}_3"]
        assert [c["type"] for c in cells] == ["bw", "delay", "loss"]
        assert cells[0]["config"]["rate"] == 10_000_000 and cells[0]["config"]["queue"] == {"kind": "infinite"}
        assert cells[1]["config"]["delay"] == 50_000_000 and cells[2]["config"]["rate"] == 0.1


def test_cells_are_numbered_as_upstream_numbers_them(run_cli):
    # channel.rs counts only the cells given: a delay alone is up_1, a loss after it up_2
    code, out, _ = run_cli("link", "--uplink-delay", "10ms", "--uplink-loss", "0.01", "--downlink-trace",
                           str(TRACE), "--print")
    assert code == 0
    cells = _cells(out)
    assert (cells["up_1"]["type"], cells["up_2"]["type"], cells["down_1"]["type"]) == ("delay", "loss", "bw_trace")


@pytest.mark.parametrize("value, bps", [("12Mbps", 12_000_000), ("1Gbps 200Mbps", 1_200_000_000),
                                        ("500kbps", 500_000), ("12 mbps", 12_000_000)])
def test_bandwidth_is_read_as_human_bandwidth(run_cli, value, bps):
    code, out, err = run_cli("link", "--uplink-bandwidth", value, "--print")
    assert code == 0, err
    assert _cells(out)["up_1"]["config"]["rate"] == bps


@pytest.mark.parametrize("value, ns", [("50ms", 50_000_000), ("1s 500ms", 1_500_000_000), ("20ms", 20_000_000),
                                       pytest.param("PT0.05S", 50_000_000, marks=JIFF)])
def test_delay_is_read_as_upstream_reads_it(run_cli, value, ns):
    code, out, err = run_cli("link", "--uplink-delay", value, "--print")
    assert code == 0, err
    assert _cells(out)["up_1"]["config"]["delay"] == ns


@pytest.mark.parametrize("value, rate, warned", [("0.1", 0.1, False), ("1.5", 1.0, True), ("-0.2", 0.0, True),
                                                 ("1%", 0.01, False)])
def test_loss_is_a_probability_clamped_as_upstreams_draw(run_cli, value, rate, warned):
    code, out, err = run_cli("link", "--uplink-loss", value, "--print")
    assert code == 0, err
    assert _cells(out)["up_1"]["config"]["rate"] == pytest.approx(rate)
    assert ("warning: --uplink-loss" in err) is warned


@pytest.mark.parametrize("kind, args, queue", [
    ("droptail", {"packet_limit": 100}, {"kind": "droptail", "packets": 100}),
    ("droptail", {"byte_limit": 150000}, {"kind": "droptail", "bytes": 150000}),
    ("drophead", {"packet_limit": 20, "byte_limit": 30000}, {"kind": "drophead", "packets": 20, "bytes": 30000}),
    ("droptail", None, {"kind": "infinite"}),            # DropTailQueueConfig::default() is unlimited
    ("droptail", {"packet_limit": None}, {"kind": "infinite"}),
    ("infinite", None, {"kind": "infinite"}),
])
def test_an_upstream_queue_and_its_json_args_become_the_rate_cells_queue(run_cli, kind, args, queue):
    argv = ["--uplink-queue", kind] + ([] if args is None else ["--uplink-queue-args", json.dumps(args)])
    code, out, err = run_cli("link", "--uplink-bandwidth", "12Mbps", *argv, "--print")
    assert code == 0, err
    assert _cells(out)["up_1"]["config"]["queue"] == queue


@pytest.mark.parametrize("args, text", [
    (None, "codel { packets = unlimited, target = 5ms, interval = 100ms, mtu = 1.5KB }"),
    ({"target": "10ms", "interval": "200ms", "mtu": 9000, "packet_limit": 50},
     "codel { packets = 50, target = 10ms, interval = 200ms, mtu = 9KB }"),
])
def test_codel_follows_upstreams_defaults(run_cli, args, text):
    # CoDelQueueConfig::default(): 100ms interval, 5ms target, 1500 B mtu, no limit
    argv = ["--uplink-queue", "codel"] + ([] if args is None else ["--uplink-queue-args", json.dumps(args)])
    code, out, err = run_cli("link", "--uplink-bandwidth", "12Mbps", *argv, "--print")
    assert code == 0, err
    assert f"queue = {text}" in out


def test_link_layer_accounting_adds_upstreams_38_bytes_to_the_byte_limit(run_cli):
    code, out, err = run_cli("link", "--uplink-trace", str(TRACE), "--uplink-queue", "droptail", "--uplink-queue-args",
                             '{"byte_limit": 150000, "bw_type": "LinkLayer"}', "--print")
    assert code == 0, err
    assert "queue = droptail { bytes = 150KB, overhead = 38B }" in out


def test_args_an_infinite_queue_ignores_are_a_warning(run_cli):
    code, out, err = run_cli("link", "--uplink-bandwidth", "12Mbps", "--uplink-queue", "infinite",
                             "--uplink-queue-args", '{"packet_limit": 5}', "--print")
    assert code == 0 and "warning: --uplink-queue-args is ignored with --uplink-queue infinite" in err
    assert _cells(out)["up_1"]["config"]["queue"] == {"kind": "infinite"}


def test_a_field_a_queue_does_not_have_is_a_warning_with_a_suggestion(run_cli):
    code, out, err = run_cli("link", "--uplink-bandwidth", "12Mbps", "--uplink-queue", "droptail",
                             "--uplink-queue-args", '{"packet_limt": 5}', "--print")
    assert code == 0 and "`packet_limt`" in err and "did you mean `packet_limit`" in err


@pytest.mark.parametrize("argv, message", [
    (["--uplink-bandwidth", "12Mbps", "--uplink-rate", "1Mbps"], "--uplink-rate and --uplink-bandwidth both give"),
    (["--downlink-bandwidth", "12Mbps", "--downlink-trace", str(TRACE)], "--downlink-bandwidth and --downlink-trace"),
    (["--uplink-queue", "droptail"], "--uplink-queue needs a rate that drains it"),
    (["--uplink-bandwidth", "1Mbps", "--uplink-queue-args", "{}"], "--uplink-queue-args needs --uplink-queue"),
    (["--uplink-rate", "1Mbps", "--uplink-queue", "droptail { packets = 5 }", "--uplink-queue-args", "{}"],
     "--uplink-queue-args goes with an upstream queue type"),
    (["--uplink-bandwidth", "1Mbps", "--uplink-queue", "droptail", "--uplink-queue-args", "{packet_limit: 5}"],
     "--uplink-queue-args is not JSON"),
    (["--uplink-bandwidth", "1Mbps", "--uplink-queue", "droptail", "--uplink-queue-args", '{"packet_limit": "5"}'],
     "`packet_limit` must be a whole number"),
    (["--uplink-bandwidth", "1Mbps", "--uplink-queue", "codel", "--uplink-queue-args", '{"bw_type": "Ethernet"}'],
     "`bw_type` is `NetworkLayer` or `LinkLayer`"),
    (["--uplink-bandwidth", "1Mbps", "--uplink-queue", "codel", "--uplink-queue-args", '{"target": 5}'],
     "`target` must be a duration"),
    (["--uplink-bandwidth", "12Mbsp"], "--uplink-bandwidth `12Mbsp` is not a bandwidth"),
    (["--uplink-bandwidth", " "], "--uplink-bandwidth is empty"),
    (["--generate-path", "x.rtn"], "--generate-path needs --generate"),
    (["--http", "127.0.0.1:9000", "-p", "9001"], "both give the API's address"),
    (["--combined-trace", "10s"], "--combined-trace"),
])
def test_an_invalid_combination_is_a_usage_error_naming_the_flags(run_cli, argv, message):
    code, out, err = run_cli("link", *argv, "--print")
    assert code == 2 and out == ""
    assert message in err


@pytest.mark.parametrize("flag", ["--left-stdout", "--right-stderr", "--no-nat", "--file-log"])
def test_flags_that_change_nothing_for_a_link_are_warnings(run_cli, flag):
    code, out, err = run_cli("link", "--uplink-delay", "5ms", flag, "--print")
    assert code == 0 and "warning:" in err and flag in err
    assert _cells(out)["up_1"]["config"]["delay"] == 5_000_000


def test_generate_prints_what_print_prints_and_generate_path_writes_it(run_cli, tmp_path):
    argv = ["--uplink-bandwidth", "10Mbps", "--downlink-delay", "5ms"]
    _, printed, _ = run_cli("link", *argv, "--print")
    code, generated, _ = run_cli("link", *argv, "--generate")
    assert code == 0 and generated == printed
    target = tmp_path / "link.rtn"
    code, out, _ = run_cli("link", *argv, "--generate", "--generate-path", str(target))
    assert code == 0 and out == "" and target.read_text() == printed


@pytest.mark.parametrize("argv, address", [
    (["--http"], "127.0.0.1:8086"),                   # upstream's HttpConfig default port
    (["--http", "-p", "9000"], "127.0.0.1:9000"),
    (["--http", "unix:/tmp/r.sock"], "unix:/tmp/r.sock"),
    (["--http", "9001"], "9001"),
    ([], None),
])
def test_http_takes_upstreams_bare_flag_and_port_or_an_address(argv, address):
    from rattan.cli import _parser
    from rattan.commands import _link_http
    args = _parser().parse_args(["link", *argv])
    assert _link_http(args, []) == address


@pytest.mark.parametrize("shell, argv", [("default", None), ("bash", ["/bin/bash"]), ("sh", ["/bin/sh"])])
def test_the_shell_flag_names_upstreams_shells(shell, argv):
    from rattan.cli import _parser
    from rattan.runtime.link import shell_command
    assert shell_command(_parser().parse_args(["link", "-s", shell])) == argv


def test_help_shows_both_spellings_and_the_mapping(run_cli, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("link", "--help")
    assert e.value.code == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    for flag in ("--uplink-rate", "--uplink-bandwidth", "--uplink-queue-args", "--downlink-bandwidth", "--shell",
                 "--generate", "--port"):
        assert flag in out
    assert "upstream Rattan's `rattan link` flags" in out and "packet_limit -> packets" in flat
    assert "POST /config/up_1" in flat

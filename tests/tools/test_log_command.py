"""`rattan log` and `rattan cells` on names that do not exist, and the pcap's snap length."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess

import pytest

from rattan.registry import default_registry
from rattan.runtime.packet_log import MAX_SNAPLEN
from rattan.tools.cells import record_kinds

CELLS = ("up", "down", "delay_1", "delay_2", "loss_1")  # examples/broadband.rtn, in the log's order


@pytest.fixture
def log(run_cli, tmp_path):
    """A packet log of broadband.rtn: 1 s of 5 Mbit/s left to right in virtual time."""
    path = tmp_path / "broadband.log"
    code, _, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:cbr:5Mbps", "--duration", "1s",
                           "--packet-log", str(path))
    assert code == 0, err
    return str(path)


# -- item 17: --cell NAME that the log does not have --------------------------------------------

@pytest.mark.parametrize("argv", [(), ("--json",), ("--to", "csv"), ("--to", "pcap")])
def test_an_unknown_cell_is_a_usage_error_with_did_you_mean(argv, log, run_cli, tmp_path):
    code, out, err = run_cli("log", log, "--cell", "upp", *argv, "-o", str(tmp_path / "out"))
    assert (code, out) == (2, "")
    assert err == ("rattan: no cell `upp` in the log; did you mean `up`? "
                   "logged cells: delay_1, delay_2, down, loss_1, up\n")
    code, _, err = run_cli("log", log, "--cell", "zzz", *argv)
    assert code == 2 and err == "rattan: no cell `zzz` in the log; logged cells: delay_1, delay_2, down, loss_1, up\n"


def test_the_summary_shows_only_the_chosen_cell(log, run_cli):
    code, out, err = run_cli("log", log, "--json")
    assert code == 0, err
    every = {row["cell"]: row for row in json.loads(out)}
    assert tuple(every) == CELLS
    for name in ("up", "broadband/up"):
        code, out, err = run_cli("log", log, "--cell", name, "--json")
        assert code == 0, err
        assert json.loads(out) == [every["up"]]
    code, out, _ = run_cli("log", log, "--cell", "delay_1")
    assert [line.split()[0] for line in out.splitlines()] == ["cell", "delay_1"]


# -- item 17: rattan cells NAME for queue kinds and models --------------------------------------

@pytest.mark.parametrize("kind", sorted(default_registry().queues))
def test_every_queue_kind_is_shown_with_its_fields(kind, run_cli):
    code, out, err = run_cli("cells", kind)
    assert code == 0, err
    schema = default_registry().queues[kind]
    assert out.startswith(f"{kind} — {schema['description']}\n")
    assert "a queue kind: write `queue = " + kind + " { ... }` in bw" in out
    for field in schema["properties"]:
        if field != "kind":
            assert f"\n  {field}: " in out
    code, out, _ = run_cli("cells", kind, "--json")
    assert code == 0 and json.loads(out) == schema


def test_codel_shows_its_parameters_from_the_schema(run_cli):
    code, out, _ = run_cli("cells", "codel")
    assert code == 0
    assert "  target: time (default 5ms)\n" in out and "  interval: time (default 100ms)\n" in out
    assert "did you mean" not in out


@pytest.mark.parametrize("name, form", [("gilbert_elliott", "model = gilbert_elliott { ... }` in loss"),
                                        ("route", "routes = [route { ... }, ...]` in router")])
def test_models_and_records_are_shown(name, form, run_cli):
    code, out, err = run_cli("cells", name)
    assert code == 0, err
    assert form in out
    assert "fields:\n" in out


def test_an_unknown_name_lists_every_kind_of_name(run_cli):
    reg = default_registry()
    code, out, err = run_cli("cells", "codle")
    assert (code, out) == (2, "")
    first, *kinds = err.splitlines()
    assert first == "rattan: no cell type, queue kind or record `codle`; did you mean `codel`?"
    assert kinds[0] == "  cell types: " + ", ".join(reg.names())
    assert kinds[1] == "  queue kinds: " + ", ".join(sorted(reg.queues))
    assert kinds[2].startswith("  models and other records: ") and "gilbert_elliott (loss.model)" in kinds[2]
    code, _, err = run_cli("cells", "zzzzzz")
    assert code == 2 and "did you mean" not in err


def test_record_kinds_come_from_the_schemas():
    kinds = record_kinds(default_registry())
    assert {k for k, r in kinds.items() if r.is_queue} == set(default_registry().queues)
    assert kinds["gilbert_elliott"].used_in == ("loss.model",)
    assert kinds["route"].used_in == ("router.routes",)
    assert "bw.queue" in kinds["codel"].used_in


# -- item 21: the pcap's snap length --------------------------------------------------------------

def _pcap(path) -> tuple[int, list[tuple[int, int]]]:
    """The file's snaplen and each packet's (captured length, real length)."""
    data = open(path, "rb").read()
    magic, _, _, _, _, snaplen, link = struct.unpack_from("<IHHiIII", data)
    assert (magic, link) == (0xA1B23C4D, 101)
    packets, at = [], 24
    while at < len(data):
        _, _, incl, orig = struct.unpack_from("<IIII", data, at)
        packets.append((incl, orig))
        at += 16 + incl
    assert at == len(data)
    return snaplen, packets


def test_the_pcap_keeps_what_the_log_recorded_and_says_so(log, run_cli, tmp_path):
    out = tmp_path / "up.pcap"
    code, _, err = run_cli("log", log, "--to", "pcap", "--cell", "up", "-o", str(out))
    assert code == 0, err
    snaplen, packets = _pcap(out)
    assert snaplen == MAX_SNAPLEN  # the log kept whole packets: any packet may be whole
    # synthetic packets: a 28-byte IPv4/UDP header each, the real size 1500
    assert packets and set(packets) == {(28, 1500)}


@pytest.mark.parametrize("n", [1, 24, 28, 1000])
def test_snaplen_cuts_each_packet(n, log, run_cli, tmp_path):
    out = tmp_path / "up.pcap"
    code, _, err = run_cli("log", log, "--to", "pcap", "--cell", "up", "--snaplen", str(n), "-o", str(out))
    assert code == 0, err
    snaplen, packets = _pcap(out)
    assert snaplen == min(n, MAX_SNAPLEN)
    assert set(packets) == {(min(n, 28), 1500)}


def test_snaplen_must_keep_a_byte(log, run_cli, tmp_path):
    code, _, err = run_cli("log", log, "--to", "pcap", "--cell", "up", "--snaplen", "0", "-o", str(tmp_path / "x"))
    assert code == 2 and "--snaplen 0" in err


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
def test_tcpdump_reads_whole_headers_and_cut_ones(log, run_cli, tmp_path):
    whole, cut = tmp_path / "whole.pcap", tmp_path / "cut.pcap"
    assert run_cli("log", log, "--to", "pcap", "--cell", "up", "-o", str(whole))[0] == 0
    assert run_cli("log", log, "--to", "pcap", "--cell", "up", "--snaplen", "24", "-o", str(cut))[0] == 0
    r = subprocess.run(["tcpdump", "-n", "-r", str(whole)], capture_output=True, text=True, timeout=60)
    assert f"snapshot length {MAX_SNAPLEN}" in r.stderr
    lines = r.stdout.splitlines()
    assert lines and all("UDP, length 1472" in line and "[|" not in line for line in lines)
    r = subprocess.run(["tcpdump", "-n", "-r", str(cut)], capture_output=True, text=True, timeout=60)
    assert "snapshot length 24" in r.stderr and all("[|udp]" in line for line in r.stdout.splitlines())


def test_a_packet_log_that_cannot_be_written_is_a_usage_error(run_cli, tmp_path):
    bad = tmp_path / "no_such_folder" / "x.log"
    code, _, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:cbr:1Mbps", "--duration", "100ms",
                           "--packet-log", str(bad))
    assert (code, err) == (2, f"rattan: --packet-log {bad}: cannot write: No such file or directory\n")


def test_an_output_that_cannot_be_written_is_named(log, run_cli, tmp_path):
    bad = tmp_path / "no_such_folder" / "x.csv"
    code, _, err = run_cli("log", log, "--to", "csv", "-o", str(bad))
    assert (code, err) == (2, f"rattan: cannot write {bad}: No such file or directory\n")


@pytest.mark.parametrize("d, shown", [(0.1, "10%"), (0.001, "0.1%"), (0.25, "25%"), (1, "100%")])
def test_a_probability_default_reads_as_the_percentage_written(d, shown):
    from rattan.tools.cells import default_text
    # Fraction(0.1) is the double nearest 0.1: it printed as 90071992547409925/9007199254740992%
    assert default_text({"default": d, "x-unit": "probability"}) == shown


@pytest.mark.parametrize("argv, refused", [
    (["--to", "csv", "--snaplen", "10"], "--snaplen applies to --to pcap only"),
    (["--event", "drop"], "--event applies to --to pcap only"),
    (["--to", "csv", "--event", "drop"], "--event applies to --to pcap only"),
    (["--to", "pcap", "--json"], "--json applies to the summary (without --to) only"),
])
def test_a_flag_that_would_change_nothing_is_a_usage_error(argv, refused, log, run_cli):
    code, out, err = run_cli("log", str(log), *argv)
    assert (code, out) == (2, ""), err
    assert refused in err


@pytest.mark.parametrize("flags, named", [(["--log-cells", "up"], "--log-cells shapes"),
                                          (["--packet-log-snaplen", "64"], "--packet-log-snaplen shapes")])
def test_packet_log_flags_without_a_packet_log_are_a_usage_error(flags, named, run_cli):
    code, out, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:cbr:1Mbps",
                             "--duration", "1s", *flags)
    assert code == 2 and named in err and "--packet-log PATH" in err, err


@pytest.mark.parametrize("argv", [(), ("--json",)])
def test_the_summary_goes_where_o_says(argv, log, run_cli, tmp_path):
    code, out, err = run_cli("log", log, *argv)
    assert code == 0, err
    code, out_o, err = run_cli("log", log, *argv, "-o", str(tmp_path / "summary"))
    assert (code, out_o) == (0, ""), err
    assert (tmp_path / "summary").read_text() == out

"""`rattan run` takes upstream Rattan's command line (src/main.rs at a18829c, RunArgs and the global
flags): `-c/--config FILE`, `--left ARGS...`, `--right ARGS...`, `--http`, `-p PORT`, `--packet-log`,
`--generate [--generate-path]`, and says what it cannot honour. Our own syntax keeps working. The run
itself is replaced by a recorder, so these tests need no root: they check what would be run."""
from __future__ import annotations

import pytest

import rattan.commands as commands
from rattan.cli import main
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "frontends" / "upstream"
MULTIPATH = str(CORPUS / "it_multipath.toml")


@pytest.fixture
def runs(monkeypatch):
    """Each `_run_plan` call (what `rattan run` would start), instead of starting it."""
    calls = []

    def record(plan, cmd, right, seed, channels=None, every=False, instances=1, late_threshold="1ms",
               http=None, packet_log=None, log_cells=None, quiet=False, engine_nice=None, packet_log_snaplen=0,
               **kernel_settings):  # app_cpus, rps_cpus
        calls.append({"plan": plan, "cmd": cmd, "right": right, "http": http, "packet_log": packet_log,
                      "instances": instances})
        return 0
    monkeypatch.setattr(commands, "_run_plan", record)
    return calls


def web_file(tmp_path, enable: bool, port: int | None = 8123) -> str:
    path = tmp_path / f"web_{'on' if enable else 'off'}.toml"
    http = f"[http]\nenable = {'true' if enable else 'false'}\n" + (f"port = {port}\n" if port else "")
    path.write_text(http + '[cells.d]\ntype = "Delay"\ndelay = "10ms"\n[links]\nleft = "d"\nd = "right"\nright = "left"\n')
    return str(path)


def test_dash_c_is_the_file_and_our_positional_file_still_works(runs):
    assert main(["run", "-c", MULTIPATH, "--", "true"]) == 0
    assert main(["run", "--config", MULTIPATH, "--", "true"]) == 0
    assert main(["run", MULTIPATH, "--", "true"]) == 0
    a, b, c = runs
    assert a["plan"] == b["plan"] == c["plan"] and a["plan"]["channels"][0]["name"] == "it_multipath"
    assert a["cmd"] == ["true"]


def test_left_and_right_are_upstreams_argument_lists(runs):
    assert main(["run", "-c", MULTIPATH, "--right", "sleep", "5", "--left", "ping", "$X"]) == 0
    (r,) = runs
    assert r["cmd"] == ["ping", "$X"]
    assert r["right"] == "sleep 5"  # run by sh -c, word by word as given
    assert main(["run", "-c", MULTIPATH, "--right", "iperf3 -s", "--left", "echo", "a b"]) == 0
    assert runs[1]["right"] == "iperf3 -s" and runs[1]["cmd"] == ["echo", "a b"]
    assert main(["run", "-c", MULTIPATH, "--right", "x", "$Y"]) == 0
    assert runs[2]["right"] == "x '$Y'"  # no shell expands it, as upstream's /usr/bin/env


def test_a_file_after_right_or_left_words_is_the_file(runs):
    """Our `rattan run --right 'iperf3 -s' FILE` keeps working though --right now takes several words."""
    assert main(["run", "--right", "iperf3 -s", MULTIPATH, "--", "true"]) == 0
    assert main(["run", "--right", "a", "--left", "ping", "x", MULTIPATH]) == 0
    assert runs[0]["right"] == "iperf3 -s" and runs[0]["cmd"] == ["true"]
    assert runs[1]["right"] == "a" and runs[1]["cmd"] == ["ping", "x"]


@pytest.mark.parametrize("argv, message", [
    (["run"], "no file: give FILE or -c FILE"),
    (["run", "-c", MULTIPATH, MULTIPATH], "both give the file"),
    (["run", "-c", MULTIPATH, "--left", "a", "--", "b"], "--left and `-- CMD` both give the command"),
    (["run", "-c", MULTIPATH, "--combined-trace", "10s"], "--combined-trace"),
    (["run", "-c", MULTIPATH, "--http", "9000", "-p", "9001"], "both give the API's address"),
    (["run", "-c", MULTIPATH, "--http", "-p", "70000"], "a port is 1 to 65535"),
    (["run", "-c", MULTIPATH, "--generate-path", "x.rtn"], "--generate-path needs --generate"),
])
def test_what_cannot_be_honoured_is_a_usage_error(argv, message, runs, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert runs == []


def test_http_and_port_overwrite_the_files_http_as_upstream(runs, tmp_path, capsys):
    off, on = web_file(tmp_path, False), web_file(tmp_path, True)
    assert main(["run", "-c", MULTIPATH, "--http"]) == 0                      # upstream's default port
    assert main(["run", "-c", MULTIPATH, "--http", "-p", "9100"]) == 0
    assert main(["run", "-c", MULTIPATH, "--http", "127.0.0.1:9200"]) == 0  # ours
    assert [r["http"] for r in runs] == ["127.0.0.1:8086", "127.0.0.1:9100", "127.0.0.1:9200"]
    assert main(["run", "-c", off, "-p", "9300"]) == 0  # the file's server is off: -p alone changes nothing
    assert runs[-1]["http"] is None and "-p 9300 changes nothing" in capsys.readouterr().err
    assert main(["run", "-c", off, "--http"]) == 0      # a bare --http enables it on the file's port
    assert runs[-1]["http"] == "127.0.0.1:8123"
    assert main(["run", "-c", on, "-p", "9400"]) == 0   # -p moves the file's enabled server
    assert runs[-1]["http"] == "127.0.0.1:9400"
    assert main(["run", "-c", on]) == 0                 # nothing given: run.file_settings reads [http]
    assert runs[-1]["http"] is None


def test_packet_log_and_flags_that_change_nothing(runs, tmp_path, capsys):
    log = str(tmp_path / "p.log")
    assert main(["run", "-c", MULTIPATH, "--packet-log", log, "--left-stdout", "--right-stderr",
                 "--file-log", "--", "true"]) == 0
    assert runs[-1]["packet_log"] == log
    err = capsys.readouterr().err
    assert "--left-stdout, --right-stderr change nothing" in err and "--file-log changes nothing" in err


def test_generate_prints_the_rtn_of_the_file(runs, tmp_path, capsys):
    assert main(["run", "-c", MULTIPATH, "--generate"]) == 0
    out, err = capsys.readouterr()
    assert "channel it_multipath" in out and "Converted from it_multipath.toml" in out and runs == []
    out_path = tmp_path / "g.rtn"
    assert main(["run", "-c", MULTIPATH, "--generate", "--generate-path", str(out_path), "--http"]) == 0
    assert "channel it_multipath" in out_path.read_text()
    assert "--http is not written into the .rtn" in capsys.readouterr().err
    rtn = tmp_path / "p.rtn"
    rtn.write_text("channel p {\n    endpoints left, right\n    left -> right\n    right -> left\n}\n")
    assert main(["run", "-c", str(rtn), "--generate"]) == 2
    assert "is not one" in capsys.readouterr().err


def test_help_shows_upstreams_spelling(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "-c FILE, --config FILE" in out and "--left ARG" in out and "-p PORT, --port PORT" in out
    assert "rattan run -c config.toml" in out and "--generate" in out

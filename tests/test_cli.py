"""The command line a newcomer meets: `--version`, the errors of argument parsing (which subcommand
refused what, and `--` before a command), and a usage error where a file has several channels."""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys

import pytest

from rattan.cli import _parser, main

TWO_CHANNELS = """\
channel up_path {
    endpoints left, right
    left -> delay { delay = 10ms } -> right
    right -> left
}
channel down_path {
    endpoints left, right
    left -> delay { delay = 20ms } -> right
    right -> left
}
"""


def parse_error(argv: list[str], capsys) -> str:
    """stderr of an argv that argparse refuses; it must exit 2."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


# -- item 3: --version ----------------------------------------------------------------------------

def test_version_prints_rattan_engine_and_python():
    r = subprocess.run([sys.executable, "-m", "rattan", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    from rattan.engine import ABI_VERSION
    assert r.stdout == (f"rattan {importlib.metadata.version('rattan')} (engine ABI {ABI_VERSION}, "
                        f"Python {platform.python_version()})\n")


def test_help_does_not_load_the_engine():
    code = ("import sys; from rattan.cli import main\n"
            "try: main(['--help'])\n"
            "except SystemExit: pass\n"
            "assert 'rattan.engine' not in sys.modules, 'rattan --help loaded the engine'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


# -- item 14: which subcommand refused what ------------------------------------------------------

def _children(parser) -> dict:
    """A parser's subcommands, from argparse's own record of them."""
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return a.choices
    return {}


def _subcommands() -> list[tuple[str, ...]]:
    """Every subcommand, nested ones (`ctl get`) included, from the parser itself."""
    out = []

    def walk(parser, path):
        if path:
            out.append(path)
        for name, sp in _children(parser).items():
            walk(sp, path + (name,))
    walk(_parser(), ())
    return out


def _minimal_argv(path: tuple[str, ...]) -> list[str]:
    """The words the subcommand requires (placeholders: parsing fails before anything runs)."""
    parser, argv = _parser(), []
    for name in path:
        parser = _children(parser)[name]
        argv.append(name)
        for a in parser._actions:
            if not a.option_strings and a.nargs not in ("?", "*", argparse.PARSER):
                argv.append("x.rtn")
            elif a.option_strings and a.required:
                argv += [a.option_strings[-1], "1s"]
    return argv


@pytest.mark.parametrize("path", _subcommands(), ids=" ".join)
def test_unknown_option_names_the_subcommand_and_its_usage(path, capsys):
    prog = "rattan " + " ".join(path)
    err = parse_error(_minimal_argv(path) + ["--no-such-option"], capsys)
    assert err.startswith(f"usage: {prog} "), err  # the subcommand's usage, not `rattan [-h] COMMAND`
    assert f"{prog}: error: unrecognized argument: --no-such-option\n" in err
    assert "usage: rattan [-h]" not in err


def test_every_subcommand_is_covered():
    names = {p[0] for p in _subcommands()}
    assert {"check", "compile", "fmt", "cells", "schema", "convert", "sim", "run", "link", "plot", "log",
            "ctl", "lsp"} <= names
    assert ("ctl", "set") in _subcommands()


@pytest.mark.parametrize("argv, fixed", [
    (["run", "f.rtn", "iperf3", "-c", "x"], "rattan run f.rtn -- iperf3 -c x"),
    (["run", "f.rtn", "ping", "10.0.0.2"], "rattan run f.rtn -- ping 10.0.0.2"),
    # rattan's own `-n` took the command's `-n 3`: the command starts at its first word
    (["run", "f.rtn", "-n", "2", "iperf3", "-n", "3", "x"], "rattan run f.rtn -n 2 -- iperf3 -n 3 x"),
    (["run", "f.rtn", "sh", "--", "-c", "echo hi"], "rattan run f.rtn -- sh -c 'echo hi'"),
    (["link", "--uplink-rate", "1Mbps", "ping", "-c", "1", "x"],
     "rattan link --uplink-rate 1Mbps -- ping -c 1 x"),
])
def test_a_command_without_double_dash_gets_the_fixed_line(argv, fixed, capsys):
    err = parse_error(argv, capsys)
    assert f"rattan {argv[0]}: error: unrecognized argument" in err
    assert f"help: put the command after `--`: {fixed}\n" in err


def test_an_unknown_option_of_run_mentions_double_dash(capsys):
    err = parse_error(["run", "f.rtn", "--foo"], capsys)
    assert "rattan run: error: unrecognized argument: --foo\n" in err
    assert "put the command after `--`" in err


def test_a_misspelt_option_gets_did_you_mean(capsys):
    err = parse_error(["check", "a.rtn", "--fromat", "json"], capsys)
    assert "rattan check: error: unrecognized arguments: --fromat json\n" in err
    assert "help: did you mean `--format`?\n" in err
    # an option of `rattan ctl` written after the action: say where it goes
    err = parse_error(["ctl", "get", "x", "--jsn"], capsys)
    assert "rattan ctl get: error: unrecognized argument: --jsn\n" in err
    assert "did you mean `--json`? (an option of `rattan ctl`: write it before `get`)" in err


@pytest.mark.parametrize("argv, bad, sugg", [
    (["chek", "a.rtn"], "chek", "check"),                    # a command
    (["check", "--format", "jsn", "a.rtn"], "jsn", "json"),  # an option's value
    (["ctl", "stat"], "stat", "state"),                      # a subcommand's action
    (["batch", "shwo", "x.yaml"], "shwo", "show"),           # not taken for `batch run FILE`: no such file
])
def test_a_misspelt_choice_gets_did_you_mean(argv, bad, sugg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = parse_error(argv, capsys)
    assert f"invalid choice: '{bad}'" in err
    assert err.endswith(f"help: did you mean `{sugg}`?\n")


def test_a_choice_like_nothing_gets_no_guess(capsys):
    err = parse_error(["compile", "--emit", "svg", "a.rtn"], capsys)
    assert "invalid choice: 'svg'" in err and "did you mean" not in err


CLIENT_SERVER = "channel home {\n    endpoints client, server\n    client -> server\n    server -> client\n}\n"


def test_sim_without_a_flow_shows_one_with_the_files_endpoints(run_cli, tmp_path):
    f = tmp_path / "home.rtn"
    f.write_text(CLIENT_SERVER)
    code, out, err = run_cli("sim", str(f), "--duration", "1s")
    assert (code, out) == (2, "")
    assert err == ("rattan: give at least one --flow SRC->DST:KIND:RATE, e.g. --flow "
                   "'client->server:cbr:10Mbps' (the endpoints: client, server)\n")


def test_sim_flow_cut_by_the_shells_redirection_says_quote_it(run_cli, tmp_path):
    """`--flow client->server:cbr:1Mbps` unquoted: the shell passes `client-` and writes a file."""
    f = tmp_path / "home.rtn"
    f.write_text(CLIENT_SERVER)
    code, out, err = run_cli("sim", str(f), "--flow", "client-", "--duration", "1s")
    assert (code, out) == (2, "")
    assert "the shell took the `>` of `->` for a redirection" in err
    assert "quote the flow: --flow 'client->DST:KIND:RATE', e.g. --flow 'client->server:cbr:10Mbps'" in err


def test_double_dash_elsewhere_ends_the_options(run_cli, tmp_path):
    """For commands that run nothing, `--` ends the options (a file named `-x.rtn`); nothing is dropped."""
    f = tmp_path / "-x.rtn"
    f.write_text("channel c {\n    endpoints a, b\n    a -> b\n    b -> a\n}\n")
    code, _, err = run_cli("check", "--", str(f))
    assert code == 0, err
    code, _, err = run_cli("check", str(tmp_path / "missing.rtn"), "--", str(f))
    assert code == 2 and "missing.rtn" in err


# -- item 13: a file with several channels ---------------------------------------------------------

@pytest.mark.parametrize("channel, message", [
    (None, "rattan: the file has 2 channels (up_path, down_path): choose one with --channel\n"),
    ("nope", "rattan: no channel `nope`; channels: up_path, down_path\n"),
    ("up_pth", "rattan: no channel `up_pth` (did you mean `up_path`?); channels: up_path, down_path\n"),
])
def test_sim_with_several_channels_is_a_usage_error(channel, message, run_cli, tmp_path):
    f = tmp_path / "two.rtn"
    f.write_text(TWO_CHANNELS)
    argv = ["sim", str(f), "--flow", "left->right:cbr:1Mbps", "--duration", "100ms"]
    code, out, err = run_cli(*argv, *(["--channel", channel] if channel else []))
    assert (code, out, err) == (2, "", message)
    code, out, err = run_cli(*argv, "--channel", "down_path")
    assert code == 0 and out.startswith("channel down_path"), err


def test_run_with_several_channels_is_a_usage_error(run_cli, tmp_path):
    """`run` chooses before it needs root or namespaces: the same message, and --all."""
    f = tmp_path / "two.rtn"
    f.write_text(TWO_CHANNELS)
    code, _, err = run_cli("run", str(f), "--", "true")
    assert code == 2
    assert "the file has 2 channels (up_path, down_path): choose one with --channel, or run them all " \
           "with --all" in err
    code, _, err = run_cli("run", str(f), "--channel", "up_pth", "--", "true")
    assert code == 2 and "did you mean `up_path`?" in err


# -- item 15: a file that is not a topology ------------------------------------------------------

def _empty_channels(n: int) -> str:
    return "".join(f"channel c{i} {{ }}\n" for i in range(n))  # one RTN048 error each


def test_fifty_errors_are_all_shown(run_cli, tmp_path):
    f = tmp_path / "fifty.rtn"
    f.write_text(_empty_channels(50))
    code, _, err = run_cli("check", str(f), "--color", "never")
    assert code == 1
    assert err.count("error[RTN048]") == 50
    assert "more error" not in err and err.endswith("error: 50 errors found\n")


def test_the_51st_error_is_counted_not_shown(run_cli, tmp_path):
    f = tmp_path / "many.rtn"
    f.write_text(_empty_channels(51))
    code, _, err = run_cli("check", str(f), "--color", "never")
    assert code == 1
    assert err.count("error[RTN048]") == 50 and "`c50`" not in err
    assert err.endswith(f"error: ... and 1 more error in {f}; is this a topology file?\n"
                        "error: 51 errors found\n")


def test_a_source_file_stops_after_fifty_errors_and_renders_no_more(run_cli, tmp_path, monkeypatch):
    """A Python file of 5,000 lines: 50 errors shown, all counted; only those 50 are rendered;
    `--format json` keeps every one (tools filter themselves)."""
    import rattan.diagnostics
    f = tmp_path / "not_a_topology.rtn"
    lines = [f"def handler_{i}(self, x: int) -> dict:\n    return {{'a': x[{i}], 'b': (x, {i})}}\n"
             for i in range(2500)]
    f.write_text("".join(lines))
    rendered = []
    real = rattan.diagnostics.render_text
    monkeypatch.setattr(rattan.diagnostics, "render_text",
                        lambda sources, diags, **kw: rendered.append(len(diags)) or real(sources, diags, **kw))
    code, _, err = run_cli("check", str(f), "--color", "never")
    assert code == 1
    total = int(err.rsplit("error: ", 1)[1].split()[0])
    assert total > 1000
    assert err.count("\nerror[") + err.startswith("error[") == 50
    assert f"error: ... and {total - 50} more errors in {f}; is this a topology file?\n" in err
    assert rendered == [50]
    code, out, _ = run_cli("check", str(f), "--format", "json")
    assert code == 1 and len(json.loads(out)) == total
    # the commands that compile before running say the same
    code, _, err = run_cli("sim", str(f), "--duration", "1s")
    assert code == 1 and err.count("error[") == 50 and "is this a topology file?" in err


# -- `-o` into something that is not a regular file ----------------------------------------------

def test_compile_into_a_fifo_writes_through_it_and_keeps_it(tmp_path):
    """`rattan compile -o /dev/null` once renamed a temporary file over the device (as root, /dev/null
    became a regular file and broke every other user's `> /dev/null`). A FIFO stands in for the device."""
    import os
    import stat
    import threading

    src = tmp_path / "one.rtn"
    src.write_text("channel c {\n    endpoints left, right\n    left -> delay { delay = 10ms } -> right\n"
                   "    right -> left\n}\n")
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    r = subprocess.run([sys.executable, "-m", "rattan", "compile", str(src), "-o", str(fifo)],
                       capture_output=True, text=True, timeout=60)
    if reader.is_alive():  # the old code never opened the FIFO: unblock the reader
        with open(fifo, "w"):
            pass
    reader.join(5)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode), "the FIFO was replaced by a regular file"
    assert json.loads(got[0])["channels"], got
    assert not (tmp_path / "out.tmp").exists()

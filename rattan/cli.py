"""The `rattan` command line. Imports are lazy so that `rattan --help` stays fast."""
from __future__ import annotations

import argparse
import gc
import os
import sys

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL = 70  # a bug in rattan (EX_SOFTWARE); tests treat it as a failure
BATCH_COMMANDS = {"check", "compile", "fmt", "convert"}
COMMAND_TAKERS = {"run", "link"}  # subcommands that run the command given after `--`


def let_setting(text: str) -> tuple[str, str]:
    """`NAME=VALUE` of --let: the name and the expression's text."""
    name, eq, value = text.partition("=")
    name = name.strip()
    if not eq or not name.isidentifier() or not value.strip():
        raise argparse.ArgumentTypeError(f"`{text}`: expected NAME=VALUE, e.g. rate=2Mbps")
    return name, value.strip()


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose error for a misspelt choice (a command, `--format jsn`) says which
    one was meant, as an unknown option's does (`_refuse`); subcommands' parsers are of this class too."""

    def error(self, message: str):
        import re
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if m:
            from .diagnostics import did_you_mean
            sugg = did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
            if sugg:
                message += f"\nhelp: did you mean `{sugg}`?"
        super().error(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="rattan",
        description="Emulate Internet paths for unmodified applications: check, compile and "
                    "inspect topologies written in .rtn, or in upstream Rattan TOML/YAML.",
        epilog="Exit status: 0 no errors, 1 errors found, 2 usage or I/O problem.")
    p.add_argument("--version", action=_Version, help="print rattan's version (and its engine's) and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def diag_opts(sp):
        sp.add_argument("--format", choices=["text", "json"], default="text",
                        help="diagnostics as text on stderr (default) or a JSON list on stdout")
        sp.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                        help="color diagnostics (default: when stderr is a terminal)")
        sp.add_argument("--dump-after", metavar="PASS",
                        help="print the IR after PASS and stop (`--dump-after list` names the passes)")

    def strict_opt(sp, what):
        sp.add_argument("--strict", action="store_true",
                        help="count warnings as errors: exit 1 if there is any warning" + what
                             + " (in TOML/YAML, what upstream Rattan silently accepts is a warning)")

    def let_opt(sp):
        sp.add_argument("--let", dest="lets", action="append", type=let_setting, default=[],
                        metavar="NAME=VALUE",
                        help="set the file's `let NAME` to VALUE, a .rtn expression (e.g. --let rate=2Mbps; "
                             "repeat for several)")

    sp = sub.add_parser("check", help="report every mistake in topology files",
                        description="Check .rtn, .toml or .yaml topology files and report every error.")
    sp.add_argument("files", nargs="+", metavar="FILE")
    diag_opts(sp)
    strict_opt(sp, "")
    let_opt(sp)

    sp = sub.add_parser("compile", help="compile a topology into an execution plan",
                        description="Compile a topology into the JSON execution plan (or Graphviz DOT).")
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    sp.add_argument("--emit", choices=["plan", "dot"], default="plan", help="what to write (default: plan)")
    sp.add_argument("--no-optimize", action="store_true", help="skip the optimizing passes")
    sp.add_argument("--freeze", action="store_true",
                    help="the plan will not be changed at run time: optimize named cells too")
    diag_opts(sp)
    strict_opt(sp, ", and write no plan")
    let_opt(sp)

    sp = sub.add_parser("fmt", help="format .rtn files canonically",
                        description="Rewrite .rtn files in canonical form, keeping comments.")
    sp.add_argument("files", nargs="+", metavar="FILE", help=".rtn files, or folders: their .rtn files")
    sp.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if a file is not formatted")
    sp.add_argument("--stdout", action="store_true", help="print the result instead of rewriting")

    sp = sub.add_parser("cells", help="list cell types and their parameters",
                        description="The cell registry: built-in and plugin cell types.")
    sp.add_argument("type", nargs="?", metavar="TYPE", help="show one type in full")
    sp.add_argument("--json", action="store_true", help="print the schemas as JSON")

    sp = sub.add_parser("new-cell", help="write a plugin distribution for a new cell type (C or Python)",
                        description="Write a pip-installable plugin distribution for a new cell type NAME: its "
                                    "schema, its C or Python source with the interface in comments, setup, a "
                                    "README and tests that run it in `rattan sim`. `pip install ./NAME` then "
                                    "makes NAME a cell type like the built-in ones.")
    sp.add_argument("name", metavar="NAME", help="the cell type: lower-case letters, digits and _, not a type "
                                                 "that exists")
    sp.add_argument("--lang", choices=["c", "python"], default="c",
                    help="c: a cell that forwards packets, compiled at install (default); python: a model "
                         "that drives C cells at every tick")
    sp.add_argument("--dir", metavar="PATH", help="the folder to write (default ./NAME); it must not exist")

    sp = sub.add_parser("include-dir", help="print the folder of rattan_engine.h, for compiling C cells",
                        description="Print the folder holding the installed rattan_engine.h, the header C "
                                    "cells are written against: cc -I\"$(rattan include-dir)\" ...")

    sp = sub.add_parser("schema", help="print the JSON Schema of TOML/YAML documents",
                        description="JSON Schema (draft-07) of the TOML/YAML document, for editors: "
                                    "yaml-language-server and Taplo read it. A file can name it from any "
                                    "folder by the installed path (--path): "
                                    "`# yaml-language-server: $schema=PATH` or `#:schema PATH` (TOML).")
    sp.add_argument("--plan", action="store_true", help="the plan's schema instead")
    sp.add_argument("-o", "--output", metavar="FILE", help="write the schema here instead of stdout")
    sp.add_argument("--path", action="store_true",
                    help="print the absolute path of the schema file installed with the package instead")

    sp = sub.add_parser("convert", help="convert upstream Rattan TOML/YAML to .rtn",
                        description="Write the .rtn equivalent of an upstream Rattan TOML or YAML file.")
    sp.add_argument("file", metavar="FILE")
    sp.add_argument("-o", "--output", metavar="FILE.rtn", help="write here instead of stdout")
    sp = sub.add_parser("sim", help="run a topology in virtual time with synthetic traffic",
                        description="Run one channel in virtual time with synthetic flows; deterministic "
                                    "for a given seed.")
    sp.add_argument("file", metavar="FILE", help="a topology (.rtn, .toml, .yaml) or a compiled plan "
                                                 "(.json, from `rattan compile -o`), checked before it runs")
    sp.add_argument("--flow", action="append", default=[], metavar="SPEC",
                    help="SRC->DST:KIND:RATE[:size=S], KIND cbr or poisson, e.g. 'left->right:cbr:20Mbps' "
                         "(repeatable; default size 1500B)")
    sp.add_argument("--duration", required=True, metavar="T", help="virtual time to run, e.g. 10s")
    let_opt(sp)
    sp.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    sp.add_argument("--channel", metavar="NAME", help="which channel, if the file has several")
    sp.add_argument("--json", action="store_true", help="print the result document as JSON")
    sp.add_argument("--interval", metavar="T", help="sampling interval of the time series in the result "
                                                    "(default 100ms)")
    sp.add_argument("--samples", action="store_true",
                    help="also list every received packet's sequence number and one-way delay in the JSON "
                         "(16 bytes per packet while it runs; without, memory stays flat however long the run)")
    _log_flags(sp)
    sp.add_argument("--http", metavar="ADDR",
                    help="serve the control API on ADDR (PORT, 127.0.0.1:PORT or unix:PATH) and pace virtual "
                         "time by the clock, so that cells can be changed while it runs")
    _cores_flag(sp, real=False)

    sp = sub.add_parser("run", help="emulate a channel on real packets between network namespaces (root)",
                        description="Create a namespace per endpoint, forward their packets through the "
                                    "channel's cells in real time, run CMD in the first endpoint's namespace "
                                    "(a shell without CMD), remove everything, and exit with CMD's status. "
                                    "Commands see RATTAN_<ENDPOINT>_IP and RATTAN_CHANNEL.")
    sp.add_argument("file", metavar="FILE", nargs="?",
                    help="a topology (.rtn, .toml, .yaml) or a compiled plan (.json, from `rattan compile -o`), "
                         "checked before anything starts")
    sp.add_argument("-c", "--config", metavar="FILE",
                    help="upstream's spelling of FILE (`rattan run -c config.toml`)")
    let_opt(sp)
    sp.add_argument("--channel", metavar="NAME", action="append",
                    help="which channel, if the file has several (repeatable: several at once)")
    sp.add_argument("--all", action="store_true", help="run every channel of the file at once")
    sp.add_argument("-n", "--instances", type=int, default=1, metavar="N",
                    help="start N instances of each chosen channel, each with its own namespaces, "
                         "addresses and commands (default 1)")
    sp.add_argument("--left", metavar="ARG", nargs="+",
                    help="upstream's spelling of `-- CMD ARGS...`: the command (an argument list, no shell) "
                         "in the first endpoint's namespace, replacing an upstream document's [commands] left")
    sp.add_argument("--right", metavar="CMD", nargs="+",
                    help="a shell command to start first in the second endpoint's namespace (an upstream "
                         "document's right side), e.g. 'iperf3 -s'; several words are an argument list, as "
                         "upstream's --right (no shell)")
    sp.add_argument("--seed", type=int, default=1, help="random seed of the cells (default 1)")
    sp.add_argument("--http", metavar="ADDR", nargs="?", const="",
                    help="serve the control API on ADDR: PORT, 127.0.0.1:PORT, [::1]:PORT or unix:PATH "
                         "(loopback only; off by default); given alone, as upstream's flag, on 127.0.0.1 at "
                         "-p PORT, else the file's [http] port, else 8086")
    sp.add_argument("-p", "--port", type=int, metavar="PORT",
                    help="upstream's port flag: the port of a bare --http or of the file's [http] server")
    sp.add_argument("--generate", action="store_true",
                    help="print the .rtn of an upstream document (`rattan convert`) and exit; upstream "
                         "prints its TOML")
    sp.add_argument("--generate-path", metavar="FILE", help="with --generate: write the .rtn to FILE")
    _log_flags(sp)
    for flag in ("--left-stdout", "--right-stdout", "--left-stderr", "--right-stderr", "--file-log"):
        sp.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    sp.add_argument("--file-log-path", metavar="FILE", help=argparse.SUPPRESS)
    sp.add_argument("--combined-trace", metavar="T", help=argparse.SUPPRESS)
    sp.add_argument("--combined-trace-path", metavar="FILE", help=argparse.SUPPRESS)
    sp.add_argument("-q", "--quiet", action="store_true",
                    help="no live line on the terminal and no closing table of what each cell did")
    sp.add_argument("--late-threshold", default="1ms", metavar="T",
                    help="warn when frames leave later than planned by more than T (default 1ms)")
    _nice_flag(sp)
    _cores_flag(sp, real=True)
    sp.epilog = ("Give the command after `--`: rattan run FILE [options] -- CMD ARGS... Without one, the "
                 "file's upstream [commands] run, else an interactive shell (several instances: they stay "
                 "up until Ctrl-C). With several instances, each runs its own copy of the commands, with "
                 "its own RATTAN_<ENDPOINT>_IP, RATTAN_<ENDPOINT>_NETNS, RATTAN_CHANNEL and RATTAN_INSTANCE; "
                 "their output is prefixed with `[channel#k]`, a table of instances and exit statuses ends "
                 "the run, and the exit status is the first failure's, or 0. An upstream TOML/YAML document "
                 "runs as upstream runs it: one namespace a side (in Compatible mode, upstream's default, the "
                 "right side is the namespace rattan runs in), 10.1.i.x and 10.2.i.x addresses, RATTAN_BASE, "
                 "RATTAN_IP_<i>, RATTAN_EXT and RATTAN_ID, its [commands] through /usr/bin/env, its "
                 "[general] packet_log and [http] server unless the flags say otherwise (docs/running.md). "
                 "Upstream's command line works too: rattan run -c config.toml [--left ARGS...] [--right "
                 "ARGS...] [--http] [-p PORT] [--packet-log FILE] [--generate [--generate-path F]]; "
                 "--left-stdout, --right-stdout, --left-stderr, --right-stderr and --file-log[-path] are "
                 "accepted and change nothing (the commands' output always reaches the terminal; no core log), "
                 "--combined-trace is refused.")
    sp.usage = ("rattan run FILE | -c FILE [--channel NAME | --all] [-n N] [--right CMD] [--seed N] "
                "[--http [ADDR]] [-- CMD ARGS...]")

    sp = sub.add_parser("link", help="a two-endpoint path from flags, like mm-link and upstream's rattan link (root)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Emulate one path between `left` (where CMD runs) and `right`, given by "
                                    "flags; the uplink goes left -> right. Values are written as in .rtn "
                                    "files (10Mbps, 20ms, 1%, droptail { packets = 100 }), or as upstream "
                                    "Rattan's `rattan link` reads them (--uplink-bandwidth 10Mbps, "
                                    "--uplink-loss 0.01, --uplink-queue droptail --uplink-queue-args "
                                    "'{\"packet_limit\": 100}').")
    for d in ("uplink", "downlink"):
        sp.add_argument(f"--{d}-rate", metavar="R", help=f"{d} rate as in .rtn, e.g. 10Mbps")
        sp.add_argument(f"--{d}-bandwidth", metavar="BW",
                        help=f"{d} rate, upstream's spelling: a human-bandwidth string (10Mbps, 1Gbps 200Mbps)")
        sp.add_argument(f"--{d}-delay", metavar="T", help=f"{d} one-way delay, e.g. 20ms (upstream's durations too)")
        sp.add_argument(f"--{d}-loss", metavar="P", help=f"{d} random loss: 1%% (.rtn) or 0.01 (upstream: a "
                                                        f"probability; above 1 drops all)")
        sp.add_argument(f"--{d}-trace", metavar="F", help=f"{d} Mahimahi trace file (instead of a rate)")
        sp.add_argument(f"--{d}-queue", metavar="Q",
                        help=f"{d} queue of the rate or trace: a .rtn queue ('droptail {{ bytes = 150KB }}') or "
                             f"upstream's queue type: infinite, droptail, drophead, codel")
        sp.add_argument(f"--{d}-queue-args", metavar="JSON",
                        help=f"with an upstream --{d}-queue type: its config as JSON, e.g. "
                             f"'{{\"packet_limit\": 100, \"byte_limit\": 150000, \"bw_type\": \"LinkLayer\"}}'; "
                             f"codel also takes interval, target, mtu")
    sp.add_argument("--right", metavar="CMD", help="a shell command to start first on the far side")
    sp.add_argument("--seed", type=int, default=1, help="random seed of the cells (default 1)")
    sp.add_argument("--print", action="store_true", help="print the .rtn of the path and exit")
    sp.add_argument("--generate", action="store_true",
                    help="upstream's spelling of --print (prints the .rtn, not upstream's TOML)")
    sp.add_argument("--generate-path", metavar="FILE", help="with --generate: write the .rtn to FILE")
    sp.add_argument("-s", "--shell", choices=("default", "sh", "bash", "zsh", "fish"), default="default",
                    help="the shell to run when no command is given (default: $SHELL, else /bin/sh)")
    sp.add_argument("--http", metavar="ADDR", nargs="?", const="",
                    help="serve the control API: on ADDR (PORT, 127.0.0.1:PORT, unix:PATH), or, given alone as "
                         "upstream's flag, on 127.0.0.1 at -p PORT (default 8086); loopback only")
    sp.add_argument("-p", "--port", type=int, metavar="PORT", help="upstream's port flag for a bare --http")
    _log_flags(sp)
    for flag in ("--left-stdout", "--right-stdout", "--left-stderr", "--right-stderr", "--file-log", "--no-nat"):
        sp.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    sp.add_argument("--file-log-path", metavar="FILE", help=argparse.SUPPRESS)
    sp.add_argument("--combined-trace", metavar="T", help=argparse.SUPPRESS)
    sp.add_argument("--combined-trace-path", metavar="FILE", help=argparse.SUPPRESS)
    _nice_flag(sp)
    _cores_flag(sp, real=True)
    sp.usage = ("rattan link [--uplink-rate R | --uplink-bandwidth BW | --uplink-trace F] [--uplink-delay T] "
                "[--uplink-loss P] [--uplink-queue Q [--uplink-queue-args JSON]] [--downlink-...] [--http [ADDR]] "
                "[--print] [-- CMD ARGS...]")
    sp.epilog = LINK_EPILOG

    sp = sub.add_parser("plot", help="draw what a run did over time (PNG and SVG)",
                        description="Draw throughput (with each rate-limited cell's configured rate), delay, "
                                    "and queues with drops over time, from the JSON of `rattan sim ... --json` "
                                    "or from a packet log (--packet-log) of a run or a sim.")
    sp.add_argument("file", metavar="RESULT.json|LOG")
    sp.add_argument("-o", "--output", action="append", metavar="FILE",
                    help="where to write (.png, .svg or .pdf; repeatable); default RESULT.png and RESULT.svg")
    sp.add_argument("--interval", metavar="T", help="packet logs: the sampling interval (default: 100ms, "
                                                    "coarser for long logs)")

    sp = sub.add_parser("log", help="read a packet log: a summary per cell, or CSV, or a pcap",
                        description="Read what --packet-log recorded. Without --to: arrivals, departures, drops "
                                    "by reason and time spent, per cell.")
    sp.add_argument("file", metavar="LOG")
    sp.add_argument("--to", choices=("csv", "pcap"), help="convert: every event as CSV, or one cell's packets as "
                                                           "a pcap (tcpdump, Wireshark)")
    sp.add_argument("-o", "--output", metavar="FILE", help="where to write (default LOG.csv or LOG.pcap; the summary: stdout)")
    sp.add_argument("--cell", metavar="NAME", help="only this cell (CHANNEL/NAME if names repeat)")
    sp.add_argument("--event", choices=("arrive", "depart", "drop"),
                    help="pcap: which packets (default depart: what the cell let through)")
    sp.add_argument("--snaplen", type=int, metavar="N",
                    help="pcap: keep at most N bytes of each packet (default: all the log recorded)")
    sp.add_argument("--json", action="store_true", help="the summary as JSON")

    sp = sub.add_parser("ctl", help="read and change the cells of a running emulation (its control API)",
                        description="Talk to the control API of `rattan run --http ADDR` or `rattan sim --http "
                                    "ADDR`. CELL is CHANNEL/CELL, or just CELL when the run has one channel; "
                                    "cells inside compound cells have dotted names (up.bw).")
    sp.add_argument("--http", metavar="ADDR", default=None,
                    help="the API's address (default: $RATTAN_CONTROL, which commands of a run see)")
    sp.add_argument("--instance", type=int, default=0, metavar="K", help="which instance of the channel (default 0)")
    sp.add_argument("--json", action="store_true", help="print the API's JSON as is")
    ctl = sp.add_subparsers(dest="action", metavar="ACTION")
    ctl.add_parser("state", help="the run: clock, logical time, instances")
    ctl.add_parser("cells", help="every cell, with its runtime parameters")
    ctl.add_parser("openapi", help="the OpenAPI document of this run's API")
    c = ctl.add_parser("get", help="a cell's configuration and the runtime values in force")
    c.add_argument("cell", metavar="CELL")
    c = ctl.add_parser("telemetry", help="a cell's counters (in, out, queued, dropped by reason)")
    c.add_argument("cell", metavar="CELL")
    c = ctl.add_parser("set", help="change runtime parameters, all at the same instant: set CELL rate=5Mbps ...")
    c.add_argument("cell", metavar="CELL")
    c.add_argument("values", nargs="+", metavar="PARAM=VALUE", help="e.g. rate=5Mbps delay=30ms state=down")
    c.add_argument("--at", metavar="T", help="at this logical time of the run (e.g. 12s) instead of now")

    from .batch.cli import add_parser as add_batch
    add_batch(sub)

    sp = sub.add_parser("lsp", help="the language server for editors, on stdin/stdout",
                        description="Speak the Language Server Protocol on stdin/stdout: diagnostics as "
                                    "`rattan check` finds them, hover documentation of cells and parameters "
                                    "(from their schemas, plugins included), completion, signature help, go to "
                                    "definition, references, rename (across imports and timelines), document "
                                    "highlight, semantic tokens, folding, the outline, formatting as `rattan fmt` "
                                    "(whole or a range), and quick fixes; in upstream TOML/YAML files, their "
                                    "keys and values from the document schema. Editors start it themselves; see "
                                    "docs/editors.md (VS Code: editors/vscode).")
    sp.add_argument("--stdio", action="store_true", help="accepted for editors that pass it; stdio is the default")
    # Who parses which words, for errors that name the subcommand that refused them.
    p.subcommands = ("command", sub.choices)
    sub.choices["ctl"].subcommands = ("action", ctl.choices)
    return p


class _Version(argparse.Action):
    """`rattan --version`: the package's version, and for bug reports the engine's ABI and Python's."""

    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def version_text() -> str:
    """`rattan 0.1.0 (engine ABI N, Python 3.x.y)`; the installed distribution's version if any."""
    import platform
    from importlib import metadata
    try:
        version = metadata.version("rattan")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        from . import __version__ as version
    try:  # loading the engine costs about 10 ms; a stale or missing build is worth reporting
        from .engine import ABI_VERSION
        engine = f"engine ABI {ABI_VERSION}"
    except ImportError as e:
        engine = f"engine unavailable: {e}"
    return f"rattan {version} ({engine}, Python {platform.python_version()})"


LINK_EPILOG = """\
upstream Rattan's `rattan link` flags (src/channel.rs, src/main.rs) and what they become:
  --uplink-bandwidth BW          bw { rate = BW }, cell up_1 (as upstream names it)
  --uplink-trace FILE            bw_trace { trace = FILE }, replayed from the start of the run (as
                                 mm-link; upstream starts it at the first packet: write a .rtn with
                                 `start = first_packet` for that)
  --uplink-queue infinite        queue = infinite {} (queue args ignored, as upstream)
  --uplink-queue droptail|drophead --uplink-queue-args JSON
                                 packet_limit -> packets, byte_limit -> bytes, bw_type LinkLayer ->
                                 overhead = 38B; without limits: infinite {}
  --uplink-queue codel           codel { target, interval, mtu } (5ms, 100ms, 1500B by default),
                                 unlimited without packet_limit/byte_limit
  --uplink-delay T               delay { delay = T }, the next cell (up_2 after a rate)
  --uplink-loss P                loss { rate = P }, P clamped to [0, 1] as upstream's draw does
  --downlink-...                 the same, right -> left, cells down_1, down_2, ...
  -s SHELL, -- CMD               the shell without a command, or the command (in left)
  --http [-p PORT]               the control API at 127.0.0.1:PORT (8086); POST /config/up_1 takes
                                 upstream's config bodies (docs/control.md)
  --packet-log FILE              rattan's packet log (read it with `rattan log`, not upstream's tools)
  --generate [--generate-path F] the .rtn of the path (--print)
  --left-stdout, --right-stdout, --left-stderr, --right-stderr (isolated mode only: upstream ignores
  them for a link), --no-nat (rattan's link has no NAT), --file-log[-path] (no core log here):
                                 accepted, with a warning, and change nothing
  --combined-trace:              not supported (an error)

the layout differs from upstream's: upstream (like mm-link) leaves the far side in the host's
namespace; here both sides are namespaces rattan makes (traffic stays inside them), so a server on
the far side is the --right command. The commands still get upstream's variables: RATTAN_BASE and
RATTAN_IP_1 (the other side's address), RATTAN_ID; no RATTAN_EXT. Upstream's guide example:
  rattan link --uplink-bandwidth 12Mbps --uplink-delay 50ms --right 'iperf3 -s' \\
      -- sh -c 'iperf3 -c $RATTAN_BASE -t 10'
(or `--right 'iperf3 -s' -s bash`, then `iperf3 -c $RATTAN_BASE` in that shell)"""


def _nice_flag(sp) -> None:
    sp.add_argument("--precise", action="store_true",
                    help="precise timing: the engine spins the last stretch before each departure (the "
                         "stretch measured at start from this machine's timer wake-ups, printed), for "
                         "lateness within microseconds at the cost of a core's CPU (docs/running.md, Timing)")
    sp.add_argument("--offload", choices=("gso", "plain"), metavar="MODE",
                    help="how frames cross the engine: gso (default), the endpoints' TSO/GSO left on and "
                         "super-frames of up to 64 KiB forwarded whole, cut into segments only where a "
                         "cell must see each one (loss, corrupt, ...); plain, offloads off and frames of "
                         "at most the MTU (docs/running.md)")
    sp.add_argument("--engine-nice", type=_nice, metavar="N",
                    help="nice value of the thread that forwards packets, -20..19 (default -5: the "
                         "applications on the path do not preempt it at each wake-up; 0 shares the CPU "
                         "with them evenly)")
    sp.add_argument("--app-cpus", type=_cpu_setting("--app-cpus", "inherit"), metavar="auto|inherit|LIST",
                    help="the CPUs the commands run on (and all they start): a list like 1 or 0,2-3; inherit: "
                         "rattan's own; auto (default): the CPUs the engine is not held to, when it is held "
                         "(`taskset -c 1 rattan run ...`), else inherit (off the engine's core, 64-byte UDP "
                         "went faster and TCP no slower: docs/running.md)")
    sp.add_argument("--rps-cpus", type=_cpu_setting("--rps-cpus", "off"), metavar="off|auto|LIST",
                    help="receive packet steering on the endpoint veths: the CPUs that take what the engine "
                         "sends into them (the receiver's stack) instead of the engine's own; auto: the CPUs "
                         "the engine is not held to; off (default). With the engine held, auto gained TCP "
                         "(1.1-1.4x) and lost 64-byte UDP (0.6-0.9x): docs/running.md")


def _cpu_setting(flag: str, word: str):
    """An argparse type for --app-cpus / --rps-cpus: `auto`, `word` or a CPU list, checked now."""
    def parse(text: str) -> str:
        from .runtime.cpus import CpuListError, parse_list
        if text in ("auto", word):
            return text
        try:
            parse_list(text, flag)
        except CpuListError as e:
            raise argparse.ArgumentTypeError(f"{e}; or give auto or {word}") from None
        return text
    return parse


def _cores_flag(sp, real: bool) -> None:
    default = ("one per channel instance, up to the usable cores but one (the applications need one)" if real
               else "every usable core; a channel runs on one thread unless its paths are separate")
    sp.add_argument("--cores", type=_cores, metavar="N",
                    help=f"engine threads, each pinned to a core of its own when more than one; channels "
                         f"(connected parts of the graph) are shared among them, results in virtual time "
                         f"the same for any N (default: {default})")
    if real:
        sp.add_argument("--split", action="store_true",
                        help="with more than one engine thread, run a channel's regions (split at its delay "
                             "cells) on different threads, handing packets off through lock-free rings "
                             "(default: a channel instance stays on one thread)")


def _cores(text: str) -> int:
    from .runtime.cores import CoresError, check
    try:
        return check(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e) if isinstance(e, CoresError) else f"not a whole number: {text!r}") \
            from None


def _nice(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not -20 <= n <= 19:
        raise argparse.ArgumentTypeError(f"{n} is outside -20..19")
    return n


def _log_flags(sp) -> None:
    sp.add_argument("--packet-log", metavar="PATH",
                    help="record every packet event of the cells (arrive, depart, drop with its reason) in a "
                         "compact binary file; read it with `rattan log`")
    sp.add_argument("--log-cells", metavar="NAMES", type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
                    help="only these cells, comma-separated (default: every cell)")
    sp.add_argument("--packet-log-snaplen", type=int, default=0, metavar="N",
                    help="keep the first N bytes of each IP packet in the log (default 0: whole packets)")


def _refuse(parser: argparse.ArgumentParser, args, argv: list[str], extra: list[str], cmd: list[str]):
    """Exit 2 naming the subcommand that refused `extra`, with its own usage line (argparse would
    blame the top-level parser); suggest `--` when the words look like a command to run."""
    import shlex
    from .diagnostics import did_you_mean
    chain = [parser]  # rattan, rattan ctl, rattan ctl get: the deepest parser that was reached
    while (subs := getattr(chain[-1], "subcommands", None)) and getattr(args, subs[0], None) in subs[1]:
        chain.append(subs[1][getattr(args, subs[0])])
    refuser = chain[-1]
    words = " ".join(shlex.quote(w) for w in extra)
    lines = [f"{refuser.prog}: error: unrecognized argument{'s' * (len(extra) > 1)}: {words}"]
    first = extra[0]
    if first.startswith("--"):
        for depth in range(len(chain) - 1, -1, -1):  # the refuser's own options first
            # argparse keeps no public list of a parser's options; `_actions` is stable since 3.2
            options = [o for a in chain[depth]._actions for o in a.option_strings if o.startswith("--")]
            sugg = did_you_mean(first.partition("=")[0], options)
            if sugg:
                where = "" if depth == len(chain) - 1 else (
                    f" (an option of `{chain[depth].prog}`: write it before "
                    f"`{getattr(args, chain[depth].subcommands[0])}`)")
                lines.append(f"help: did you mean `{sugg}`?{where}")
                break
    # the command starts at its first word; rattan's own options may have taken some of its
    # later words (`-n 2`), so everything from there on goes after `--`
    start = max((i for i, w in enumerate(argv) if w == first and _subsequence(extra, argv[i:])), default=None)
    if args.command in COMMAND_TAKERS and not first.startswith("-") and start is not None:
        fixed = ["rattan"] + argv[:start] + ["--"] + argv[start:] + cmd
        lines.append(f"help: put the command after `--`: {shlex.join(fixed)}")
    elif len(lines) == 1 and args.command in COMMAND_TAKERS:
        lines.append(f"help: if it is for the command to run, put the command after `--`: "
                     f"{refuser.prog} [options] -- CMD ARGS...")
    elif len(lines) == 1 and len(chain) > 1:
        lines.append(f"help: `{refuser.prog} --help` lists its options")
    refuser.print_usage(sys.stderr)
    refuser.exit(EXIT_USAGE, "\n".join(lines) + "\n")


def _subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(w in it for w in small)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rattan` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        # top-level options take no value, so the first other word is the subcommand
        words = [w for w in argv[:cut] if not w.startswith("-")]
        if words and words[0] in COMMAND_TAKERS:  # everything after `--` is the command to run
            argv, cmd = argv[:cut], argv[cut + 1:]
        # elsewhere `--` only ends the options, for argparse: FILE operands follow (`-x.rtn`)
    from .batch.cli import normalize
    argv = normalize(argv)  # `rattan batch FILE` is `rattan batch run FILE`
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _refuse(parser, args, argv, extra, cmd)
    args.cmd = cmd
    args.argv = argv  # the words before `--`, for `rattan run`'s FILE after --left/--right words
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command in BATCH_COMMANDS:
        # Short-lived batch work over many small acyclic objects: the cyclic collector
        # only costs time here (a third of a large compile); memory is freed on exit.
        gc.disable()
    try:
        from . import commands
        return getattr(commands, "cmd_" + args.command.replace("-", "_"))(args)
    except KeyboardInterrupt:
        print("rattan: interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print("rattan: the input is nested too deeply to process", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("rattan: out of memory: the input is too large", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except Exception as e:  # last resort: a user gets a message, never a traceback
        if os.environ.get("RATTAN_DEBUG"):
            raise
        print(f"rattan: internal error: {type(e).__name__}: {e}\n"
              "this is a bug in rattan; run again with RATTAN_DEBUG=1 for the traceback "
              "and report it with the input file", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

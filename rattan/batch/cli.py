"""`rattan batch`: run an experiment's sweep (`rattan batch FILE`, short for `rattan batch run FILE`),
show its results (`batch show`) and plot them (`batch plot`)."""
from __future__ import annotations

import argparse
import os
import sys

SUBCOMMANDS = ("run", "show", "plot")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
examples:
  rattan batch sweep.yaml                 run every combination not done yet (resumes after Ctrl-C)
  rattan batch sweep.yaml --jobs 2        at most two runs at once
  rattan batch sweep.yaml --cluster 10.0.0.5:6379   on a Ray cluster (docs/cluster.md)
  rattan batch show sweep.yaml --where cc=bbr --format csv -o bbr.csv
  rattan batch plot sweep.yaml client.goodput_bps --x size --lines cc --facet queue -o goodput.png

Exit status: 0 every run ok, 1 some runs failed, 2 a bad experiment file or usage, 130 interrupted.
The file's format: docs/batch.md."""


def where_setting(text: str) -> tuple[str, str]:
    axis, eq, value = text.partition("=")
    if not eq or not axis.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"`{text}`: expected AXIS=VALUE, e.g. cc=bbr")
    return axis.strip(), value.strip()


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"`{text}`: expected a whole number of at least 1")
    return n


def count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"`{text}`: expected a whole number (0 or more)")
    return n


def add_parser(sub) -> None:
    """The `batch` subcommand and its own subcommands, on the top-level parser's `sub`."""
    bp = sub.add_parser("batch", help="run a sweep of real runs, show and plot its results",
                        description="Run every combination of an experiment file's sweep (each a real run "
                                    "between network namespaces, root), record the results in a database, "
                                    "and show or plot them. `rattan batch FILE` is `rattan batch run FILE`.",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    bsub = bp.add_subparsers(dest="batch_command", metavar="{run,show,plot}")
    bp.subcommands = ("batch_command", bsub.choices)  # for the top level's "unrecognized argument" help

    sp = bsub.add_parser("run", help="run what is not done yet of an experiment (the default)",
                         description="Run every combination of the sweep that the database does not have as "
                                     "ok, as many at once as the cores and the file's `resources` allow.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("experiment", metavar="EXPERIMENT.yaml")
    sp.add_argument("--jobs", "-j", type=positive_int, metavar="N",
                    help="at most N runs at once (default: as many as the cores and `resources` allow)")
    sp.add_argument("--retries", type=count, metavar="N", help="retry a failed run up to N times "
                                                                 "(default: the file's `retries`, else 1)")
    sp.add_argument("--database", metavar="URL|PATH", help="where results go (default: the file's `database`, "
                                                          "else EXPERIMENT.sqlite next to it)")
    sp.add_argument("--cluster", metavar="ADDRESS",
                    help="run on the Ray cluster at ADDRESS (host:port; its token from RAY_AUTH_TOKEN or "
                         "RAY_AUTH_TOKEN_PATH); see docs/cluster.md")
    sp.add_argument("--no-reuse", action="store_true",
                    help="build every run's namespaces and rings afresh instead of reusing warm ones")
    sp.add_argument("--no-plots", action="store_true", help="do not draw the file's `plots` at the end")
    sp.add_argument("--dry-run", action="store_true",
                    help="check the file and list the runs (done or to do) without running any")
    prog = sp.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="a live progress bar (default: when stderr is a terminal)")
    prog.add_argument("--no-progress", dest="progress", action="store_false", help="a line per finished run")

    def source(p):
        p.add_argument("source", metavar="EXPERIMENT.yaml|DATABASE",
                       help="an experiment file (its database), a SQLite file, or a database URL")
        p.add_argument("--experiment", metavar="NAME", help="which experiment, if the database holds several")
        p.add_argument("--where", action="append", type=where_setting, default=[], metavar="AXIS=VALUE",
                       help="only runs with this value (repeat: several axes, or several values of one)")

    sp = bsub.add_parser("show", help="the recorded runs: a table, CSV or JSON",
                         description="Show the runs recorded for an experiment, with their parameters, "
                                     "status and metrics; failed runs with their error and stderr.")
    source(sp)
    sp.add_argument("--status", choices=["ok", "failed"], help="only runs with this status")
    sp.add_argument("--format", choices=["table", "csv", "json"], default="table", help="default: table")
    sp.add_argument("--metric", action="append", metavar="NAME", dest="metrics",
                    help="only these metrics (repeatable; default: every numeric metric)")
    sp.add_argument("--attempts", action="store_true",
                    help="every attempt of every run (retries included), with its error and stderr")
    sp.add_argument("-o", "--output", metavar="FILE", help="write there instead of stdout")

    sp = bsub.add_parser("plot", help="a metric against an axis, lines and facets by others (PNG, SVG)",
                         description="Draw METRIC (e.g. client.goodput_bps) against the sweep axis --x: the "
                                     "mean over seeds and repetitions with its 95 %% confidence interval, a "
                                     "line per value of --lines, a panel per value of --facet (columns) and "
                                     "--facet-rows (rows).")
    source(sp)
    sp.add_argument("metric", metavar="METRIC")
    sp.add_argument("--x", required=True, metavar="AXIS", help="the axis along the bottom")
    sp.add_argument("--lines", metavar="AXIS", help="a line per value of this axis")
    sp.add_argument("--facet", metavar="AXIS", help="a column of panels per value of this axis")
    sp.add_argument("--facet-rows", metavar="AXIS", help="a row of panels per value of this axis")
    sp.add_argument("-o", "--output", action="append", metavar="FILE",
                    help="the file to write (.png, .svg or .pdf; repeatable); default NAME-METRIC.png and .svg "
                         "next to the source")
    sp.add_argument("--title", metavar="TEXT")
    sp.add_argument("--ylabel", metavar="TEXT")
    sp.add_argument("--scale", type=float, metavar="K", help="multiply values by K (default: by the metric's "
                                                               "unit, e.g. bit/s shown as Mbit/s)")


def normalize(argv: list[str]) -> list[str]:
    """`rattan batch FILE ...` -> `rattan batch run FILE ...` (argv holds the words after `rattan`)."""
    try:
        i = argv.index("batch")
    except ValueError:
        return argv
    rest = argv[i + 1:]
    if not rest or rest[0] in SUBCOMMANDS or rest[0] in ("-h", "--help"):
        return argv
    if all(w.startswith("-") for w in rest):  # no FILE: let `rattan batch` itself say what is wrong
        return argv
    from ..diagnostics import did_you_mean
    if not os.path.exists(rest[0]) and did_you_mean(rest[0], SUBCOMMANDS):
        return argv  # `batch shwo`: a misspelt subcommand, which argparse names, not a FILE
    return argv[:i + 1] + ["run"] + rest


def _err(text: str) -> None:
    print(f"rattan batch: {text}", file=sys.stderr)


def main(args) -> int:
    if args.batch_command is None:
        _err("give an experiment file: rattan batch EXPERIMENT.yaml (see rattan batch --help)")
        return EXIT_USAGE
    return {"run": cmd_run, "show": cmd_show, "plot": cmd_plot}[args.batch_command](args)


def cmd_run(args) -> int:
    from ..passes.reading import InputError
    from .experiment import ExperimentError, load
    try:
        exp = load(args.experiment, args.database)
    except InputError as e:
        _err(str(e))
        return EXIT_USAGE
    except ExperimentError as e:
        sys.stderr.write(str(e))
        if not str(e).endswith("\n"):
            sys.stderr.write("\n")
        return EXIT_USAGE
    if args.dry_run:
        return _dry_run(exp)
    import signal
    # a SIGINT stops the batch (as Ctrl-C does) also when it was started with SIGINT ignored (by a
    # service manager, `nohup`, a script's `&`), as `rattan run` does: the runs then tear down
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.geteuid() != 0 and args.cluster is None:
        _err("real runs need root (network namespaces): run it with sudo, or --dry-run to list the runs")
        return EXIT_USAGE
    from .runner import make_executor, run_batch
    from .store import StoreError, open_store
    try:
        store = open_store(exp.database)
    except StoreError as e:
        _err(str(e))
        return EXIT_USAGE
    try:
        done = store.done_keys(exp.name)
        executor = None
        if any(j.key not in done for j in exp.jobs()):  # else no executor: only plots and the summary
            try:
                executor = make_executor(exp, cluster=args.cluster, jobs=args.jobs, reuse=not args.no_reuse)
            except Exception as e:  # Ray missing or unreachable: a message, not a traceback
                _err(str(e))
                return EXIT_USAGE
        try:
            summary = run_batch(exp, executor, store, database=exp.database, jobs=args.jobs, retries=args.retries,
                                progress=args.progress, plots=not args.no_plots)
        finally:
            if executor is not None:
                executor.close()
    finally:
        store.close()
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed else EXIT_OK


def _dry_run(exp) -> int:
    from .store import StoreError, open_store
    jobs = exp.jobs()
    done: set = set()
    try:
        store = open_store(exp.database) if "://" in exp.database or os.path.exists(exp.database) else None
    except StoreError:
        store = None
    if store is not None:
        done = store.done_keys(exp.name)
        store.close()
    for j in jobs:
        print(f"{'done' if j.key in done else 'todo'}  {j.key}  {j.label()}")
    n_done = sum(j.key in done for j in jobs)
    sys.stdout.flush()  # the list before the summary line, also when both go to one terminal
    print(f"{exp.name}: {len(jobs)} runs, {n_done} done, {len(jobs) - n_done} to do; results in {exp.database}",
          file=sys.stderr)
    return EXIT_OK


def _open(args):
    """(store, experiment name or None) for show/plot; raises _Usage."""
    from ..passes.reading import InputError
    from .store import StoreError, open_store
    src = args.source
    name = args.experiment
    from .experiment import has_experiment_suffix
    if has_experiment_suffix(src):
        from .experiment import peek
        try:
            file_name, db = peek(src)
        except InputError as e:
            raise _Usage(str(e)) from None
        name = name or file_name
        if "://" not in db and not os.path.exists(db):
            raise _Usage(f"{src}: no results yet ({db} does not exist): run `rattan batch {src}` first")
    else:
        db = src
        if "://" not in db and not os.path.exists(db):
            raise _Usage(f"{db}: no such database file")
    try:
        return open_store(db), name
    except StoreError as e:
        raise _Usage(str(e)) from None


class _Usage(Exception):
    pass


def _where(pairs) -> dict:
    out: dict = {}
    for axis, value in pairs:
        out.setdefault(axis, []).append(value)
    return out


def cmd_show(args) -> int:
    from . import report
    try:
        store, name = _open(args)
    except _Usage as e:
        _err(str(e))
        return EXIT_USAGE
    try:
        runs = report.rows(store, name, where=_where(args.where), status=args.status)
        if args.attempts:
            text = _attempts_text(store, runs, args.format)
        else:
            text = report.render(runs, args.format, args.metrics, order=_sweep_order(args.source))
    except report.ReportError as e:
        _err(str(e))
        return EXIT_USAGE
    finally:
        store.close()
    from ..commands import _write_out
    return _write_out(text, args.output)


def _attempts_text(store, runs, fmt: str) -> str:
    import json
    rows = []
    for r in runs:
        for a in store.attempts(r["experiment"], r["key"]):
            rows.append({"key": r["key"], "params": r["params"], **a})
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str) + "\n"
    if fmt == "csv":
        import csv
        import io
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["key", "attempt", "status", "machine", "started", "ended", "error", "stderr"])
        for a in rows:
            w.writerow([a["key"], a["attempt"], a["status"], a["machine"] or "", a["started"] or "",
                        a["ended"] or "", a["error"] or "", a["stderr"] or ""])
        return out.getvalue()
    lines = []
    for a in rows:
        params = ", ".join(f"{k}={v}" for k, v in a["params"].items() if k not in ("repetition",))
        lines.append(f"{a['key']} attempt {a['attempt']}: {a['status']} on {a['machine'] or '?'}"
                     f" ({params})" + (f": {a['error'].strip()}" if a.get("error") else ""))
        if a.get("stderr"):
            lines += ["  " + x for x in a["stderr"].rstrip().splitlines()[-12:]]
    return "\n".join(lines) + ("\n" if lines else "no runs match\n")


def _sweep_order(source: str) -> dict:
    """The experiment file's sweep (axis -> values, in the file's order), when the source is one."""
    from .experiment import has_experiment_suffix, peek_axes
    return peek_axes(source) if has_experiment_suffix(source) else {}


def cmd_plot(args) -> int:
    from . import report
    try:
        store, name = _open(args)
    except _Usage as e:
        _err(str(e))
        return EXIT_USAGE
    outputs = args.output
    if not outputs:
        base = args.source if "://" not in args.source else (name or "batch")
        stem = os.path.splitext(base)[0] + "-" + args.metric.replace(".", "-")
        outputs = [stem + ".png", stem + ".svg"]
    order = _sweep_order(args.source)
    try:
        written = report.plot(store, name, args.metric, args.x, lines=args.lines, facet=args.facet,
                              facet_rows=args.facet_rows, output=outputs, title=args.title, ylabel=args.ylabel,
                              scale=args.scale, where=_where(args.where), order=order)
    except report.ReportError as e:
        _err(str(e))
        return EXIT_USAGE
    finally:
        store.close()
    for w in written:
        print(w)
    return EXIT_OK

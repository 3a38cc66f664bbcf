"""The implementations of `rattan` subcommands (the parser is in rattan.cli)."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from importlib import resources

from .cli import EXIT_ERRORS, EXIT_OK, EXIT_USAGE


def _err(msg: str) -> None:
    print(f"rattan: {msg}", file=sys.stderr)


def _color(args) -> bool:
    if args.color == "always":
        return True
    if args.color == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stderr.isatty()


MAX_ERRORS_SHOWN = 50  # a file with more is rarely a topology file: 21,567 errors helped nobody


def _diagnostics_text(sources, diags, color: bool = False) -> str:
    """The diagnostics of one file as text, up to its 50th error, then how many more there are.
    Only what is shown is rendered, so a huge wrong file costs no more than its compilation."""
    from .diagnostics import render_text
    errors = 0
    for i, d in enumerate(diags):
        errors += d.is_error
        if errors > MAX_ERRORS_SHOWN:
            break
    else:
        return render_text(sources, diags, color=color)
    rest = diags[i:]
    more = sum(d.is_error for d in rest)
    warnings = len(rest) - more
    name = sources[rest[0].span.source].name if rest[0].span else "the input"
    return (render_text(sources, diags[:i], color=color) + "\n"
            + f"error: ... and {more} more error{'s' * (more != 1)}"
            + (f" and {warnings} warning{'s' * (warnings != 1)}" if warnings else "")
            + f" in {name}; is this a topology file?\n")


def _report(comps, args) -> bool:
    """Print the diagnostics of compilations; True if any has an error (or, with `--strict`, a
    warning: the diagnostics keep their severity, only the verdict changes)."""
    from .diagnostics.render import diagnostics_as_data
    strict = getattr(args, "strict", False)
    errors = False
    if args.format == "json":
        items = []
        for c in comps:
            items.extend(diagnostics_as_data(c.sources, c.diagnostics))
        sys.stdout.write(json.dumps(items, indent=2) + "\n")
    first = True
    for c in comps:
        if args.format == "text" and c.diagnostics:
            if not first:
                sys.stderr.write("\n")  # one blank line between files, as between diagnostics
            sys.stderr.write(_diagnostics_text(c.sources, c.diagnostics, color=_color(args)))
            first = False
        errors |= not c.ok
        errors |= strict and any(d.severity == "warning" for d in c.diagnostics)
    if args.format == "text":
        n_err = sum(1 for c in comps for d in c.diagnostics if d.is_error)
        n_warn = sum(1 for c in comps for d in c.diagnostics if d.severity == "warning")
        if n_err or n_warn:
            parts = [f"{n_err} error{'s' * (n_err != 1)}"] if n_err else []
            parts += [f"{n_warn} warning{'s' * (n_warn != 1)}"] if n_warn else []
            failed = n_err or (strict and n_warn)
            sys.stderr.write(f"{'error' if failed else 'warning'}: {', '.join(parts)} found"
                             + (" (--strict: warnings count as errors)" if strict and n_warn else "") + "\n")
    return errors


def _compile(path: str, args, **kw):
    from .compiler import compile_path
    from .passes import PASS_NAMES
    from .ir.printer import program_text
    from .tools.fmt import format_file
    dump_after = getattr(args, "dump_after", None)
    if dump_after is not None and dump_after not in PASS_NAMES:
        raise _Usage(f"unknown pass `{dump_after}`; passes: {', '.join(PASS_NAMES)}")

    def dump(name, ir):
        if name == dump_after:
            if name == "parse":
                sys.stdout.write(format_file(ir, None))
            else:
                sys.stdout.write(program_text(ir))
    lets = dict(getattr(args, "lets", None) or [])
    if lets:
        from .passes.context import Options
        kw["options"] = dataclasses.replace(kw.get("options") or Options(), lets=lets)
    return compile_path(path, dump=dump if dump_after else None, stop_after=dump_after, **kw)


class _Usage(Exception):
    pass


def cmd_check(args) -> int:
    from .passes.reading import InputError
    if args.dump_after == "list":
        from .passes import PASS_NAMES
        print("\n".join(PASS_NAMES))
        return EXIT_OK
    comps = []
    io_problem = False
    for f in args.files:
        try:
            from .batch.experiment import check as check_experiment, looks_like_experiment
            if looks_like_experiment(f):  # an experiment file of `rattan batch`, checked as such
                comps.append(check_experiment(f))
                continue
            comps.append(_compile(f, args))
        except InputError as e:
            _err(str(e))
            io_problem = True
        except _Usage as e:
            _err(str(e))
            return EXIT_USAGE
    errors = _report(comps, args)
    if io_problem:
        return EXIT_USAGE
    return EXIT_ERRORS if errors else EXIT_OK


def _write_out(text: str, output: str | None) -> int:
    if output in (None, "-"):
        sys.stdout.write(text)
        return EXIT_OK
    try:
        if os.path.exists(output) and not os.path.isfile(output):
            # /dev/null, a FIFO, a terminal: write into it; renaming over it would replace the device itself
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
            return EXIT_OK
        tmp = output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)  # nothing half-written is ever left at a file OUT
    except OSError as e:
        _err(f"cannot write {output}: {e.strerror}")
        return EXIT_USAGE
    return EXIT_OK


def cmd_compile(args) -> int:
    from .passes.context import Options
    from .passes.reading import InputError
    from .plan import build_plan, plan_dot, plan_json
    from .registry import default_registry
    if args.dump_after == "list":
        from .passes import PASS_NAMES
        print("\n".join(PASS_NAMES))
        return EXIT_OK
    opts = Options(optimize=not args.no_optimize, freeze=args.freeze)
    try:
        comp = _compile(args.file, args, options=opts)
    except InputError as e:
        _err(str(e))
        return EXIT_USAGE
    except _Usage as e:
        _err(str(e))
        return EXIT_USAGE
    errors = _report([comp], args)
    if errors:
        return EXIT_ERRORS
    if args.dump_after:
        return EXIT_OK
    plan = build_plan(comp.program, comp.sources, default_registry())
    text = plan_dot(plan) if args.emit == "dot" else plan_json(plan)
    if args.format == "json" and not args.output:
        return EXIT_OK  # stdout carries the diagnostics list
    return _write_out(text, args.output)


def cmd_fmt(args) -> int:
    from .diagnostics import Sink
    from .passes.reading import InputError, read_text
    from .source import SourceMap
    from .syntax.parser import parse
    from .tools.fmt import format_file, rtn_files
    status = EXIT_OK
    unformatted = []
    for path in rtn_files(args.files):
        if not path.endswith(".rtn"):
            _err(f"{path}: only .rtn files are formatted")
            status = EXIT_USAGE
            continue
        try:
            text, bad = read_text(path)
        except InputError as e:
            _err(str(e))
            status = EXIT_USAGE
            continue
        sources = SourceMap()
        src = sources.add(path, text, os.path.abspath(path))
        sink = Sink()
        file = parse(src, sink)
        if bad is not None or sink.has_errors:
            sys.stderr.write(_diagnostics_text(sources, sink.sorted()))
            _err(f"{path}: not formatted: fix the syntax errors first")
            status = max(status, EXIT_ERRORS)
            continue
        out = format_file(file, src)
        if args.stdout:
            sys.stdout.write(out)
        elif out != text:
            if args.check:
                unformatted.append(path)
            else:
                _write_out(out, path)
                print(f"formatted {path}", file=sys.stderr)
    if unformatted:
        for p in unformatted:
            print(f"would reformat {p}", file=sys.stderr)
        status = max(status, EXIT_ERRORS)
    return status


def cmd_cells(args) -> int:
    from .registry import default_registry
    from .tools.cells import describe_cell, describe_record, kinds_text, list_cells, record_kinds
    reg = default_registry()
    if args.type:
        ct = reg.get(args.type)
        rec = record_kinds(reg).get(args.type) if ct is None else None
        if ct is None and rec is None:
            from .diagnostics import did_you_mean
            sugg = did_you_mean(args.type, reg.names() + list(record_kinds(reg)))
            _err(f"no cell type, queue kind or record `{args.type}`"
                 + (f"; did you mean `{sugg}`?" if sugg else "") + "\n"
                 + "".join(f"  {line}\n" for line in kinds_text(reg)).rstrip("\n"))
            return EXIT_USAGE
        if args.json:
            sys.stdout.write(json.dumps((ct or rec).schema, indent=2, sort_keys=True) + "\n")
        else:
            sys.stdout.write(describe_cell(reg, ct) if ct else describe_record(reg, rec))
        return EXIT_OK
    if args.json:
        data = {"cells": {n: reg.get(n).schema for n in reg.names()}, "queues": reg.queues}
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(list_cells(reg))
    for p in reg.problems:
        _err(f"warning: {p}")
    return EXIT_OK


def cmd_new_cell(args) -> int:
    from .tools.new_cell import NewCellError, new_cell
    try:
        dest = new_cell(args.name, args.lang, args.dir)
    except NewCellError as e:
        _err(str(e))
        return EXIT_USAGE
    except OSError as e:
        _err(f"cannot write {e.filename}: {e.strerror}")
        return EXIT_USAGE
    shown = dest if dest.is_absolute() else os.path.join(".", dest)  # pip reads a bare word as a name
    print(f"wrote {shown}/: the `{args.name}` cell ({'C' if args.lang == 'c' else 'Python'}). Next:\n"
          f"  pip install {shown}{'   (compiles it; needs a C compiler)' if args.lang == 'c' else ''}\n"
          f"  rattan cells {args.name}\n"
          f"  pytest {shown}/tests")
    return EXIT_OK


def cmd_include_dir(args) -> int:
    from .tools.new_cell import NewCellError, include_dir
    try:
        print(include_dir())
    except NewCellError as e:
        _err(str(e))
        return EXIT_USAGE
    return EXIT_OK


def cmd_schema(args) -> int:
    name = "plan.schema.json" if args.plan else "document.schema.json"
    shipped = resources.files("rattan.schemas").joinpath(name)
    if args.path:
        # a real file inside the installed package (rattan.schemas ships as a folder, never zipped)
        print(os.path.abspath(str(shipped)))
        return EXIT_OK
    return _write_out(shipped.read_text(encoding="utf-8"), args.output)


def cmd_convert(args) -> int:
    from .tools.convert import convert_path
    from .passes.reading import InputError
    try:
        text, sources, diags = convert_path(args.file, args.output)
    except InputError as e:
        _err(str(e))
        return EXIT_USAGE
    if diags:
        sys.stderr.write(_diagnostics_text(sources, diags))
    if text is None:
        return EXIT_ERRORS
    return _write_out(text, args.output)


def _plan_of(path: str, lets: list[tuple[str, str]] | None = None):
    """The plan `sim` and `run` execute: FILE compiled (with `--let`s), or a compiled plan (`.json`)
    read and checked against the plan schema and the cells' schemas; else the exit code after
    saying why not."""
    from .plan import build_plan
    from .plan.load import PlanError, is_plan_file, read_plan
    from .registry import default_registry
    if is_plan_file(path):
        if lets:
            _err(f"--let sets a `let` of a topology; {path} is a compiled plan, whose lets are already "
                 "evaluated: give the topology file")
            return EXIT_USAGE
        try:
            return read_plan(path, default_registry())
        except PlanError as e:
            _err(str(e))
            return EXIT_USAGE
    comp = _compiled(path, lets)
    return comp if isinstance(comp, int) else build_plan(comp.program, comp.sources, default_registry())


def _compiled(path: str, lets: list[tuple[str, str]] | None = None):
    """Compile FILE for `sim` and `run`: the compilation, or the exit code after reporting why not."""
    from .compiler import compile_path
    from .passes.context import Options
    from .passes.reading import InputError
    try:
        comp = compile_path(path, options=Options(lets=dict(lets or [])))
    except InputError as e:
        _err(str(e))
        return EXIT_USAGE
    if comp.diagnostics:
        sys.stderr.write(_diagnostics_text(comp.sources, comp.diagnostics, color=sys.stderr.isatty()))
    return comp if comp.ok else EXIT_ERRORS


def _without_packet_log(args) -> int | None:
    """A usage error for packet-log flags given without --packet-log (they would change nothing)."""
    given = [f for f, v in (("--log-cells", args.log_cells), ("--packet-log-snaplen", args.packet_log_snaplen))
             if v]
    if given and not args.packet_log:
        _err(f"{' and '.join(given)} {'shapes' if len(given) == 1 else 'shape'} the packet log: give --packet-log PATH too")
        return EXIT_USAGE
    return None


def cmd_sim(args) -> int:
    from .library import SimError, sim
    if (refused := _without_packet_log(args)) is not None:
        return refused
    plan = _plan_of(args.file, args.lets)
    if isinstance(plan, int):
        return plan
    if (refused := _refuse_flows(args.flow, plan, args.channel)) is not None:
        return refused
    progress = _sim_progress() if sys.stderr.isatty() else None
    try:
        announce = lambda url: _err(f"control API on {url} (described at /openapi.json)")  # noqa: E731
        result = sim(plan, args.flow, args.duration, args.seed, channel=args.channel, progress=progress,
                     http=args.http, announce=announce, interval=args.interval,
                     packet_log=args.packet_log, log_cells=args.log_cells, samples=args.samples,
                     packet_log_snaplen=args.packet_log_snaplen, cores=args.cores)
    except SimError as e:  # a bad flag or channel choice, an address, an engine that refuses
        _err(str(e))
        return EXIT_USAGE
    for w in result.warnings:  # misrouted packets: in the JSON too, and worth a look in any mode
        _err(f"warning: {w}")
    if args.json:
        sys.stdout.write(result.json())
    else:
        sys.stdout.write(_sim_table(result.document))
    return EXIT_OK


def _refuse_flows(flows: list[str], plan: dict, channel: str | None) -> int | None:
    """EXIT_USAGE after saying what is wrong with `sim`'s flows as the shell passed them (none, or
    a `->` the shell took for a redirection), with an example made of the channel's own endpoints."""
    from .runtime.channel import ChannelError, choose_channel
    try:
        eps = choose_channel(plan, channel)["endpoints"]
    except ChannelError:
        return None  # `sim` says which channel to choose
    example = f"{eps[0]}->{eps[1]}:cbr:10Mbps" if len(eps) > 1 else "left->right:cbr:10Mbps"
    if not flows:
        _err(f"give at least one --flow SRC->DST:KIND:RATE, e.g. --flow '{example}' "
             f"(the endpoints: {', '.join(eps)})")
        return EXIT_USAGE
    for f in flows:
        if f.endswith("-") and ">" not in f:  # `--flow a->b:cbr:1Mbps` unquoted: the shell wrote file `b:cbr:1Mbps`
            _err(f"--flow `{f}`: the shell took the `>` of `->` for a redirection (and wrote what followed it "
                 f"to a file); quote the flow: --flow '{f}>DST:KIND:RATE', e.g. --flow '{example}'")
            return EXIT_USAGE
    return None


def cmd_link(args) -> int:
    from .compiler import compile_text
    from .diagnostics import render_text
    from .runtime.link import LinkFlagError, link_source, shell_command
    if (refused := _without_packet_log(args)) is not None:
        return refused
    warnings: list[str] = []
    try:
        text = link_source(args, warnings)
        http = _link_http(args, warnings)
    except LinkFlagError as e:
        _err(f"link: {e}")
        return EXIT_USAGE
    ignored = [f for f, on in (("--left-stdout", args.left_stdout), ("--right-stdout", args.right_stdout),
                               ("--left-stderr", args.left_stderr), ("--right-stderr", args.right_stderr))
               if on]
    if ignored:  # src/main.rs warns the same for a Compatible-mode link
        warnings.append(f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} for upstream's isolated "
                        f"mode only and thus ignored")
    for flag, on, why in (("--no-nat", args.no_nat, "rattan's link has no NAT to disable"),
                          ("--file-log", args.file_log or args.file_log_path, "rattan keeps no core log file")):
        if on:
            warnings.append(f"{flag} changes nothing: {why}")
    for w in warnings:
        _err(f"warning: {w}")
    if args.generate_path and not args.generate:
        _err("link: --generate-path needs --generate (as upstream)")
        return EXIT_USAGE
    if args.print or args.generate:
        if args.generate_path:
            with open(args.generate_path, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return EXIT_OK
    comp = compile_text(text, "<rattan link>.rtn", path=os.path.join(os.getcwd(), "link.rtn"))
    if comp.diagnostics:
        sys.stderr.write(render_text(comp.sources, comp.diagnostics, color=sys.stderr.isatty()))
    if not comp.ok:
        return EXIT_ERRORS
    from .plan import build_plan
    from .registry import default_registry
    plan = build_plan(comp.program, comp.sources, default_registry())
    plan["run"]["upstream_variables"] = True  # RATTAN_BASE etc., as upstream's link gives its commands
    if args.offload:
        plan["run"]["offload"] = args.offload
    cmd = args.cmd or shell_command(args) or []
    return _run_plan(plan, cmd, args.right, args.seed, http=http, packet_log=args.packet_log,
                     log_cells=args.log_cells, packet_log_snaplen=args.packet_log_snaplen,
                     engine_nice=args.engine_nice, precise=args.precise, app_cpus=args.app_cpus,
                     rps_cpus=args.rps_cpus, cores=args.cores, split=args.split)


def _link_http(args, warnings: list[str]) -> str | None:
    """The control API's address: `--http ADDR` (ours), or upstream's bare `--http [-p PORT]`."""
    from .runtime.link import LinkFlagError
    if args.combined_trace or args.combined_trace_path:
        raise LinkFlagError("--combined-trace (upstream's CSV of the combined traces) is not supported")
    if args.http is None:
        if args.port is not None:
            warnings.append(f"-p {args.port} changes nothing without --http (as upstream for a link)")
        return None
    if args.http and args.port is not None:
        raise LinkFlagError(f"--http {args.http} and -p {args.port} both give the API's address: give one")
    if args.port is not None and not 0 < args.port <= 65535:
        raise LinkFlagError(f"-p {args.port}: a port is 1 to 65535")
    return args.http or f"127.0.0.1:{8086 if args.port is None else args.port}"


def cmd_run(args) -> int:
    from .runtime.link import LinkFlagError
    warnings: list[str] = []
    try:
        path, cmd, right = _run_words(args, warnings)
    except LinkFlagError as e:
        _err(f"run: {e}")
        return EXIT_USAGE
    if args.generate_path and not args.generate:
        _err("run: --generate-path needs --generate (as upstream)")
        return EXIT_USAGE
    if args.generate:
        for w in warnings:
            _err(f"warning: {w}")
        return _run_generate(args, path)
    plan = _plan_of(path, args.lets)
    if isinstance(plan, int):
        return plan
    if args.offload:
        plan.setdefault("run", {})["offload"] = args.offload
    try:
        http = _run_http(args, plan, warnings)
    except LinkFlagError as e:
        _err(f"run: {e}")
        return EXIT_USAGE
    for w in warnings:
        _err(f"warning: {w}")
    # an upstream document's `[general] packet_log` is a packet log the flags can shape
    if not ((plan.get("run") or {}).get("general") or {}).get("packet_log"):
        if (refused := _without_packet_log(args)) is not None:
            return refused
    return _run_plan(plan, cmd, right, args.seed, args.channel, args.all, args.instances,
                     args.late_threshold, http, args.packet_log, args.log_cells, args.quiet,
                     args.engine_nice, args.packet_log_snaplen, app_cpus=args.app_cpus, rps_cpus=args.rps_cpus,
                     precise=args.precise, cores=args.cores, split=args.split)


def _run_words(args, warnings: list[str]) -> tuple[str, list[str], str | None]:
    """FILE, the main command and the right one (a shell command) of `rattan run`, from our syntax
    (`rattan run FILE [--right 'CMD'] -- CMD ARGS...`) or upstream's (`rattan run -c FILE [--left
    ARGS...] [--right ARGS...]`, src/main.rs RunArgs). `--left`/`--right` take every word up to the
    next option, as upstream's `num_args = 0..`: without -c, a FILE written after them is their last
    word. Upstream's global flags that change nothing here are warnings; --combined-trace an error."""
    import shlex
    from .runtime.link import LinkFlagError
    left, right, path = list(args.left or []), list(args.right or []), args.file
    if path is None and args.config is None:
        for words in (right, left) if _last_of(args, "--right", "--left") == "--right" else (left, right):
            if len(words) > 1:
                path = words.pop()
                break
    if args.config is not None:
        if path is not None:
            raise LinkFlagError(f"FILE ({path}) and -c {args.config} both give the file: give one")
        path = args.config
    if path is None:
        raise LinkFlagError("no file: give FILE or -c FILE (upstream's spelling), e.g. rattan run -c config.toml")
    if left and args.cmd:
        raise LinkFlagError("--left and `-- CMD` both give the command: give one")
    cmd = left or list(args.cmd)
    if args.combined_trace or args.combined_trace_path:
        raise LinkFlagError("--combined-trace (upstream's CSV of the combined traces) is not supported")
    ignored = [f for f, on in (("--left-stdout", args.left_stdout), ("--right-stdout", args.right_stdout),
                               ("--left-stderr", args.left_stderr), ("--right-stderr", args.right_stderr))
               if on]
    if ignored:
        warnings.append(f"{', '.join(ignored)} {'changes' if len(ignored) == 1 else 'change'} nothing: the "
                        "commands' output always reaches the terminal here (upstream discards it in Isolated "
                        "mode without them)")
    if args.file_log or args.file_log_path:
        warnings.append("--file-log changes nothing: rattan keeps no core log file")
    # one word is a shell command (ours, `--right 'iperf3 -s'`); several are upstream's argument list,
    # which `sh -c` runs unchanged when quoted word by word
    return path, cmd, (None if not right else right[0] if len(right) == 1 else shlex.join(right))


def _last_of(args, *flags: str) -> str | None:
    """Which of `flags` comes last on the command line (the one a trailing FILE was written after)."""
    argv = getattr(args, "argv", None) or []
    at = {f: max((i for i, w in enumerate(argv) if w == f), default=-1) for f in flags}
    best = max(at, key=at.get)
    return best if at[best] >= 0 else None


def _run_http(args, plan: dict, warnings: list[str]) -> str | None:
    """The control API's address of `rattan run`: `--http ADDR` (ours), or upstream's flags, which
    overwrite the file's `[http]` (src/main.rs): a bare `--http` enables it, `-p PORT` sets its port."""
    from .runtime.link import LinkFlagError
    web = (plan.get("run") or {}).get("http") or {}
    if args.port is not None and not 0 < args.port <= 65535:
        raise LinkFlagError(f"-p {args.port}: a port is 1 to 65535")
    if args.http is None and args.port is not None:
        if web.get("enable"):
            return f"127.0.0.1:{args.port}"
        warnings.append(f"-p {args.port} changes nothing: the control API is off (add --http, or "
                        "`[http] enable = true` in the file, as upstream)")
        return None
    if args.http == "" and args.port is None and web.get("port") is not None:
        return f"127.0.0.1:{web['port']}"
    return _link_http(args, warnings)


def _run_generate(args, path: str) -> int:
    """Upstream's `--generate` prints the config it would run; here the .rtn of an upstream document
    (`rattan convert`), which the command-line flags do not change."""
    from types import SimpleNamespace
    from .plan.load import is_plan_file
    if path.endswith(".rtn") or is_plan_file(path):
        _err(f"run: --generate writes the .rtn of an upstream TOML/YAML document; {path} is not one")
        return EXIT_USAGE
    given = [f for f, on in (("--left", args.left), ("--right", args.right), ("--http", args.http is not None),
                             ("-p", args.port is not None), ("--packet-log", args.packet_log), ("-- CMD", args.cmd))
             if on]
    if given:
        _err(f"warning: {', '.join(given)} {'is' if len(given) == 1 else 'are'} not written into the .rtn "
             "(upstream writes them into its TOML): give them to `rattan run`")
    return cmd_convert(SimpleNamespace(file=path, output=args.generate_path))


def _run_plan(plan, cmd, right, seed, channels=None, every=False, instances=1, late_threshold="1ms",
              http=None, packet_log=None, log_cells=None, quiet=False, engine_nice=None,
              packet_log_snaplen=0, app_cpus=None, rps_cpus=None, precise=False,
              cores=None, split=False) -> int:
    """`rattan run` and `rattan link` once the plan is in hand: the run, with errors as messages."""
    from .engine import EngineError
    from .control import AddressError
    from .runtime.packet_log import LogError
    from .runtime.netns import NetnsError
    from .runtime.channel import ChannelError
    from .runtime.run import RunError, run
    try:
        return run(plan, channels, cmd, right, seed, every=every, instances=instances,
                   late_threshold=late_threshold, http=http, packet_log=packet_log, log_cells=log_cells,
                   packet_log_snaplen=packet_log_snaplen, precise=precise, cores=cores, split=split,
                   quiet=quiet, **({} if engine_nice is None else {"engine_nice": engine_nice}),
                   **({} if app_cpus is None else {"app_cpus": app_cpus}),
                   **({} if rps_cpus is None else {"rps_cpus": rps_cpus}))
    except (ChannelError, RunError, AddressError, LogError) as e:
        _err(str(e))
        return EXIT_USAGE
    except (EngineError, NetnsError) as e:
        _err(f"cannot run: {e}")
        return EXIT_USAGE


def _sim_progress():
    """A progress line on the terminal for runs longer than half a second of wall time."""
    import time
    start = time.monotonic()

    def show(t_ns: int, dur_ns: int) -> None:
        if time.monotonic() - start < 0.5:
            return
        end = "\n" if t_ns >= dur_ns else ""
        sys.stderr.write(f"\r\x1b[Ksimulating: {t_ns / 1e9:.1f} s of {dur_ns / 1e9:g} s virtual time "
                         f"({100 * t_ns // dur_ns}%){end}")
        sys.stderr.flush()
    return show


def _sim_table(r: dict) -> str:
    """The result for a person: one line per flow and per cell."""
    lines = [f"channel {r['channel']}, {r['duration_s']:g} s of virtual time, seed {r['seed']}", "",
             f"{'flow':<24} {'sent':>9} {'received':>9} {'missing':>7} {'throughput':>14} "
             f"{'delay p50':>10} {'p99':>10}"]
    for f in r["flows"]:
        loss = 1 - f["received_packets"] / f["sent_packets"] if f["sent_packets"] else 0.0
        name = f"{f['src']}->{f['dst']} {f['kind']}"
        lines.append(f"{name:<24} {f['sent_packets']:>9} {f['received_packets']:>9} {loss:>7.2%} "
                     f"{f['throughput_bps'] / 1e6:>9.3f} Mbps {f['delay_ms']['p50']:>7.3f} ms "
                     f"{f['delay_ms']['p99']:>7.3f} ms")
    lines += ["", f"{'cell':<24} {'in':>9} {'out':>9} {'dropped':>9} {'queued':>8}"]
    for name, c in r["cells"].items():
        lines.append(f"{name:<24} {c['in_packets']:>9} {c['out_packets']:>9} {c['dropped_packets']:>9} "
                     f"{c['queued_packets']:>8}")
    return "\n".join(lines) + "\n"


def cmd_ctl(args) -> int:
    from .control import AddressError, Client, ControlError
    address = args.http or os.environ.get("RATTAN_CONTROL")
    if not address:
        _err("no API address: give --http ADDR (as given to `rattan run --http`), or set RATTAN_CONTROL")
        return EXIT_USAGE
    if not args.action:
        _err("say what to do: state, cells, get CELL, telemetry CELL, set CELL PARAM=VALUE..., openapi")
        return EXIT_USAGE
    try:
        client = Client(address)
        if args.action in ("state", "cells", "openapi"):
            doc = getattr(client, args.action)()
        else:
            channel, cell = _ctl_cell(client, args.cell)
            if args.action == "get":
                doc = client.get(channel, cell, args.instance)
            elif args.action == "telemetry":
                doc = client.telemetry(channel, cell, args.instance)
            else:
                values = {}
                for item in args.values:
                    key, eq, value = item.partition("=")
                    if not eq or not key:
                        _err(f"`{item}`: write PARAM=VALUE, e.g. rate=5Mbps")
                        return EXIT_USAGE
                    values[key] = _ctl_value(value)
                doc = client.set(channel, cell, args.instance, at=args.at, **values)
    except AddressError as e:
        _err(str(e))
        return EXIT_USAGE
    except ControlError as e:
        _err(str(e))
        return EXIT_ERRORS
    except OSError as e:
        _err(f"cannot reach the control API at {address}: {e.strerror or e}")
        return EXIT_USAGE
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return EXIT_OK


def _ctl_cell(client, name: str) -> tuple[str, str]:
    """CHANNEL/CELL, or CELL when exactly one channel of the run has it."""
    from .control import ControlError
    if "/" in name:
        channel, _, cell = name.partition("/")
        return channel, cell
    owners = sorted({c["channel"] for c in client.cells() if c["name"] == name})
    if len(owners) == 1:
        return owners[0], name
    if not owners:
        raise ControlError(404, {"error": f"no cell `{name}` in this run; `rattan ctl cells` lists them",
                                 "errors": []})
    raise ControlError(422, {"error": f"`{name}` is in channels {', '.join(owners)}: write CHANNEL/{name}",
                             "errors": []})


def _ctl_value(text: str):
    """A number stays a number (base units); anything else goes as written (10Mbps, down)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def cmd_plot(args) -> int:
    from .runtime.packet_log import LogError
    from .tools.plot import PlotError, default_outputs, load, plot
    outputs = args.output or default_outputs(args.file)
    for out in outputs:
        if os.path.splitext(out)[1].lower() not in (".png", ".svg", ".pdf"):
            _err(f"-o {out}: write .png, .svg or .pdf")
            return EXIT_USAGE
    try:
        figure = load(args.file, args.interval)
        for out in plot(figure, outputs):
            print(out)
    except (PlotError, LogError) as e:
        _err(str(e))
        return EXIT_USAGE
    except OSError as e:
        _err(f"cannot write the plot: {e.strerror}")
        return EXIT_USAGE
    return EXIT_OK


def cmd_log(args) -> int:
    from .runtime import packet_log as plog
    # each flag shapes one kind of output: given with another, it would change nothing
    for flag, value, modes in (("--event", args.event, ("pcap",)), ("--snaplen", args.snaplen, ("pcap",)),
                               ("--json", args.json, (None,))):
        if value not in (None, False) and args.to not in modes:
            where = " or ".join(f"--to {m}" if m else "the summary (without --to)" for m in modes)
            _err(f"{flag} applies to {where} only")
            return EXIT_USAGE
    try:
        if args.to:
            out = args.output or os.path.splitext(args.file)[0] + "." + args.to
            if args.to == "csv":
                n = plog.to_csv(args.file, out, args.cell)
            else:
                n = plog.to_pcap(args.file, out, args.cell, args.event or "depart", args.snaplen)
            _err(f"{n} records written to {out}")
            return EXIT_OK
        rows = plog.summary(args.file, args.cell)
    except plog.LogError as e:
        _err(str(e))
        return EXIT_USAGE
    except OSError as e:
        _err(f"cannot write {e.filename or 'the output'}: {e.strerror}")
        return EXIT_USAGE
    if args.json:
        return _write_output(json.dumps(rows, indent=2) + "\n", args.output)
    head = f"{'cell':<20} {'arrived':>10} {'departed':>10} {'dropped':>9} {'time in cell p50':>17} {'p99':>10}  drops"
    lines = [head]
    for r in rows:
        name = r["cell"] if r["instance"] == r["channel"] else f"{r['instance']}/{r['cell']}"
        why = ", ".join(f"{k} {v}" for k, v in r["dropped_by_reason"].items())
        lines.append(f"{name:<20} {r['arrived']:>10} {r['departed']:>10} {r['dropped']:>9} "
                     f"{r['sojourn_ms']['p50']:>14.3f} ms {r['sojourn_ms']['p99']:>7.3f} ms  {why}")
    return _write_output("\n".join(lines) + "\n", args.output)


def _write_output(text: str, path: str | None) -> int:
    """Print `text`, or write it to `path` (-o)."""
    if path is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        _err(f"cannot write {path}: {e.strerror}")
        return EXIT_USAGE
    return EXIT_OK


def cmd_lsp(args) -> int:
    from .tools.lsp.server import main
    return main()


def cmd_batch(args) -> int:
    from .batch.cli import main
    return main(args)

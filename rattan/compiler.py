"""The compiler driver: front end, then the passes of rattan.passes, then the plan."""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .diagnostics import Diagnostic, Sink
from .ir.names import NameIndex
from .ir.nodes import Program, Unit
from .passes import CHECKS, LOWERINGS, OPTIMIZATIONS
from .passes.context import Context, Options
from .passes.reading import read_text, report_encoding
from .registry import Registry, default_registry
from .source import Source, SourceMap

FRONT_ENDS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}


@dataclass
class Compilation:
    """Everything one compilation produced: sources, diagnostics, the final IR."""
    sources: SourceMap
    diagnostics: list[Diagnostic]
    program: Program | None
    entry: Source | None
    snapshots: dict[str, Program] = field(default_factory=dict)
    names: NameIndex | None = None  # every definition and use the passes resolved

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def front_end(src: Source) -> str:
    """Which front end reads a source: "rtn", "toml" or "yaml".

    By extension; a file with another extension than `.rtn` is read as TOML when
    it parses as a non-empty TOML table, as upstream's `rattan run -c FILE` reads
    any file as TOML.
    """
    ext = os.path.splitext(src.name)[1].lower()
    if ext in FRONT_ENDS:
        return FRONT_ENDS[ext]
    if ext != ".rtn" and src.text.strip():
        try:
            import tomllib
            if tomllib.loads(src.text):
                return "toml"
        except (ValueError, RecursionError):
            pass
    return "rtn"


def parse_source(src: Source, sink: Sink):
    """The AST of one source, by its front end (`.rtn`, TOML or YAML)."""
    kind = front_end(src)
    if kind != "rtn":
        from .frontends.upstream import load_document
        return dataclasses.replace(load_document(src, sink, kind), format=kind)
    from .syntax.parser import parse
    return parse(src, sink)


@contextlib.contextmanager
def _no_cyclic_gc():
    """Pause the cyclic garbage collector: compiling allocates many small acyclic objects,
    and collections triggered by them cost a third of the time for large files."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def compile_source(src: Source, sources: SourceMap, **kw) -> Compilation:
    """Run the front end and every pass on an already loaded source."""
    with _no_cyclic_gc():
        return _compile_source(src, sources, **kw)


def _compile_source(src: Source, sources: SourceMap, *, options: Options | None = None,
                   registry: Registry | None = None, dump: Callable[[str, Any], None] | None = None,
                   stop_after: str | None = None, bad_offset: int | None = None) -> Compilation:
    sink = Sink()
    ctx = Context(sources, sink, registry or default_registry(), options or Options())
    report_encoding(ctx, src, bad_offset)
    file = parse_source(src, sink)
    if dump:
        dump("parse", file)
    prog = Program(units=(Unit(src.path, file, ()),))
    comp = Compilation(sources, [], None, src, names=ctx.names)
    if stop_after == "parse":
        comp.diagnostics = sink.sorted()
        return comp
    # Checks always run, so one compilation reports every error it can; optimizations
    # only run on a program without errors.
    prog, stopped = _run(CHECKS, prog, ctx, dump, stop_after)
    if not stopped and not sink.has_errors and ctx.options.optimize:
        prog, stopped = _run(OPTIMIZATIONS, prog, ctx, dump, stop_after)
    if not stopped and not sink.has_errors:
        prog, _ = _run(LOWERINGS, prog, ctx, dump, stop_after)
    comp.program = prog
    comp.diagnostics = sink.sorted()
    return comp


def _run(passes, prog: Program, ctx: Context, dump, stop_after: str | None) -> tuple[Program, bool]:
    """Apply passes in order; (result, True) if `stop_after` named one of them."""
    for p in passes:
        prog = p(prog, ctx)
        if dump:
            dump(p.__name__, prog)
        if stop_after == p.__name__:
            return prog, True
    return prog, False


def compile_path(path: str, **kw) -> Compilation:
    """Compile a file on disk. Raises InputError when the file itself cannot be read."""
    text, bad = read_text(path)
    sources = SourceMap()
    src = sources.add(path, text, os.path.abspath(path))
    return compile_source(src, sources, bad_offset=bad, **kw)


def compile_text(text: str, name: str = "<input>.rtn", *, path: str | None = None, **kw) -> Compilation:
    """Compile a string (tests, the language server)."""
    sources = SourceMap()
    src = sources.add(name, text, os.path.abspath(path) if path else None)
    return compile_source(src, sources, **kw)

"""An experiment file of `rattan batch`: read, validated (its JSON Schema, then what a schema cannot
say), and expanded into the runs of its sweep.

Diagnostics are data, as for topologies: each has a code (RTX001...), a message, the span of the
YAML/JSON node it is about, and help; `ExperimentError` carries them with the rendered text.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from ..diagnostics import Diagnostic, did_you_mean
from ..diagnostics.diagnostic import Label
from ..source import SourceMap, Span

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RETRIES = 1
# axes every run has, besides the file's own sweep axes
BUILT_IN_AXES = ("topology", "seed", "repetition")
PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")  # `${VAR}` is the shell's

# The codes of experiment-file diagnostics (docs/batch.md lists them).
CODES = {
    "RTX001": "malformed YAML or JSON",
    "RTX002": "not what the experiment schema allows",
    "RTX003": "unknown placeholder in a command",
    "RTX004": "a `lets` entry names no sweep axis",
    "RTX005": "topology file not found",
    "RTX006": "the topology does not compile with the sweep's values",
    "RTX007": "no such endpoint in the channel",
    "RTX008": "bad duration",
    "RTX009": "unknown extractor",
    "RTX010": "a plot names an unknown axis",
    "RTX011": "no topology",
    "RTX012": "a cell to collect is not in the channel",
}


class ExperimentError(Exception):
    """An experiment file that cannot run; `.diagnostics` (library Diagnostics) and the text."""

    def __init__(self, text: str, diagnostics: list) -> None:
        super().__init__(text)
        self.diagnostics = diagnostics


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of experiment files (shipped as rattan/schemas/experiment.schema.json)."""
    return json.loads(resources.files("rattan.schemas").joinpath("experiment.schema.json").read_text())


@dataclass(frozen=True)
class Step:
    """One command of the workload, placeholders not yet filled."""
    endpoint: str
    command: str | list[str]
    name: str
    background: bool = False
    extract: str | None = None


@dataclass
class Experiment:
    """A validated experiment file."""
    path: str                       # absolute
    name: str
    topology: str | None            # as written (relative to the file), or None: the `topology` axis
    channel: str | None
    axes: dict[str, list]           # the sweep, in file order (without seed and repetition)
    lets: dict[str, str]            # let name -> template
    seeds: list[int]
    repetitions: int
    workload: list[Step]
    telemetry: list[str]
    packet_log: bool
    resources: dict
    timeout_s: float
    retries: int
    database: str                   # a URL or an absolute path
    plots: list[dict] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return os.path.dirname(self.path)

    def topology_path(self, value: str) -> str:
        return os.path.normpath(os.path.join(self.folder, value))

    def combinations(self):
        """Every (axis values) of the sweep, in order: the first axis varies slowest."""
        names = list(self.axes)
        for values in itertools.product(*(self.axes[n] for n in names)):
            yield dict(zip(names, values))

    def jobs(self) -> list:
        """The runs of the sweep: every combination x seed x repetition (see rattan.batch.job)."""
        from .job import Job
        out = []
        for combo in self.combinations():
            for seed in self.seeds:
                for rep in range(self.repetitions):
                    params = {**combo, "seed": seed, "repetition": rep}
                    topo = combo.get("topology", self.topology)
                    params.setdefault("topology", topo)
                    lets = {name: fill(t, params) for name, t in self.lets.items()}
                    workload = [{"endpoint": s.endpoint, "name": s.name, "background": s.background,
                                 "extract": s.extract, "command": fill_command(s.command, params)}
                                for s in self.workload]
                    out.append(Job(experiment=self.name, key=run_key(params), topology=self.topology_path(topo),
                                   channel=self.channel, params=params, lets=lets, seed=seed, repetition=rep,
                                   workload=workload, telemetry=list(self.telemetry),
                                   timeout_s=self.timeout_s, resources=dict(self.resources),
                                   packet_log_dir=self.packet_log_dir() if self.packet_log else None))
        return out

    def packet_log_dir(self) -> str:
        base = self.database if "://" not in self.database else self.path
        return os.path.splitext(base)[0] + "-packet-logs"


def run_key(params: dict) -> str:
    """The resume key of a run: its parameters (topology, axes, seed, repetition), hashed."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def fill(template: str, params: dict) -> str:
    return PLACEHOLDER.sub(lambda m: _text(params[m.group(1)]), template)


def fill_command(command, params: dict):
    return [fill(w, params) for w in command] if isinstance(command, list) else fill(command, params)


# -- reading, with spans

class _Located:
    """The YAML/JSON document as plain values, and the span of every node by its path."""

    def __init__(self, src) -> None:
        import yaml
        self.src = src
        self.spans: dict[tuple, Span] = {}
        self.key_spans: dict[tuple, Span] = {}
        node = yaml.compose(src.text, Loader=yaml.SafeLoader)
        self.value = self._walk(node, ()) if node is not None else None

    def _span(self, node) -> Span:
        return Span(self.src.id, node.start_mark.index, max(node.end_mark.index, node.start_mark.index + 1))

    def _walk(self, node, path: tuple):
        import yaml
        self.spans[path] = self._span(node)
        if isinstance(node, yaml.MappingNode):
            out = {}
            for k, v in node.value:
                key = yaml.safe_load(yaml.serialize(k)) if not isinstance(k, yaml.ScalarNode) else \
                    yaml.SafeLoader.construct_scalar(yaml.SafeLoader(""), k)
                key = str(key)
                self.key_spans[path + (key,)] = self._span(k)
                out[key] = self._walk(v, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._walk(v, path + (i,)) for i, v in enumerate(node.value)]
        return yaml.safe_load(yaml.serialize(node))

    def within(self, path, needle: str) -> Span:
        """The span of `needle` inside the node at `path` (the whole node if it is not there)."""
        span = self.at(path)
        found = self.src.text.find(needle, span.start, span.end)
        return span if found < 0 else Span(span.source, found, found + len(needle))

    def at(self, path, key: bool = False) -> Span:
        path = tuple(path)
        while path:
            table = self.key_spans if key else self.spans
            if path in table:
                return table[path]
            path = path[:-1]
        return self.spans.get((), Span(self.src.id, 0, max(1, len(self.src.text))))


class _Findings:
    def __init__(self, doc: _Located) -> None:
        self.doc, self.items = doc, []

    def error(self, code: str, message: str, path=(), help=(), key: bool = False, span: Span | None = None):
        if isinstance(help, str):
            help = (help,)
        self.items.append(Diagnostic(code, message, span or self.doc.at(path, key), "error", (),
                                     tuple(h for h in help if h), None))


def _schema_message(err) -> tuple[str, list[str], bool]:
    """A friendly message for one jsonschema error: (message, help, about the key)."""
    where = "/".join(str(p) for p in err.absolute_path) or "the file"
    if err.validator == "additionalProperties":
        allowed = list((err.schema.get("properties") or {}))
        extra = [k for k in err.instance if k not in allowed] if isinstance(err.instance, dict) else []
        key = extra[0] if extra else "?"
        guess = did_you_mean(key, allowed)
        helps = [f"did you mean `{guess}`?"] if guess else []
        helps.append("allowed here: " + ", ".join(allowed))
        return f"unknown key `{key}`", helps, True
    if err.validator == "required":
        return f"{where}: {err.message.replace(' is a required property', '')} is missing", [], False
    if err.validator == "enum":
        return (f"{where}: {json.dumps(err.instance)} is not one of "
                f"{', '.join(json.dumps(v) for v in err.validator_value)}"), [], False
    if err.validator in ("type", "oneOf", "anyOf"):
        want = err.schema.get("description") or err.message
        helps = [want] if want != err.message else []
        if isinstance(err.instance, str) and "number" in str(err.schema.get("type")) and _number_text(err.instance):
            helps.append(f"YAML reads `{err.instance}` as text (YAML 1.1 wants a dot in a float): write "
                         f"{float(err.instance)!r}")
        return f"{where}: {json.dumps(err.instance)[:60]} is not {_kind(err.schema)}", helps, False
    if err.validator == "uniqueItems":
        twice = _repeated(err.instance)
        return (f"{where}: {json.dumps(err.instance[twice])} is given twice",
                ["each value is one run (one key) per seed and repetition: for more runs, give `repetitions`"], False)
    if err.validator in ("minItems", "minimum", "exclusiveMinimum", "pattern", "minLength"):
        hint = err.schema.get("description")
        return f"{where}: {err.message}", [hint] if hint else [], False
    return f"{where}: {err.message}", [], False


def _number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _repeated(items: list) -> int:
    """The index of the first item equal to an earlier one (as JSON Schema's uniqueItems compares)."""
    seen = []
    for i, v in enumerate(items):
        if any(v == w and isinstance(v, bool) == isinstance(w, bool) for w in seen):
            return i
        seen.append(v)
    return 0


def _kind(sch: dict) -> str:
    if "type" in sch:
        t = sch["type"]
        names = {"string": "a string", "integer": "an integer", "number": "a number", "array": "a list",
                 "object": "a mapping", "boolean": "true or false"}
        return " or ".join(names.get(x, x) for x in (t if isinstance(t, list) else [t]))
    alts = sch.get("oneOf") or sch.get("anyOf") or []
    return " or ".join(_kind(a) for a in alts) or "allowed here"


def _duration(text, what: str, f: _Findings, path) -> float | None:
    from ..units import TIME, QuantityError, parse_quantity
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        s = float(parse_quantity(str(text), TIME))
    except QuantityError as e:
        f.error("RTX008", f"{what}: {e}", path, "a duration with a unit, e.g. 90s or 600s")
        return None
    if s <= 0:
        f.error("RTX008", f"{what} must be longer than 0s", path)
        return None
    return s


def name_and_database(path: str, value: dict | None, database: str | None = None) -> tuple[str, str]:
    """The experiment's name and its results database (a URL, or an absolute SQLite path), from the
    file's `experiment:` and `database:` (default: FILE's stem, and STEM.sqlite next to it)."""
    value = value if isinstance(value, dict) else {}
    stem = os.path.splitext(os.path.basename(path))[0]
    db = database or value.get("database") or f"{stem}.sqlite"
    if "://" not in str(db):
        db = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), str(db)))
    return str(value.get("experiment") or stem), str(db)


def peek(path: str, database: str | None = None) -> tuple[str, str]:
    """Name and database of an experiment file without checking it (for `batch show` and `plot`,
    which read results even when the file would no longer run)."""
    import yaml
    from ..passes.reading import read_text
    text, _ = read_text(path)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    return name_and_database(path, value, database)


def has_experiment_suffix(path: str) -> bool:
    """A file name an experiment file can have (.yaml, .yml, .json); URLs never."""
    return "://" not in path and os.path.splitext(path)[1].lower() in (".yaml", ".yml", ".json")


def _unchecked(path: str):
    """A YAML/JSON file's value as it is, None when it cannot be read or parsed."""
    import yaml
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def peek_axes(path: str) -> dict:
    """The `sweep` of an experiment file, unchecked (axis -> its list of values), for plots to keep
    the sweep's order; {} when it cannot be read."""
    value = _unchecked(path)
    sweep = value.get("sweep") if isinstance(value, dict) else None
    return {str(k): v for k, v in sweep.items() if isinstance(v, list)} if isinstance(sweep, dict) else {}


def looks_like_experiment(path: str) -> bool:
    """A YAML/JSON file whose top level has `workload` and none of a topology's keys: `rattan
    check` reads it as an experiment file."""
    if not has_experiment_suffix(path):
        return False
    value = _unchecked(path)
    return isinstance(value, dict) and "workload" in value and not ({"cells", "links"} & set(value))


@dataclass
class Checked:
    """What checking an experiment file found: its sources, the diagnostics, the experiment when
    there is no error (the shape `rattan check` reports for topologies)."""
    sources: SourceMap
    diagnostics: list
    experiment: Experiment | None

    @property
    def ok(self) -> bool:
        return self.experiment is not None


def check(path: str, database: str | None = None) -> Checked:
    """Read and check an experiment file; InputError when it cannot be read."""
    sources = SourceMap()
    from ..passes.reading import read_text
    text, _ = read_text(path)  # InputError when unreadable
    src = sources.add(path, text, os.path.abspath(path))
    try:
        doc = _Located(src)
    except Exception as e:  # yaml.YAMLError
        mark = getattr(e, "problem_mark", None)
        span = Span(src.id, mark.index, mark.index + 1) if mark is not None else Span(src.id, 0, 1)
        # `while scanning a quoted scalar` points at where the unclosed thing started: at the end
        # of the file, the problem's own mark shows an empty line
        context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
        labels = (Label(Span(src.id, cmark.index, cmark.index + 1), context),) if context and cmark else ()
        if labels and mark is not None and mark.index >= len(text.rstrip()):
            span, labels = labels[0].span, ()
        problem = getattr(e, "problem", None) or e
        message = f"not valid YAML: {problem}" + (f" {context}" if context and not labels else "")
        d = Diagnostic("RTX001", message, span, "error", labels, (), None)
        return Checked(sources, [d], None)
    f = _Findings(doc)
    exp = _check(doc, f, os.path.abspath(path), database)
    diags = sorted(f.items, key=lambda d: (d.span.start if d.span else 0))
    return Checked(sources, diags, None if diags else exp)


def load(path: str, database: str | None = None) -> Experiment:
    """Read and check an experiment file; ExperimentError with every finding when it cannot run."""
    c = check(path, database)
    if not c.ok:
        raise _error(c.sources, c.diagnostics)
    return c.experiment


def _error(sources: SourceMap, diags: list) -> ExperimentError:
    from ..diagnostics.render import render_text
    from ..library import _diagnostics
    diags = sorted(diags, key=lambda d: (d.span.start if d.span else 0))
    return ExperimentError(render_text(sources, diags), _diagnostics(sources, diags))


def _check(doc: _Located, f: _Findings, path: str, database: str | None) -> Experiment | None:
    import jsonschema
    value = doc.value
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    for err in errors:
        # the most specific error of a oneOf says more than "not valid under any"
        if err.context and err.validator in ("oneOf", "anyOf"):
            deepest = max(err.context, key=lambda e: len(e.absolute_path))
            if len(deepest.absolute_path) > len(err.absolute_path):
                err = deepest
        msg, helps, key = _schema_message(err)
        p = list(err.absolute_path)
        if err.validator == "uniqueItems":
            p.append(_repeated(err.instance))  # the second one
        if key and isinstance(err.instance, dict):
            extra = [k for k in err.instance if k not in (err.schema.get("properties") or {})]
            p = p + extra[:1]
        f.error("RTX002", msg, p, helps, key=key)
    if f.items:
        return None
    folder = os.path.dirname(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    axes = {k: list(v) for k, v in (value.get("sweep") or {}).items()}
    for reserved in ("seed", "repetition"):
        if reserved in axes:
            f.error("RTX002", f"`{reserved}` is not a sweep axis: give `{reserved}s`", ("sweep", reserved), key=True)
    topology = value.get("topology")
    if topology is None and "topology" not in axes:
        f.error("RTX011", "no topology: give `topology: FILE.rtn`, or a `topology` sweep axis", ())
    if topology is not None and "topology" in axes:
        f.error("RTX011", "`topology` is given twice: as a key and as a sweep axis", ("topology",), key=True)
    lets_value = value.get("lets") or {}
    lets = {n: "{" + n + "}" for n in lets_value} if isinstance(lets_value, list) else dict(lets_value)
    known = set(axes) | set(BUILT_IN_AXES)
    for i, (name, template) in enumerate(lets.items()):
        lpath = ("lets", i) if isinstance(lets_value, list) else ("lets", name)
        used = PLACEHOLDER.findall(str(template))
        if isinstance(lets_value, list) and name not in axes:
            guess = did_you_mean(name, list(axes))
            f.error("RTX004", f"`lets` names `{name}`, which is no sweep axis", lpath,
                    [f"did you mean `{guess}`?"] if guess else [f"sweep axes: {', '.join(axes) or 'none'}"])
            continue  # its template `{name}` would say the same again as RTX003
        for u in used:
            if u not in known:
                guess = did_you_mean(u, sorted(known))
                f.error("RTX003", f"`{{{u}}}` names no sweep axis", lpath, span=doc.within(lpath, "{" + u + "}"),
                        help=[f"did you mean `{{{guess}}}`?"] if guess else [f"placeholders: {', '.join(sorted(known))}"])
    steps = []
    counts: dict[str, int] = {}
    for i, s in enumerate(value["workload"]):
        words = s["command"] if isinstance(s["command"], list) else [s["command"]]
        for w in words:
            for u in PLACEHOLDER.findall(w):
                if u not in known:
                    guess = did_you_mean(u, sorted(known))
                    where = ("workload", i, "command") + ((words.index(w),) if isinstance(s["command"], list) else ())
                    f.error("RTX003", f"`{{{u}}}` names no sweep axis", where, span=doc.within(where, "{" + u + "}"),
                            help=[f"did you mean `{{{guess}}}`?"] if guess else
                            [f"placeholders: {', '.join(sorted(known))}; `${{VAR}}` is left to the shell"])
        counts[s["endpoint"]] = counts.get(s["endpoint"], 0) + 1
    seen: dict[str, int] = {}
    for i, s in enumerate(value["workload"]):
        ep = s["endpoint"]
        seen[ep] = seen.get(ep, 0) + 1
        name = s.get("name") or (ep if counts[ep] == 1 else f"{ep}{seen[ep]}")
        steps.append(Step(ep, s["command"], name, bool(s.get("background")), s.get("extract")))
        if s.get("extract"):
            try:
                from .extractors import EXTRACTORS
            except ImportError:
                EXTRACTORS = {}
            if EXTRACTORS and s["extract"] not in EXTRACTORS:
                guess = did_you_mean(s["extract"], sorted(EXTRACTORS))
                f.error("RTX009", f"no extractor `{s['extract']}`", ("workload", i, "extract"),
                        ([f"did you mean `{guess}`?"] if guess else [])
                        + [f"extractors: {', '.join(sorted(EXTRACTORS))}"])
    names = [s.name for s in steps]
    for n in {n for n in names if names.count(n) > 1}:
        f.error("RTX002", f"two workload commands are named `{n}`", ("workload",), "give each a distinct `name`")
    if not any(not s.background for s in steps):
        f.error("RTX002", "every workload command is in the background: nothing says when a run ends",
                ("workload",), "make the client's command a foreground one (no `background: true`)")
    timeout = _duration(value.get("timeout", DEFAULT_TIMEOUT_S), "timeout", f, ("timeout",))
    seeds_v = value.get("seeds", 1)
    seeds = list(range(1, seeds_v + 1)) if isinstance(seeds_v, int) else list(seeds_v)
    collect = value.get("collect") or {}
    axes_all = set(axes) | set(BUILT_IN_AXES)
    plots = []
    for i, p in enumerate(value.get("plots") or []):
        for k in ("x", "lines", "facet", "facet_rows"):
            if p.get(k) is not None and p[k] not in axes_all:
                guess = did_you_mean(p[k], sorted(axes_all))
                f.error("RTX010", f"plot {k} `{p[k]}` is no axis", ("plots", i, k),
                        [f"did you mean `{guess}`?"] if guess else [f"axes: {', '.join(sorted(axes_all))}"])
        out = p.get("output")
        outs = out if isinstance(out, list) else [out] if out else [f"{stem}-{p['metric']}.png"]
        plots.append({**p, "output": [os.path.normpath(os.path.join(folder, o)) for o in outs]})
    name, db = name_and_database(path, value, database)
    exp = Experiment(path=path, name=name, topology=topology,
                     channel=value.get("channel"), axes=axes, lets=lets, seeds=seeds,
                     repetitions=value.get("repetitions", 1), workload=steps,
                     telemetry=list(collect.get("telemetry") or []), packet_log=bool(collect.get("packet_log")),
                     resources={"cores": 1, "instances": 1, **(value.get("resources") or {})},
                     timeout_s=timeout or DEFAULT_TIMEOUT_S, retries=value.get("retries", DEFAULT_RETRIES),
                     database=db, plots=plots)
    if not f.items:
        _check_topologies(exp, doc, f)
    return exp


def _let_variants(exp: Experiment):
    """(path of the sweep value, combination): the first combination, then each value of every axis
    the lets use in place of the first one, so that a value a topology refuses is found (and pointed
    at) without compiling the whole product."""
    first = next(exp.combinations(), {})
    yield None, first
    used = {u for t in exp.lets.values() for u in PLACEHOLDER.findall(t)}
    for axis, values in exp.axes.items():
        if axis in used and axis != "topology":
            for k, v in enumerate(values[1:], 1):
                yield ("sweep", axis, k), {**first, axis: v}


def _check_topologies(exp: Experiment, doc: _Located, f: _Findings) -> None:
    """Compile every topology of the sweep with the lets of its first combination and of every value
    the lets take (see _let_variants): a missing file, a let it lacks or a value it refuses, endpoints
    and cells the workload names."""
    from ..library import CompileError, compile as compile_topology
    values = exp.axes.get("topology") or [exp.topology]
    tpath = ("sweep", "topology") if "topology" in exp.axes else ("topology",)
    for i, topo in enumerate(values):
        where = tpath + ((i,) if "topology" in exp.axes else ())
        full = exp.topology_path(str(topo))
        if not os.path.isfile(full):
            f.error("RTX005", f"no topology file `{topo}`", where, "the path is relative to the experiment file")
            continue
        for value_path, combo in _let_variants(exp):
            params = {**combo, "topology": topo, "seed": exp.seeds[0], "repetition": 0}
            lets = {n: fill(t, params) for n, t in exp.lets.items()}
            try:
                comp = compile_topology(full, lets=lets)
            except CompileError as e:
                comp = e
                break
            if not comp.ok:
                where = value_path or where
                break
        if isinstance(comp, CompileError):
            f.error("RTX006", f"`{topo}` cannot be read: {comp}", where)
            continue
        if not comp.ok:
            first_error = comp.errors[0]
            at = f"{topo}:{first_error.line}:{first_error.column}" if first_error.line else str(topo)
            given = ", ".join(f"{n} = {v}" for n, v in lets.items()) or "none"
            f.error("RTX006", f"`{topo}` does not compile with lets {given}: {at}: "
                    f"error[{first_error.code}]: {first_error.message}", where,
                    [d.message for d in comp.errors[1:4]])
            continue
        plan = comp.plan
        chans = plan["channels"]
        chan = next((c for c in chans if c["name"] == exp.channel), None) if exp.channel else \
            (chans[0] if len(chans) == 1 else None)
        if chan is None:
            names = ", ".join(c["name"] for c in chans)
            f.error("RTX007", f"`{topo}` has channels {names}: give `channel:`" if not exp.channel else
                    f"`{topo}` has no channel `{exp.channel}` (channels: {names})",
                    ("channel",) if exp.channel else where)
            continue
        for j, s in enumerate(exp.workload):
            if s.endpoint not in chan["endpoints"]:
                guess = did_you_mean(s.endpoint, chan["endpoints"])
                f.error("RTX007", f"channel `{chan['name']}` of `{topo}` has no endpoint `{s.endpoint}`",
                        ("workload", j, "endpoint"),
                        [f"did you mean `{guess}`?"] if guess else [f"endpoints: {', '.join(chan['endpoints'])}"])
        cells = {c["name"] for c in chan["cells"]}
        for j, cell in enumerate(exp.telemetry):
            if cell not in cells:
                guess = did_you_mean(cell, sorted(cells))
                f.error("RTX012", f"channel `{chan['name']}` of `{topo}` has no cell `{cell}`",
                        ("collect", "telemetry", j), [f"did you mean `{guess}`?"] if guess else [])

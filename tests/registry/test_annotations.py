"""What is particular to a cell type beyond its parameters is an annotation in its schema's `x-rattan`
block (stdlib_cells/README.md lists them; tests/test_cell_readmes.py keeps that table), and the tools ask the registry, never a list of types: a
cell type registered only by its schema (as a plugin's is) is a queue in DOT and plots, routes in
the graph checks, and is described like a built-in."""
from __future__ import annotations

import ast
import copy
import json

from rattan.compiler import compile_text
from rattan.plan import build_plan, plan_dot
from rattan.registry import Registry, default_registry

from tests.conftest import ROOT


def _registry(*schemas) -> Registry:
    """The built-ins and these schemas, registered as a plugin's are."""
    reg = Registry()
    reg.load_builtins()
    for s in schemas:
        reg.add_cell(s, "plugin rattan-test")
    return reg


def _like(base: str, title: str, **annotations) -> dict:
    """A copy of a built-in's schema under another name, its `x-rattan` block replaced."""
    s = copy.deepcopy(dict(default_registry().get(base).schema))
    s["title"] = title
    s.pop("$id", None)
    outputs = s["x-rattan"].get("outputs", 1)
    s["x-rattan"] = {"outputs": outputs, **annotations}
    return s


def _plan(reg: Registry, source: str) -> dict:
    comp = compile_text(source, "t.rtn", registry=reg)
    assert comp.ok, [d.message for d in comp.diagnostics]
    return build_plan(comp.program, comp.sources, reg)


AGG = "channel c {\n    left -> agg { rate = 5Mbps, queue = droptail { packets = 10 } } -> right\n    right -> left\n}\n"


def test_a_plugin_cell_marked_queue_is_drawn_as_a_queue_with_its_label():
    queued = _registry(_like("bw", "agg", queue=True, label=["rate"]))
    node = next(line for line in plan_dot(_plan(queued, AGG), queued).splitlines() if '"c/agg_1"' in line)
    assert "peripheries=2" in node and "agg\\n5Mbps, droptail" in node, node
    plain = _registry(_like("bw", "agg"))
    node = next(line for line in plan_dot(_plan(plain, AGG), plain).splitlines() if '"c/agg_1"' in line)
    assert "peripheries" not in node and "5Mbps" not in node, node
    # the built-ins say the same through their own schemas
    bw = next(line for line in plan_dot(_plan(default_registry(), AGG.replace("agg", "bw"))).splitlines()
              if '"c/bw_1"' in line)
    assert "peripheries=2" in bw and "5Mbps, droptail" in bw


def test_a_plugin_cell_marked_queue_gets_a_queue_line_in_plots(run_cli, monkeypatch):
    from rattan.tools import plot
    code, out, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:poisson:25Mbps",
                             "--duration", "2s", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert any(doc["series"]["cells"]["up"]["queued_packets"])  # 25 Mbit/s into 20: a queue builds
    doc["series"]["cells"]["up"]["type"] = "agg"  # as if a plugin's cell had been the bottleneck
    for annots, shown in (({"queue": True}, True), ({}, False)):
        reg = _registry(_like("bw", "agg", **annots))
        monkeypatch.setattr("rattan.registry.default_registry", lambda reg=reg: reg)
        fig = plot._from_sim(doc)
        assert ("up: queued" in [label for label, _ in fig.queue]) is shown, annots


ROUTED = """channel c {
    endpoints a, b
    cell r: balancer { routes = [route { prefix = %s, port = 0 }] }
    b -> r
    r[0] -> a
    a -> bw { rate = 10Mbps } -> b
}
"""


def _codes(reg: Registry, source: str) -> list[str]:
    return [d.code for d in compile_text(source, "t.rtn", registry=reg).diagnostics]


def test_a_plugin_cell_that_routes_is_checked_like_the_router():
    reg = _registry(_like("router", "balancer", routing={"routes": "routes", "default": "default"}))
    assert _codes(reg, ROUTED % "a") == []
    assert _codes(reg, ROUTED % "aa") == ["RTN040"]      # an endpoint name that is no endpoint
    assert _codes(reg, ROUTED % "b") == ["RTN049"]       # b's packets for a have no route: no way back
    comp = compile_text((ROUTED % "a").replace("r[0] -> a", "r[0] -> a\n    r[2] -> a"), "t.rtn", registry=reg)
    (d,) = comp.diagnostics
    assert d.code == "RTN044" and "a balancer has one output per port named in its `routes` and `default`" in str(d.help)
    # without the annotation the compiler knows nothing of its routes
    blind = _registry(_like("router", "balancer"))
    assert _codes(blind, ROUTED % "aa") == [] and _codes(blind, ROUTED % "b") == []


def test_built_ins_use_only_known_annotations_and_a_plugins_unknown_one_is_reported():
    reg = default_registry()
    for n in reg.names():
        assert reg.get(n).unknown_annotations() == [], n
    assert not reg.problems
    typo = _registry(_like("bw", "agg", queues=True))
    assert typo.get("agg") is not None  # still usable
    (problem,) = typo.problems
    assert "`agg`" in problem and "unknown x-rattan key `queues`" in problem and "queue" in problem


# Modules that may name cell types: the front ends translate upstream Rattan's cells into ours.
TRANSLATORS = {"rattan/frontends/upstream.py", "rattan/frontends/netem_trace.py", "rattan/runtime/link.py"}
# Still deciding by type name, each waiting for a change in its owner's branch of issue 11. Remove an
# entry once its file is clean (the test says so).
KNOWN: set[str] = set()


def _decides_by_type(path) -> list[str]:
    """Comparisons with a built-in type's name, and literal collections of two or more of them."""
    names = set(default_registry().names())
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            literal = any(isinstance(e, ast.Constant) and e.value in names for s in sides
                          for e in (s.elts if isinstance(s, (ast.Tuple, ast.Set, ast.List)) else [s]))
            typed = any(("type" in ast.unparse(s) or ast.unparse(s) == "t") for s in sides)
            if literal and typed:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
            strings = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(strings) >= 2 and len(strings) == len(node.elts) and set(strings) <= names:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_decides_by_a_cell_type_name():
    """Adding a cell touches only its folder: outside the front ends, nothing compares with a
    built-in type's name or keeps a list of them (ask the registry about the schema instead)."""
    bad, clean = {}, []
    for path in sorted((ROOT / "rattan").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("rattan/stdlib_cells/") or rel in TRANSLATORS:
            continue
        hits = _decides_by_type(path)
        if hits and rel not in KNOWN:
            bad[rel] = hits
        if not hits and rel in KNOWN:
            clean.append(rel)
    assert not bad, f"decided by cell type name (use an x-rattan annotation): {bad}"
    assert not clean, f"{clean} no longer decide by type name: remove them from KNOWN"


def test_the_scan_finds_a_list_of_types(tmp_path):
    p = tmp_path / "m.py"
    p.write_text('QUEUE_TYPES = {"bw", "bw_trace"}\nif cell["type"] in ("loss", "corrupt"):\n    pass\n'
                 'if kind == "bw":\n    pass\n')
    assert [h.split(":")[0] for h in _decides_by_type(p)] == ["1", "2", "2"]

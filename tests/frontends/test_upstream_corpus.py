"""Upstream Rattan's own files (tests/frontends/upstream/), each checked against upstream's verdict.

The corpus reproduces upstream's configurations key for key (config.example.toml, examples/, the guide, the
artifact scenarios, and one TOML per integration test); VERDICTS.toml says for each what upstream's serde
structs make of it. A file upstream runs must check here (its ignored keys as warnings), compile, and convert
to a `.rtn` that compiles to the same plan; a file upstream refuses must get an error naming the key.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from rattan.compiler import compile_path
from rattan.diagnostics import Sink
from rattan.frontends.upstream import load_document
from rattan.passes.reading import read_text
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.source import SourceMap
from rattan.syntax import ast

CORPUS = Path(__file__).resolve().parent / "upstream"
VERDICTS = tomllib.loads((CORPUS / "VERDICTS.toml").read_text())
FILES = VERDICTS["files"]
RUNS = sorted(n for n, v in FILES.items() if v["verdict"] == "runs")
REFUSES = sorted(n for n, v in FILES.items() if v["verdict"] == "refuses")
IGNORED_KEY = "RTN075"  # warning: a key or value upstream ignores (rattan/diagnostics/codes.py)


# ---- helpers -------------------------------------------------------------------
def check_json(run_cli, path: Path) -> tuple[int, list[dict]]:
    """`rattan check --format json PATH`: its exit status and diagnostics."""
    code, out, err = run_cli("check", "--format", "json", str(path))
    assert out.strip(), err
    return code, json.loads(out)


def key_line(text: str, dotted: str) -> int:
    """The 1-based line where the key `a.b.c` is first written after the header `[a.b]`: `c = ...`,
    or a table header `[a.b.c]` / `[a.b.c.d]` when the key holds a table."""
    *table, key = dotted.split(".")
    lines = text.splitlines()
    start = 0
    if table:
        header = re.compile(r"^\s*\[+\s*" + re.escape(".".join(table)) + r"\s*\]+\s*(#.*)?$")
        start = next(i for i, line in enumerate(lines) if header.match(line)) + 1
    full = re.escape(".".join(table + [key]))
    pattern = re.compile(r"^\s*(" + re.escape(key) + r"\s*=|\[+\s*" + full + r"\s*[\].])")
    return next(i for i in range(start, len(lines)) if pattern.match(lines[i])) + 1


def mapped(path: Path) -> ast.File:
    """The front end's AST of one corpus file."""
    text, _ = read_text(str(path))
    sources = SourceMap()
    src = sources.add(str(path), text, str(path))
    return load_document(src, Sink(), "toml")


def without_sources(value):
    """A plan value with every `source` (file:line:col) left out: a converted file writes other lines."""
    if isinstance(value, dict):
        return {k: without_sources(v) for k, v in value.items() if k != "source"}
    if isinstance(value, list):
        return [without_sources(v) for v in value]
    return value


def plan_of(path: Path) -> dict:
    comp = compile_path(str(path))
    errors = [(d.code, d.message) for d in comp.diagnostics if d.is_error]
    assert not errors, errors
    return build_plan(comp.program, comp.sources, default_registry())


def assert_ignored_keys_warned(name: str, diags: list[dict]) -> None:
    """Each key upstream ignores in corpus file `name` is an RTN075 warning on its line that names it."""
    text = (CORPUS / name).read_text()
    for dotted in FILES[name].get("ignored", []):
        key = dotted.rsplit(".", 1)[-1]
        line = key_line(text, dotted)
        assert text.splitlines()[line - 1].lstrip().lstrip("[").startswith(key)
        found = [d for d in diags if d["code"] == IGNORED_KEY and d["severity"] == "warning"
                 and d["line"] == line and key in d["message"]]
        assert found, f"no {IGNORED_KEY} warning that upstream ignores `{dotted}` (line {line}): {diags}"
        meant = FILES[name].get("did_you_mean", {}).get(dotted)
        if meant:
            assert any(meant in (d.get("fix") or "") or any(meant in h for h in d.get("help", []))
                       for d in found), f"the warning on `{dotted}` does not suggest `{meant}`: {found}"


# ---- the corpus itself ---------------------------------------------------------
def test_every_corpus_file_has_a_verdict_and_names_what_it_reproduces():
    configs = {p.name for p in CORPUS.glob("*.toml")} - {"VERDICTS.toml"}
    assert configs == set(FILES)
    assert len(RUNS) >= 10 and len(REFUSES) >= 5
    for name, v in FILES.items():
        first = (CORPUS / name).read_text().splitlines()[0]
        head = f"# reproduces {v['reproduces']}"
        assert first.startswith(head) and first[len(head):][:1] in ("", " ", ":"), (name, first)
        assert re.match(r"stack-rs/rattan@[0-9a-f]{7} \S", v["reproduces"]), name
        if v["verdict"] == "runs":
            assert {"ignored", "mode", "endpoints", "cells"} <= set(v), name
        else:
            assert v["verdict"] == "refuses" and v["error_key"] and v["why"], name
    # every model file a configuration names is in the corpus and says where it comes from
    for model in VERDICTS["models"]:
        assert (CORPUS / model).is_file(), model


# ---- files upstream runs -------------------------------------------------------
@pytest.mark.parametrize("name", RUNS)
def test_a_file_upstream_runs_checks_with_its_ignored_keys_as_warnings(run_cli, name):
    path = CORPUS / name
    code, diags = check_json(run_cli, path)
    errors = [d for d in diags if d["severity"] == "error"]
    assert code == 0 and not errors, errors
    assert_ignored_keys_warned(name, diags)


@pytest.mark.parametrize("name", RUNS)
def test_a_file_upstream_runs_maps_to_its_endpoints_and_cell_types(name):
    v = FILES[name]
    file = mapped(CORPUS / name)
    (channel,) = file.body
    (endpoints,) = [s for s in channel.body if isinstance(s, ast.Endpoints)]
    assert [n for n, _ in endpoints.names] == v["endpoints"]
    cells = {s.name: s.type.text for s in channel.body if isinstance(s, ast.CellDecl)}
    assert cells == v["cells"]


@pytest.mark.parametrize("name", RUNS)
def test_a_file_upstream_runs_compiles_and_converts_to_the_same_plan(run_cli, tmp_path, name):
    # a copy of the whole folder, so the converted file finds the traces its relative paths name
    folder = shutil.copytree(CORPUS, tmp_path / "upstream")
    original = plan_of(folder / name)
    assert original["run"]["env"]["mode"] == FILES[name]["mode"]
    rtn = folder / (Path(name).stem + ".rtn")
    code, _, err = run_cli("convert", str(folder / name), "-o", str(rtn))
    assert code == 0, err
    converted = plan_of(rtn)
    assert without_sources(converted["channels"]) == without_sources(original["channels"])


# ---- files upstream refuses ----------------------------------------------------
@pytest.mark.parametrize("name", REFUSES)
def test_a_file_upstream_refuses_gets_an_error_naming_the_key_and_its_conversion_too(run_cli, tmp_path, name):
    key = FILES[name]["error_key"]
    code, diags = check_json(run_cli, CORPUS / name)
    errors = [d for d in diags if d["severity"] == "error"]
    assert code == 1 and errors
    assert any(key in d["message"] for d in errors), errors
    assert_ignored_keys_warned(name, diags)
    # a .rtn converted from it must not run what upstream never runs: convert refuses, or the .rtn is refused
    folder = shutil.copytree(CORPUS, tmp_path / "upstream")
    rtn = folder / (Path(name).stem + ".rtn")
    code, _, _ = run_cli("convert", str(folder / name), "-o", str(rtn))
    if code == 0:
        code, diags = check_json(run_cli, rtn)
        assert code == 1 and any(d["severity"] == "error" for d in diags), diags
    else:
        assert code == 1 and not rtn.exists()

"""A regular install works wherever it is used, and a checkout works from its root next to one.

A copy of the tree (what a fresh clone holds: .gitignore'd build output left out)
is built into a wheel by pip's normal, isolated build, installed into a fresh
virtual environment, and the venv's `rattan` is run from a folder outside the
repository. The wheel's file list is compared with the tree's, so a new module
or data file cannot be left out again. One copy, wheel and venv serve the module
(about a minute: the C engine is compiled, the dependencies installed).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rattan.tools.lsp.client import LspClient
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# Each folder of the tree whose files the package holds, and where they are in it.
INSTALLED_AS = {"rattan": "rattan", "grammar": "rattan/grammar", "schemas": "rattan/schemas",
                "stdlib_cells": "rattan/stdlib_cells"}
EXAMPLE = "broadband.rtn"
FLOW = "left->right:cbr:5Mbps"


def _ignored() -> list[str]:
    """.gitignore's patterns (build output, caches, the compiled engine) as file names, and .git."""
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    return [".git"] + [s.strip().rstrip("/").rsplit("/", 1)[-1] for s in lines
                       if s.strip() and not s.startswith("#")]


def _package_files(tree: Path) -> set[str]:
    """Where every file of the tree's package folders is in an installed rattan."""
    out = set()
    for folder, installed in INSTALLED_AS.items():
        for dirpath, dirnames, filenames in os.walk(tree / folder):  # rattan/'s links are not followed
            rel = os.path.relpath(dirpath, tree / folder)
            for name in filenames:
                if not os.path.islink(os.path.join(dirpath, name)):
                    out.add(os.path.normpath(os.path.join(installed, rel, name)).replace(os.sep, "/"))
    return out


def _clean_env(venv: Path | None = None) -> dict:
    """The environment without anything that points Python at another rattan."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(argv, cwd, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """(a copy of the tree as a clone has it, where each of its package files goes when installed)."""
    dst = tmp_path_factory.mktemp("checkout") / "rattan"
    shutil.copytree(ROOT, dst, symlinks=True, ignore=shutil.ignore_patterns(*_ignored()))
    return dst, _package_files(dst)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    path = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=300)
    return path


@pytest.fixture(scope="module")
def wheel(tree, venv, tmp_path_factory):
    """The wheel of the tree copy (pip's isolated build, as a user's `pip install .`)."""
    dist = tmp_path_factory.mktemp("dist")
    r = _run([venv / "bin" / "python", "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, tree[0]],
             cwd=dist, env=_clean_env(venv), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = dist.glob("rattan-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, venv):
    """The venv, with the wheel and its dependencies installed."""
    r = _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], cwd=wheel.parent,
             env=_clean_env(venv), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return venv


def test_the_wheel_holds_every_module_and_data_file_of_the_tree(tree, wheel):
    """Every .py under rattan/ at any depth (rattan/tools/lsp was lost) and every grammar, schema,
    cell and engine source file; nothing else but the compiled engine and the metadata."""
    _, expected = tree
    assert "rattan/tools/lsp/server.py" in expected and "rattan/stdlib_cells/bw/bw.c" in expected
    held = {n for n in zipfile.ZipFile(wheel).namelist() if not n.endswith("/")}
    assert sorted(expected - held) == []
    engine = [n for n in held if n.startswith("rattan/engine/_engine.") and n.endswith(".so")]
    assert len(engine) == 1, held
    meta = {n for n in held if n.split("/", 1)[0].endswith(".dist-info")}
    assert sorted(held - expected - meta - set(engine)) == []


class InstalledLsp(LspClient):
    """The package's stdio client, speaking to the venv's `rattan lsp` script."""

    def __init__(self, rattan: Path, cwd: Path, env: dict) -> None:
        super().__init__(cwd=str(cwd), env=env, command=[str(rattan), "lsp", "--stdio"], inherit_env=False)


def test_the_installed_rattan_works_outside_the_repository(tree, installed, tmp_path):
    """--version, check, compile, sim, cells, schema and an editor session, from a folder that
    is not the repository, with only the venv's rattan on the path."""
    env = _clean_env(installed)
    rattan = installed / "bin" / "rattan"
    shutil.copy(tree[0] / "examples" / EXAMPLE, tmp_path / EXAMPLE)

    where = _run([installed / "bin" / "python", "-c", "import rattan; print(rattan.__file__)"], tmp_path, env)
    assert where.stdout.startswith(str(installed)), where.stdout + where.stderr

    r = _run([rattan, "--version"], tmp_path, env)
    assert r.returncode == 0 and re.match(r"rattan \d+\.\d+\S* \(engine ABI \d+", r.stdout), r.stdout + r.stderr
    r = _run([rattan, "check", EXAMPLE], tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run([rattan, "compile", EXAMPLE], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert [c["name"] for c in json.loads(r.stdout)["channels"]] == ["broadband"]
    r = _run([rattan, "sim", EXAMPLE, "--flow", FLOW, "--duration", "1s", "--json"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["flows"][0]["received_packets"] > 0
    r = _run([rattan, "cells"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    listed = {line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()}
    cells = {p.parent.name for p in (tree[0] / "stdlib_cells").glob("*/cell.schema.json")}
    assert cells <= listed
    for flag in ([], ["--plan"]):
        r = _run([rattan, "schema", *flag], tmp_path, env)
        assert r.returncode == 0 and json.loads(r.stdout)["$schema"], r.stderr

    client = InstalledLsp(rattan, tmp_path, env)
    try:
        init = client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}}, timeout=60)
        assert init["result"]["serverInfo"]["name"] == "rattan", init
        client.notify("initialized", {})
        uri = (tmp_path / "path.rtn").as_uri()
        text = "channel c {\n    left -> dela { delay = 10ms } -> right\n    right -> left\n}\n"
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan",
                                                                "version": 1, "text": text}})
        (d,) = client.diagnostics(uri, timeout=60)
        assert d["code"] == "RTN012" and "did you mean `delay`?" in d["message"]
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                                 "contentChanges": [{"range": d["range"], "text": "delay"}]})
        assert client.diagnostics(uri, timeout=60) == []
        hover = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                      "position": {"line": 1, "character": 22}})["result"]
        assert "delay { delay: time }" in hover["contents"]["value"]  # from the installed cell schema
    finally:
        status = client.close()
    assert status == 0, client.proc.stderr.read().decode(errors="replace")


LIBRARY_USE = """\
import rattan
bad = rattan.compile(text="channel c {\\n    left -> dela { delay = 10ms } -> right\\n    right -> left\\n}\\n")
good = rattan.compile("broadband.rtn")
sim = rattan.sim(good.plan, flows=["left->right:cbr:5Mbps"], duration="1s")
print(bad.ok, bad.errors[0].code, good.ok, good.plan_hash[:8], sim.flows[0].received_packets > 0)
"""

EXPERIMENT = """\
topology: broadband.rtn
sweep: {count: [2, 3]}
seeds: 2
workload:
  - {endpoint: left, name: ping, command: "ping -c {count} $RATTAN_RIGHT_IP", extract: ping}
"""


def test_the_installed_library_and_batch_work_outside_the_repository(tree, installed, tmp_path):
    """rattan.compile/sim from the installed package, and `rattan batch` reading an experiment file
    (its JSON Schema ships as package data) and listing its sweep."""
    env = _clean_env(installed)
    shutil.copy(tree[0] / "examples" / EXAMPLE, tmp_path / EXAMPLE)
    r = _run([installed / "bin" / "python", "-c", LIBRARY_USE], tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    ok_bad, code, ok_good, _, received = r.stdout.split()
    assert (ok_bad, code, ok_good, received) == ("False", "RTN012", "True", "True"), r.stdout
    (tmp_path / "sweep.yaml").write_text(EXPERIMENT)
    r = _run([installed / "bin" / "rattan", "batch", "sweep.yaml", "--dry-run"], tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len([line for line in r.stdout.splitlines() if line.startswith("todo ")]) == 4, r.stdout
    (tmp_path / "bad.yaml").write_text(EXPERIMENT.replace("{count}", "{cuont}"))
    r = _run([installed / "bin" / "rattan", "batch", "bad.yaml", "--dry-run"], tmp_path, env)
    assert r.returncode == 2 and "RTX003" in r.stderr and "did you mean `{count}`?" in r.stderr, r.stderr


def test_a_checkout_runs_from_its_root_next_to_a_regular_install(tree, installed):
    """From the root, `python -m rattan` and the benchmarks import the checkout (which has the
    installed layout), and the engine comes from the install: the checkout has no build of its own."""
    root = tree[0]
    assert not list((root / "rattan" / "engine").glob("_engine*.so"))
    env = _clean_env(installed)
    python = installed / "bin" / "python"
    r = _run([python, "-c", "import rattan, rattan.engine as e; print(rattan.__file__); print(e._engine.__file__)"],
             root, env)
    assert r.returncode == 0, r.stderr
    package, engine = r.stdout.split()
    assert package == str(root / "rattan" / "__init__.py")
    assert engine.startswith(str(installed)) and "site-packages" in engine

    r = _run([python, "-m", "rattan", "--version"], root, env)
    assert r.returncode == 0 and "engine ABI" in r.stdout, r.stdout + r.stderr
    r = _run([python, "-m", "rattan", "sim", f"examples/{EXAMPLE}", "--flow", FLOW, "--duration", "1s"], root, env)
    assert r.returncode == 0, r.stderr
    r = _run([python, "-m", "rattan", "cells", "bw"], root, env)
    assert r.returncode == 0 and "rate" in r.stdout, r.stderr
    r = _run([python, "benchmarks/engine_pps.py", "--packets", "2000"], root, env)  # the engine in process
    assert r.returncode == 0 and r.stdout, r.stdout + r.stderr
    r = _run([python, "benchmarks/compile_scale.py", "--max", "1000", "--repeat", "1"], root, env)
    assert r.returncode == 0 and "    1000 " in r.stdout, r.stdout + r.stderr  # `python -m rattan` children


def test_without_any_build_the_engine_says_how_to_get_one(tree):
    """A checkout with no compiled engine, and no installed rattan holding one (-S: no site-packages,
    whatever this interpreter has installed): a message that says how to build it."""
    r = _run([sys.executable, "-S", "-c", "import rattan.engine"], tree[0], _clean_env())
    assert r.returncode == 1
    assert "the rattan engine is not built" in r.stderr and "pip install" in r.stderr, r.stderr


def test_an_engine_built_for_another_abi_is_refused(tree, installed, tmp_path):
    """A stale build (here the installed one, against a header that declares another ABI) is named
    with both versions instead of being loaded."""
    root = tmp_path / "checkout"
    shutil.copytree(tree[0], root, symlinks=True, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    header = root / "rattan" / "engine" / "csrc" / "rattan_engine.h"
    text = header.read_text(encoding="utf-8")
    assert "#define RT_ABI_VERSION " in text
    header.write_text(re.sub(r"#define RT_ABI_VERSION \d+", "#define RT_ABI_VERSION 999", text), encoding="utf-8")
    (built,) = installed.glob("lib/python*/site-packages/rattan/engine/_engine*.so")
    shutil.copy(built, root / "rattan" / "engine" / built.name)
    r = _run([sys.executable, "-c", "import rattan.engine"], root, _clean_env())
    assert r.returncode == 1
    assert f"{root / 'rattan' / 'engine' / built.name} has engine ABI" in r.stderr, r.stderr
    assert "this rattan needs 999" in r.stderr, r.stderr


def test_a_new_cell_compiles_against_the_installed_header_and_runs(installed, tmp_path):
    """A regular install ships rattan_engine.h and new-cell's templates: `rattan new-cell` writes a C
    plugin, pip's isolated build (no rattan in it) finds the installed header through the venv's
    interpreter, and the venv's `rattan sim` runs the cell from its library."""
    env = _clean_env(installed)
    rattan = installed / "bin" / "rattan"
    r = _run([rattan, "include-dir"], tmp_path, env)
    assert r.returncode == 0 and (Path(r.stdout.strip()) / "rattan_engine.h").is_file(), r.stderr
    assert r.stdout.startswith(str(installed)), r.stdout
    r = _run([rattan, "new-cell", "probe_link"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    r = _run([installed / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "./probe_link"], tmp_path, env,
             timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (tmp_path / "p.rtn").write_text("channel c {\n    left -> probe_link { rate = 10Mbps } -> right\n"
                                    "    right -> left\n}\n")
    r = _run([rattan, "sim", "p.rtn", "--flow", "left->right:cbr:20Mbps", "--duration", "1s", "--json"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["flows"][0]["received_packets"] == 10_000_000 // (8 * 1500)

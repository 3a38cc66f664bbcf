"""C and Python cells from plugin distributions, end to end.

- Libraries that cannot be registered (built for another ABI, calling a function the engine lacks,
  without RT_PLUGIN, defining a type the engine has) are refused with a message, by `rattan sim`
  (exit 2, no traceback) and by the Python API (EngineError); built here with the C compiler.
- `pip install` of examples/plugins/policer and of fresh `rattan new-cell` C and Python projects into
  a new virtual environment that sees this environment's rattan; then `rattan cells`, `rattan sim`
  and each plugin's own tests with that environment's pytest, from a folder outside the repository.
"""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from rattan.engine import EngineError
from rattan.engine.binding import load_cells
from rattan.tools.lsp.client import LspClient
from rattan.tools.new_cell import include_dir
from tests.conftest import ROOT

CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")
PATH_RTN = "channel c {{\n    left -> {cell} -> right\n    right -> left\n}}\n"
SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
          "properties": {"rate": {"type": "integer", "minimum": 0, "x-unit": "rate", "x-runtime": True,
                                  "description": "A rate."}},
          "required": ["rate"], "additionalProperties": False, "x-rattan": {"outputs": 1}}

# A cell that passes every packet; each broken library below differs from a good one in one way.
CELL_C = """
#define RT_CELL_API
#include "rattan_engine.h"
static const char *const params[] = {"rate", NULL};
static int init(void *s, rt_config *c, int n, uint64_t now) { (void)s; (void)n; (void)now;
    rt_cfg_u64(c, "rate"); return rt_cfg_status(c); }
static void enqueue(rt_node *n, void *s, rt_pkt *k) { (void)s; %(call)s rt_emit(n, 0, k, k->t); }
static int control(rt_node *n, void *s, int p, double v, uint64_t now) { (void)n; (void)s; (void)p; (void)v;
    (void)now; return RT_OK; }
static double read(const void *s, int p, uint64_t now) { (void)s; (void)p; (void)now; return 0; }
const rt_cell_ops ops = {.type = "%(type)s", .state_size = 8, .params = params, .init = init,
                         .enqueue = enqueue, .control = control, .read = read};
%(plugin)s
"""
BROKEN = {
    # (C type, the library's declaration, a call in enqueue) -> what the message says
    "old_abi": (dict(type="old_abi", call="",
                     # by hand, what RT_PLUGIN writes, for the ABI before this one
                     plugin="const int rt_plugin_abi = RT_ABI_VERSION - 1;\n"
                            "const rt_cell_ops *const rt_plugin_cells[] = {&ops, NULL};"),
                r"was built against engine ABI (\d+), this engine has ABI (\d+): rebuild the plugin"),
    "missing_symbol": (dict(type="missing_symbol", call="rt_no_such_engine_function();",
                            plugin="void rt_no_such_engine_function(void);\nRT_PLUGIN(&ops);"),
                       r"cannot load the cell library .*undefined symbol: rt_no_such_engine_function"),
    "no_plugin": (dict(type="no_plugin", call="", plugin="/* no RT_PLUGIN(...) */"),
                  r"is not a rattan cell library: it lacks rt_plugin_abi \(declare its cells with RT_PLUGIN"),
    "clash": (dict(type="bw", call="", plugin="RT_PLUGIN(&ops);"),
              r"cell type `bw` is already registered"),
}


def _compile(source: str, out: Path) -> None:
    src = out.with_suffix(".c")
    src.write_text(source)
    # -shared leaves the engine's functions undefined: the engine resolves them when it loads the library
    r = subprocess.run([CC, "-shared", "-fPIC", "-std=c11", "-O1", f"-I{include_dir()}", str(src), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _site_with_plugin(base: Path, package: str, folders: dict[str, dict]) -> Path:
    """A distribution as pip lays it out (package, .dist-info with a `rattan.cells` entry point) in
    a folder to put on PYTHONPATH; each folder name -> its schema."""
    site_dir = base / "site"
    pkg = site_dir / package
    for name, schema in folders.items():
        (pkg / name).mkdir(parents=True)
        (pkg / name / "cell.schema.json").write_text(json.dumps(schema))
    (pkg / "__init__.py").write_text(textwrap.dedent(f"""
        from pathlib import Path
        def cells():
            return [str(Path(__file__).parent / n) for n in {sorted(folders)!r}]
    """))
    info = site_dir / f"{package}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[rattan.cells]\ncells = {package}:cells\n")
    (info / "RECORD").write_text("")
    return pkg


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """(environment seeing the broken plugin, folder of its cells): one cell type per way of breaking,
    plus `no_library`, a C cell whose folder has no library."""
    base = tmp_path_factory.mktemp("broken")
    names = [*BROKEN, "no_library"]
    pkg = _site_with_plugin(base, "rattan_broken", {n: {**SCHEMA, "title": n} for n in names})
    for name, (parts, _) in BROKEN.items():
        _compile(CELL_C % parts, pkg / name / f"{name}.so")
    env = dict(os.environ, PYTHONPATH=str(pkg.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return env, pkg


def _sim(env, cwd: Path, cell: str) -> subprocess.CompletedProcess:
    path = cwd / "path.rtn"
    path.write_text(PATH_RTN.format(cell=cell))
    return subprocess.run([sys.executable, "-m", "rattan", "sim", str(path), "--flow", "left->right:cbr:1Mbps",
                           "--duration", "100ms"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


@needs_cc
@pytest.mark.parametrize("name", BROKEN)
def test_rattan_sim_refuses_a_library_it_cannot_register_with_a_message(broken, tmp_path, name):
    import re
    env, pkg = broken
    r = _sim(env, tmp_path, f"{name} {{ rate = 1Mbps }}")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert r.stderr.startswith("rattan: cannot simulate: cell library "), r.stderr
    assert str(pkg / name / f"{name}.so") in r.stderr
    m = re.search(BROKEN[name][1], r.stderr)
    assert m, r.stderr
    if name == "old_abi":
        assert int(m.group(1)) == int(m.group(2)) - 1


@needs_cc
@pytest.mark.parametrize("name", BROKEN)
def test_the_python_api_refuses_it_with_an_engine_error(broken, name):
    import re
    _, pkg = broken
    with pytest.raises(EngineError) as e:
        load_cells(str(pkg / name / f"{name}.so"))
    assert re.search(BROKEN[name][1], str(e.value)), e.value


@needs_cc
def test_a_refused_library_registers_nothing_and_breaks_no_other_cell(broken, tmp_path):
    env, _ = broken
    r = subprocess.run([sys.executable, "-m", "rattan", "cells"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.strip()}
    for name in BROKEN:
        assert rows[name][1:4] == ["plugin", "rattan-broken", "refused"], rows[name]
    assert rows["no_library"][3] == "missing"
    assert "`old_abi` cannot run (refused): cell library" in r.stdout
    assert rows["bw"][1:3] == ["builtin", "engine"]
    ok = _sim(env, tmp_path, "bw { rate = 1Mbps }")  # the built-in `bw` the clash named still runs
    assert ok.returncode == 0, ok.stderr


@needs_cc
def test_a_plugin_cell_without_its_library_is_named_with_what_to_do(broken, tmp_path):
    env, _ = broken
    r = _sim(env, tmp_path, "no_library { rate = 1Mbps }")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cell type `no_library` (plugin rattan-broken) has no implementation" in r.stderr
    assert "reinstall its plugin with pip" in r.stderr


# ---------------------------------------------------------------- pip install, in a fresh venv

def _clean_env(venv_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(argv, cwd, env, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def venv_seeing_this_rattan(env_dir: Path) -> Path:
    """A new virtual environment that sees this environment's packages (rattan among them, however it
    is installed) through a .pth file."""
    venv.EnvBuilder(with_pip=True).create(env_dir)
    (purelib,) = (env_dir / "lib").glob("python3*/site-packages")
    # addsitedir, not a plain path line: this environment's own .pth files (an editable rattan) run too
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "_this_rattan.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
    return env_dir


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory):
    """A new virtual environment that sees this environment's packages (rattan among them, however it
    is installed) through a .pth file, with three plugins pip-installed into it: the policer example
    and fresh `rattan new-cell` C (`scaffold_c`) and Python (`scaffold_py`) projects. The sources are
    copied first: a build writes build/ and *.egg-info next to them."""
    base = tmp_path_factory.mktemp("plugins")
    env_dir = venv_seeing_this_rattan(base / "env")
    src = base / "src"
    shutil.copytree(ROOT / "examples" / "plugins" / "policer", src / "policer",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "*.so", "__pycache__"))
    env = _clean_env(env_dir)
    python = env_dir / "bin" / "python"
    for name, lang in (("scaffold_c", "c"), ("scaffold_py", "python")):
        r = _run([python, "-m", "rattan", "new-cell", name, "--lang", lang, "--dir", src / name], base, env)
        assert r.returncode == 0, r.stderr
    # pip's normal, isolated build: the build environment has no rattan; setup.py finds the header
    r = _run([python, "-m", "pip", "install", "-q", "--no-deps", src / "policer", src / "scaffold_c",
              src / "scaffold_py"], base, env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return env_dir, env, src


def test_rattan_cells_shows_each_plugin_with_its_origin_and_implementation(plugin_venv, tmp_path):
    env_dir, env, _ = plugin_venv
    r = _run([env_dir / "bin" / "python", "-m", "rattan", "cells"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1:4] for line in r.stdout.splitlines() if line.strip()}
    assert rows["policer"] == ["plugin", "rattan-policer", "loaded"]
    assert rows["scaffold_c"] == ["plugin", "rattan-scaffold-c", "loaded"]
    assert rows["scaffold_py"][:2] == ["plugin", "rattan-scaffold-py"]
    assert rows["token_bucket"][:2] == ["builtin", "engine"]
    r = _run([env_dir / "bin" / "python", "-m", "rattan", "cells", "policer"], tmp_path, env)
    lib = next(Path(line.split()[3].rstrip(",")) for line in r.stdout.splitlines() if line.startswith("runs:"))
    assert lib.name == "policer.so" and lib.parent.name == "policer" and lib.is_file()
    assert "rate: rate (required, runtime)" in r.stdout


def test_rattan_sim_runs_the_policer_from_its_library(plugin_venv, tmp_path):
    env_dir, env, _ = plugin_venv
    (tmp_path / "p.rtn").write_text(PATH_RTN.format(cell="policer { rate = 5Mbps, burst = 3000B }"))
    r = _run([env_dir / "bin" / "python", "-m", "rattan", "sim", "p.rtn", "--flow", "left->right:cbr:10Mbps",
              "--duration", "1s", "--json"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    cell = doc["cells"]["policer_1"]
    # one 1500 B packet every 1.2 ms from 0 on: 834, the last at 998.4 ms; by then the bucket has
    # given its 3000 B and 5 Mbit/s for 998.4 ms: 627,000 B, 418 packets. Nothing else passes.
    offered = 834
    passed = (3000 + 5_000_000 * 998_400_000 // 8_000_000_000) // 1500
    assert (cell["in_packets"], cell["out_packets"]) == (offered, passed)
    assert cell["dropped_by_reason"] == {"policer": offered - passed}
    # its schema's x-rattan.rate_limit gives the configured rate over time, as a built-in's does
    assert set(doc["series"]["cells"]["policer_1"]["rate_bps"]) == {5e6}


@pytest.mark.parametrize("project", ["policer", "scaffold_c", "scaffold_py"])
def test_the_example_in_each_plugins_readme_checks(plugin_venv, tmp_path, project):
    import re
    env_dir, env, src = plugin_venv
    (block,) = re.findall(r"```rtn\n(.*?)```", (src / project / "README.md").read_text(), re.S)
    (tmp_path / "readme.rtn").write_text(block)
    r = _run([env_dir / "bin" / "python", "-m", "rattan", "check", "readme.rtn"], tmp_path, env)
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("project,outcome", [("policer", "8 passed"), ("scaffold_c", "2 passed"),
                                             ("scaffold_py", "1 passed")])
def test_each_plugins_own_tests_pass_from_outside_the_repository(plugin_venv, tmp_path, project, outcome):
    """The tests a plugin ships, copied to a folder of their own, with the venv's pytest."""
    env_dir, env, src = plugin_venv
    shutil.copytree(src / project / "tests", tmp_path / "tests")
    r = _run([env_dir / "bin" / "python", "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests"],
             tmp_path, env, timeout=600)
    assert r.returncode == 0 and outcome in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_rattan_run_polices_real_packets_and_the_control_api_changes_the_plugins_rate(plugin_venv, tmp_path):
    """As root, in namespaces: the command inside the run sets the policer's rate to 0 through the
    control API, then pings with 1428 B packets: the full 3000 B bucket lets 2 of 5 through (at the
    file's 10 Mbit/s all 5 would pass), dropped by the plugin's own rule."""
    from tests.runtime.conftest import WHY_NOT, _namespaces
    if WHY_NOT:
        pytest.skip(WHY_NOT)
    env_dir, env, _ = plugin_venv
    python = env_dir / "bin" / "python"
    (tmp_path / "r.rtn").write_text("channel c {\n    cell p: policer { rate = 10Mbps, burst = 3000B }\n"
                                    "    left -> p -> right\n    right -> left\n}\n")
    before = _namespaces()
    inner = (f"{python} -m rattan ctl set p rate=0bps >/dev/null && ping -q -c 5 -i 0.1 -s 1400 $RATTAN_RIGHT_IP; "
             f"{python} -m rattan ctl openapi > {tmp_path / 'openapi.json'}; {python} -m rattan ctl --json telemetry p")
    r = _run([python, "-m", "rattan", "run", "r.rtn", "--http", f"unix:{tmp_path / 'ctl.sock'}", "--", "sh", "-c",
              inner], tmp_path, env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 packets transmitted, 2 received" in r.stdout, r.stdout
    telemetry = json.loads(r.stdout[r.stdout.index("{"):])
    assert (telemetry["in_packets"], telemetry["out_packets"]) == (5, 2)
    assert telemetry["dropped_by_reason"] == {"policer": 3}
    api = json.loads((tmp_path / "openapi.json").read_text())  # the change body is the plugin schema's
    change = api["components"]["schemas"]["Change_policer"]
    assert set(change["properties"]) == {"rate", "at"}  # its one runtime parameter, and when
    assert change["properties"]["rate"]["description"].startswith("Token rate in bit/s")
    assert _namespaces() - before == set()


class VenvLsp(LspClient):
    """The package's stdio client, speaking to `python -m rattan lsp` of another environment."""

    def __init__(self, python: Path, cwd: Path, env: dict) -> None:
        super().__init__(cwd=str(cwd), env=env, command=[str(python), "-m", "rattan", "lsp", "--stdio"],
                         inherit_env=False)


def test_the_plugin_cell_in_dot_the_packet_log_plots_and_the_editor(plugin_venv, tmp_path):
    """Surfaces that read the schema or the engine's counters: DOT labels its rate, the packet log's
    summary names its drops, `rattan plot` draws a sim of it, and the language server describes it
    on hover (with where it comes from) and completes its parameters."""
    env_dir, env, _ = plugin_venv
    python = env_dir / "bin" / "python"
    (tmp_path / "p.rtn").write_text(PATH_RTN.format(cell="policer { rate = 5Mbps, burst = 3000B }"))
    r = _run([python, "-m", "rattan", "compile", "p.rtn", "--emit", "dot"], tmp_path, env)
    assert r.returncode == 0 and '"c/policer_1" [label="policer_1\\npolicer\\n5Mbps"' in r.stdout, r.stdout + r.stderr
    r = _run([python, "-m", "rattan", "sim", "p.rtn", "--flow", "left->right:cbr:10Mbps", "--duration", "500ms",
              "--json", "--packet-log", "p.log"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    (tmp_path / "p.json").write_text(r.stdout)
    dropped = json.loads(r.stdout)["cells"]["policer_1"]["dropped_packets"]
    r = _run([python, "-m", "rattan", "log", "p.log", "--json"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    (summary,) = [c for c in json.loads(r.stdout) if c["cell"] == "policer_1"]
    assert summary["type"] == "policer" and summary["dropped_by_reason"] == {"policer": dropped} and dropped > 0
    r = _run([python, "-m", "rattan", "plot", "p.json", "-o", "p.png"], tmp_path, env)
    assert r.returncode == 0 and (tmp_path / "p.png").stat().st_size > 10_000, r.stderr

    client = VenvLsp(python, tmp_path, env)
    try:
        client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}}, timeout=60)
        client.notify("initialized", {})
        uri = (tmp_path / "e.rtn").as_uri()
        text = PATH_RTN.format(cell="policer { rate = 1Mbps,  }")
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan", "version": 1,
                                                                "text": text}})
        hover = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                      "position": {"line": 1, "character": 12}}, timeout=60)
        value = hover["result"]["contents"]["value"]
        assert "policer — Single-rate policer" in value and "origin: plugin rattan-policer" in value, value
        done = client.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                          "position": {"line": 1, "character": 37}})["result"]
        labels = [i["label"] for i in (done["items"] if isinstance(done, dict) else done)]
        assert "burst" in labels, labels
    finally:
        client.close()

"""`rattan new-cell` and `rattan include-dir`: what the scaffold holds, the names it refuses, the folder
it never overwrites, how the C scaffold's setup.py finds the header, and the policer example staying
what new-cell writes. Installing and running the scaffolds: tests/test_plugins_build.py."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from rattan.tools.new_cell import HEADER, include_dir, render
from tests.conftest import ROOT

CC = shutil.which("cc") or shutil.which("gcc")


def test_include_dir_prints_the_folder_of_the_header(run_cli):
    code, out, err = run_cli("include-dir")
    assert code == 0, err
    assert out.count("\n") == 1
    folder = Path(out.strip())
    assert (folder / HEADER).is_file()
    assert "#define RT_CELL_API" not in (folder / HEADER).read_text()  # the header, not a cell
    assert "RT_PLUGIN(" in (folder / HEADER).read_text()


def test_the_c_scaffold_is_a_distribution_with_schema_source_readme_and_tests(run_cli, tmp_path):
    code, out, err = run_cli("new-cell", "my_link", "--dir", str(tmp_path / "my_link"))
    assert code == 0, err
    assert f"pip install {tmp_path / 'my_link'}" in out
    root = tmp_path / "my_link"
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    cell = "src/rattan_my_link/my_link"
    assert files == {"pyproject.toml", "setup.py", "README.md", ".gitignore", "src/rattan_my_link/__init__.py",
                     f"{cell}/cell.schema.json", f"{cell}/my_link.c", "tests/test_my_link.py"}
    schema = json.loads((root / cell / "cell.schema.json").read_text())
    assert schema["title"] == "my_link"
    assert [k for k, v in schema["properties"].items() if v.get("x-runtime")] == ["rate"]
    assert {v["x-unit"] for v in schema["properties"].values()} == {"rate", "size"}
    source = (root / cell / "my_link.c").read_text()
    for part in ("rt_cfg_u64(cfg, \"rate\")", ".next_event =", ".fire =", ".control =", ".read =",
                 "RT_PLUGIN(&rt_cell_my_link);"):
        assert part in source
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points."rattan.cells"]\nmy_link = "rattan_my_link:cells"' in pyproject
    for py in ("setup.py", "src/rattan_my_link/__init__.py", "tests/test_my_link.py"):
        ast.parse((root / py).read_text(), py)


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_the_c_scaffold_compiles_without_a_warning_against_the_header(tmp_path):
    files = render("my_link", "c")
    src = tmp_path / "my_link.c"
    src.write_text(files["src/rattan_my_link/my_link/my_link.c"])
    r = subprocess.run([CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", f"-I{include_dir()}",
                        str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_python_scaffold_names_its_class_in_its_schema(run_cli, tmp_path):
    code, _, err = run_cli("new-cell", "wobble", "--lang", "python", "--dir", str(tmp_path / "w"))
    assert code == 0, err
    root = tmp_path / "w" / "src" / "rattan_wobble"
    schema = json.loads((root / "wobble" / "cell.schema.json").read_text())
    assert schema["title"] == "wobble"
    module, _, cls = schema["x-rattan"]["python"].partition(":")
    assert module == "rattan_wobble.wobble.cell"
    tree = ast.parse((root / "wobble" / "cell.py").read_text())
    (klass,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert klass.name == cls and [b.id for b in klass.bases] == ["PythonCell"]
    assert {f.name for f in klass.body if isinstance(f, ast.FunctionDef)} == {"inner", "start", "tick", "set"}
    tick = schema["x-rattan"]["tick"]
    assert schema["properties"][tick]["x-unit"] == "time"
    assert (tmp_path / "w" / "tests" / "test_wobble.py").is_file()
    assert not (tmp_path / "w" / "setup.py").exists()  # nothing to compile


@pytest.mark.parametrize("name,why", [
    ("bw", "a cell type `bw` exists already (builtin)"),
    ("droptail", "already a queue kind or record"),
    ("gilbert_elliott", "already a queue kind or record"),
    ("channel", "is a word of the .rtn language"),
    ("every", "is a word of the .rtn language"),
    ("MyCell", "use lower-case letters"),
    ("2fast", "use lower-case letters"),
    ("my-cell", "use lower-case letters"),
])
def test_a_name_that_cannot_be_a_new_type_is_refused_and_nothing_is_written(run_cli, tmp_path, name, why):
    code, out, err = run_cli("new-cell", name, "--dir", str(tmp_path / "x"))
    assert code == 2 and why in err and out == ""
    assert not (tmp_path / "x").exists()


def test_an_existing_folder_is_never_overwritten(run_cli, tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    code, _, err = run_cli("new-cell", "mine", "--dir", str(dest))
    assert code == 2 and "exists already" in err and "--dir" in err
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_the_default_folder_is_the_name_in_the_current_folder(tmp_path, monkeypatch, capsys):
    from rattan.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["new-cell", "here"]) == 0
    assert "pip install ./here" in capsys.readouterr().out  # a bare word would be a package name to pip
    assert (tmp_path / "here" / "src" / "rattan_here" / "here" / "here.c").is_file()


def test_the_policer_example_keeps_the_packaging_new_cell_writes():
    """examples/plugins/policer was made with `rattan new-cell policer --lang c`; its packaging is
    still what new-cell writes today (its cell, schema, README and tests are its own)."""
    files = render("policer", "c")
    root = ROOT / "examples" / "plugins" / "policer"
    for rel in ("pyproject.toml", "setup.py", ".gitignore", "src/rattan_policer/__init__.py"):
        assert (root / rel).read_text() == files[rel], rel


# ---- how the C scaffold's setup.py finds rattan_engine.h when pip builds it

def _finder(tmp_path: Path) -> Path:
    """The scaffold's setup.py, and a script that prints what its rattan_include() finds."""
    (tmp_path / "setup.py").write_text(render("probe", "c")["setup.py"])
    script = tmp_path / "where.py"
    script.write_text(textwrap.dedent("""
        import runpy, sys
        print(runpy.run_path(sys.argv[1], run_name="not_main")["rattan_include"]())
    """))
    return script


def _where(python, script, tmp_path, env) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), str(script), str(tmp_path / "setup.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def _bare_python(tmp_path: Path) -> Path:
    """A Python that cannot import rattan (a virtual environment without packages, setuptools from
    this one: the scaffold's setup.py imports it)."""
    import setuptools
    venv.EnvBuilder(with_pip=False).create(tmp_path / "bare")
    site = next((tmp_path / "bare" / "lib").glob("python3*/site-packages"))
    (site / "setuptools_only.pth").write_text(str(Path(setuptools.__file__).parent.parent) + "\n")
    python = tmp_path / "bare" / "bin" / "python"
    r = subprocess.run([str(python), "-c", "import setuptools, sys; import rattan"], cwd=tmp_path, capture_output=True,
                       text=True)
    if "No module named 'rattan'" not in r.stderr:  # setuptools' folder also holds rattan: cannot isolate
        pytest.skip(f"cannot make a Python without rattan here: {r.stderr[-300:]}")
    return python


def _env(**kw) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RATTAN_INCLUDE", "PYTHONNOUSERSITE")}
    env.update(kw)
    return env


def test_setup_finds_the_header_through_rattan_include_first(tmp_path):
    script = _finder(tmp_path)
    other = tmp_path / "inc"
    other.mkdir()
    (other / HEADER).write_text("/* a header elsewhere */\n")
    r = _where(sys.executable, script, tmp_path, _env(RATTAN_INCLUDE=str(other)))
    assert r.stdout.strip() == str(other), r.stderr
    r = _where(sys.executable, script, tmp_path, _env(RATTAN_INCLUDE=str(tmp_path)))
    assert r.returncode != 0 and f"$RATTAN_INCLUDE is {tmp_path}, which has no {HEADER}" in r.stderr


def test_setup_finds_the_header_of_the_rattan_it_imports(tmp_path):
    """pip install --no-build-isolation: the build runs where rattan is importable. Here that rattan
    (on PYTHONPATH) is another than the interpreter's own, whose header the later guesses would find."""
    fake = tmp_path / "fake"
    (fake / "rattan" / "tools" / "new_cell").mkdir(parents=True)
    for d in ("rattan", "rattan/tools"):
        (fake / d / "__init__.py").write_text("")
    (fake / "rattan" / "tools" / "new_cell" / "__init__.py").write_text(
        f"def include_dir():\n    return {str(fake)!r}\n")
    (fake / HEADER).write_text("/* the imported rattan's */\n")
    r = _where(sys.executable, _finder(tmp_path), tmp_path, _env(PYTHONPATH=str(fake)))
    assert r.stdout.strip() == str(fake), r.stderr


def test_setup_finds_the_header_outside_an_isolated_build(tmp_path):
    """pip's isolated build: PYTHONPATH holds a build environment that hides the target's packages
    (as pip's own sitecustomize does); the same interpreter without it sees rattan."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "sitecustomize.py").write_text(
        "import sys\nsys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n"
        # an editable install's finder is not on sys.path: drop it too, as if rattan were installed normally
        "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]\n")
    import setuptools
    site = Path(setuptools.__file__).parent.parent
    for name in ("setuptools", "pkg_resources", "_distutils_hack"):  # the build environment's setuptools
        if (site / name).exists():
            (overlay / name).symlink_to(site / name)
    env = _env(PYTHONPATH=str(overlay), PYTHONNOUSERSITE="1", PATH=str(tmp_path))  # no `rattan` command
    probe = subprocess.run([sys.executable, "-c", "import rattan"], cwd=tmp_path, env=env, capture_output=True,
                           text=True)
    assert "No module named 'rattan'" in probe.stderr  # the overlay hides it, as pip's does
    r = _where(sys.executable, _finder(tmp_path), tmp_path, env)
    assert r.stdout.strip() == str(include_dir()), r.stderr


def test_setup_finds_the_header_through_the_command_on_path(tmp_path):
    rattan = shutil.which("rattan")
    if rattan is None:
        pytest.skip("no `rattan` command on PATH")
    python = _bare_python(tmp_path)
    env = _env(PATH=f"{Path(rattan).parent}{os.pathsep}{os.environ['PATH']}")
    r = _where(python, _finder(tmp_path), tmp_path, env)
    assert r.stdout.strip() == str(include_dir()), r.stderr


def test_setup_says_what_it_tried_when_nothing_has_the_header(tmp_path):
    python = _bare_python(tmp_path)
    r = _where(python, _finder(tmp_path), tmp_path, _env(PATH=str(python.parent)))
    assert r.returncode != 0
    assert f"cannot find rattan's {HEADER}" in r.stderr
    assert "import rattan: ModuleNotFoundError" in r.stderr and "`rattan include-dir` on PATH: not found" in r.stderr
    assert "set RATTAN_INCLUDE" in r.stderr

"""Compiles the cell's C into `policer.so` in its folder, against the installed rattan's header.

The library is a plain shared object, not a Python module: rattan's engine opens it (rt_load_cells)
and registers the cells its RT_PLUGIN(...) lists. Its calls into the engine (rt_emit, rt_cfg_u64, ...)
are resolved then, from the engine already loaded in the process.

pip builds in an isolated environment that has no rattan, so the header's folder is found by, in
order: $RATTAN_INCLUDE; `import rattan` (pip install --no-build-isolation); the interpreter pip
installs into (pip runs this file with it), outside the build environment; `rattan include-dir`.
"""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HEADER = "rattan_engine.h"
ASK = "from rattan.tools.new_cell import include_dir; print(include_dir())"


def _found(folder):
    return folder if folder and (Path(folder) / HEADER).is_file() else None


def _ask(argv, env=None):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return _found(r.stdout.strip()) if r.returncode == 0 else None


def rattan_include() -> str:
    """The folder of the installed rattan's rattan_engine.h."""
    env = os.environ.get("RATTAN_INCLUDE")
    if env:  # said explicitly: no other guess
        if _found(env):
            return env
        sys.exit(f"$RATTAN_INCLUDE is {env}, which has no {HEADER}: set it to the folder `rattan include-dir` "
                 "prints, or unset it")
    tried = []
    try:
        from rattan.tools.new_cell import include_dir
        return str(include_dir())
    except Exception as e:  # pip's isolated build: no rattan here
        tried.append(f"import rattan: {type(e).__name__}: {e}")
    # pip's build environment is its PYTHONPATH (and no user site); without them this interpreter
    # sees the environment it installs into
    outside = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONNOUSERSITE")}
    found = _ask([sys.executable, "-c", ASK], outside)
    if found:
        return found
    tried.append(f"{sys.executable} outside the build environment: no rattan")
    found = _ask(["rattan", "include-dir"])
    if found:
        return found
    tried.append("`rattan include-dir` on PATH: not found")
    sys.exit(f"cannot find rattan's {HEADER} ({'; '.join(tried)}). Install rattan into the environment "
             "first, or set RATTAN_INCLUDE to the folder `rattan include-dir` prints.")


class BuildCellLibrary(build_ext):
    """A cell library is named `policer.so`: rattan loads it by path, not as a Python module.
    The header is looked for only when something is compiled (not to build an sdist)."""

    def build_extensions(self):
        include = rattan_include()
        for ext in self.extensions:
            ext.include_dirs.append(include)
        super().build_extensions()

    def get_ext_filename(self, fullname):
        return os.path.join(*fullname.split(".")) + ".so"

    def get_export_symbols(self, ext):
        return []  # no PyInit_: the library exports rt_plugin_abi and rt_plugin_cells (RT_PLUGIN)


CELL = Path("src") / "rattan_policer" / "policer"
if __name__ == "__main__":  # as pip's backend runs it; tests import it for rattan_include alone
    setup(
        ext_modules=[Extension(
            "rattan_policer.policer.policer",
            sources=[str(p) for p in sorted(CELL.glob("*.c"))],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
            libraries=["m"],
        )],
        cmdclass={"build_ext": BuildCellLibrary},
    )

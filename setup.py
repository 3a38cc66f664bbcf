"""Package layout (metadata is in pyproject.toml).

The top-level folders grammar/, schemas/ and stdlib_cells/ ship inside the
package as rattan.grammar, rattan.schemas and rattan.stdlib_cells. In the
source tree, rattan/grammar, rattan/schemas and rattan/stdlib_cells are
symlinks to them, so the checkout's `rattan` package has the installed layout
(`python -m rattan` and the benchmarks work from the repository root with any
kind of install); the build reads the real folders through `package_dir`, so
wheels and sdists hold files, never links.

Every folder under those four roots is a package (Python or data only: a
cell folder, rattan/engine/csrc) found by walking the tree, so a new module,
cell or data file ships without editing this file; tests/test_install.py
compares a built wheel with the tree.
"""
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
# Where each top-level package's files are; rattan/'s links to the last three are not followed.
ROOTS = {"rattan": "rattan", "rattan.grammar": "grammar", "rattan.schemas": "schemas",
         "rattan.stdlib_cells": "stdlib_cells"}
# The kinds of file read at run time (grammar, schemas, cell docs, `rattan new-cell`'s templates) or
# compiled at install (C; the header also for plugins' cells).
DATA_FILES = ["*.lark", "*.json", "*.md", "*.c", "*.h", "*.j2"]


def find_packages() -> list[str]:
    """Every folder under each root, at any depth: Python packages and data folders alike
    (a cell folder, rattan/engine/csrc), so a new module, cell or data file ships unlisted."""
    found = []
    for name, folder in ROOTS.items():
        for dirpath, dirnames, _ in os.walk(os.path.join(HERE, folder)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", "."))
                                 and not os.path.islink(os.path.join(dirpath, d)))
            rel = os.path.relpath(dirpath, os.path.join(HERE, folder))
            found.append(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    return found


packages = find_packages()
# The C engine is compiled by cffi (API mode) at install time.
setup(packages=packages, package_dir={n: d for n, d in ROOTS.items() if n != "rattan"},
      package_data={name: DATA_FILES for name in packages},
      cffi_modules=["rattan/engine/build.py:ffibuilder"])

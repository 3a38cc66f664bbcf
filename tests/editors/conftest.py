"""Fixtures for the editor integrations: the tree-sitter parser compiled once per session."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from tests.conftest import ROOT

GRAMMAR = ROOT / "editors" / "tree-sitter-rattan"


def compile_parser(dest: Path) -> Path:
    """editors/tree-sitter-rattan/src compiled into `dest` (a shared library), as an editor does."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build the tree-sitter parser")
    src = GRAMMAR / "src"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-I", str(src), str(src / "parser.c"),
                    str(src / "scanner.c"), "-o", str(dest)], check=True)
    return dest


@pytest.fixture(scope="session")
def ts_language(tmp_path_factory):
    """The grammar as a py-tree-sitter Language."""
    tree_sitter = pytest.importorskip(
        "tree_sitter", reason="py-tree-sitter is not installed (pip install -e '.[test]')")
    lib = ctypes.cdll.LoadLibrary(str(compile_parser(tmp_path_factory.mktemp("ts") / "rattan.so")))
    lib.tree_sitter_rattan.restype = ctypes.c_void_p
    with warnings.catch_warnings():  # an int pointer is deprecated in favour of a capsule
        warnings.simplefilter("ignore", DeprecationWarning)
        return tree_sitter.Language(lib.tree_sitter_rattan())


@pytest.fixture(scope="session")
def ts_parser(ts_language):
    import tree_sitter
    return tree_sitter.Parser(ts_language)

"""Each built-in cell's tests live in its folder, `stdlib_cells/<type>/test_<type>.py`, next to its schema,
C source and README, so that a cell is added, read or removed as one folder. The queue kinds, which are
not cells, have theirs in `stdlib_cells/queues/test_queues.py`."""
from __future__ import annotations

import ast

from tests.conftest import ROOT

CELLS = ROOT / "stdlib_cells"


def _problems(folder) -> list[str]:
    """What keeps `folder`'s own test file from being collected with at least one test."""
    name = folder.name
    path = folder / f"test_{name}.py"
    if not path.is_file():
        return [f"{name}: no {path.relative_to(ROOT)}"]
    out = []
    # the package makes pytest import the file by its full name, with the checkout (and tests/) on the path
    if not (folder / "__init__.py").is_file():
        out.append(f"{name}: no __init__.py beside {path.name}")
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    if not any(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body):
        out.append(f"{name}: {path.name} has no test function")
    return out


def test_every_built_in_cell_folder_has_its_own_tests():
    folders = sorted(p.parent for p in CELLS.glob("*/cell.schema.json"))
    assert len(folders) >= 14 and "queues" not in {f.name for f in folders}
    problems = [p for f in folders + [CELLS / "queues"] for p in _problems(f)]
    assert problems == []

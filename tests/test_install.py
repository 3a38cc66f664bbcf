"""`pip install .` (not editable) ships the grammar, schemas and every cell folder."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_regular_install_is_complete(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(ROOT)], check=True, capture_output=True)
    pkg = target / "rattan"
    assert (pkg / "grammar" / "rtn.lark").is_file()
    assert (pkg / "schemas" / "plan.schema.json").is_file()
    assert (pkg / "schemas" / "document.schema.json").is_file()
    for cell in (ROOT / "stdlib_cells").iterdir():
        if cell.is_dir() and (cell / "cell.schema.json").exists():
            assert (pkg / "stdlib_cells" / cell.name / "cell.schema.json").is_file(), cell.name
    env = dict(os.environ, PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-m", "rattan", "compile", str(ROOT / "examples" / "compound.rtn")],
                       env=env, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-c", "import rattan; print(rattan.__file__)"], env=env, cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.stdout.strip().startswith(str(target))

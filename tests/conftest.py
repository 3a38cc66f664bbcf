"""Shared fixtures: paths to the repository, its examples, and a CLI runner."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED_EXAMPLES = ROOT.parent / "shared" / "examples"


def example_files(kinds=(".rtn", ".toml", ".yaml")) -> list[Path]:
    """The reference examples: the shared ones if present, else the copies in examples/."""
    base = SHARED_EXAMPLES if SHARED_EXAMPLES.is_dir() else EXAMPLES
    return sorted(p for p in base.iterdir() if p.suffix in kinds)


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `rattan ARGS` in-process from the repo root; returns (exit, stdout, stderr)."""
    from rattan.cli import main

    def run(*args: str):
        monkeypatch.chdir(ROOT)
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run

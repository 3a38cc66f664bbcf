"""Finds the compiled engine (`rattan.engine._engine`) before the binding imports it.

An editable install compiles the extension into this folder. A regular install
(`pip install .`, a wheel) compiles it into site-packages only, so the source
tree of a checkout, imported by `python -m rattan` or a benchmark run from the
repository root, has none: then the installed distribution's extension is
loaded in its place, if its ABI is the one this tree's header declares.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Iterator

HERE = Path(__file__).resolve().parent
MODULE = __package__ + "._engine"
DISTRIBUTION = "rattan"


def header_abi() -> int | None:
    """RT_ABI_VERSION of csrc/rattan_engine.h next to this file (None if the header is missing)."""
    try:
        text = (HERE / "csrc" / "rattan_engine.h").read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r"^#define\s+RT_ABI_VERSION\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def _is_extension(name: str) -> bool:
    return any(name == "_engine" + s for s in importlib.machinery.EXTENSION_SUFFIXES)


def candidates() -> Iterator[Path]:
    """This folder's extension, then those of the installed `rattan` distributions elsewhere."""
    own = sorted(p for p in HERE.iterdir() if _is_extension(p.name))
    yield from own
    # Every `rattan` on sys.path, not only the first: a checkout's root, first on sys.path, often
    # holds the rattan.egg-info a `pip install .` left there, which lists no built engine.
    files = [f for dist in metadata.distributions(name=DISTRIBUTION) for f in dist.files or []]
    for f in files:
        if f.parts[:2] == ("rattan", "engine") and len(f.parts) == 3 and _is_extension(f.name):
            path = Path(f.locate()).resolve()
            if path.is_file() and path not in own:
                yield path


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_engine() -> ModuleType:
    """The first extension whose ABI matches the header, registered as `rattan.engine._engine`.

    Raises ImportError saying what was found and why none fits, and how to build one.
    """
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    expected = header_abi()
    refused = []
    for path in candidates():
        try:
            module = _load(path)
        except ImportError as e:
            refused.append(f"{path} does not load ({e})")
            continue
        abi = module.lib.rt_abi_version()
        if expected is not None and abi != expected:
            refused.append(f"{path} has engine ABI {abi}, this rattan needs {expected}")
            continue
        sys.modules[MODULE] = module
        setattr(sys.modules[__package__], "_engine", module)
        return module
    why = "; ".join(refused) if refused else (
        f"no compiled engine in {HERE} and no installed `{DISTRIBUTION}` distribution holds one")
    raise ImportError(f"the rattan engine is not built: {why}. Build it by installing rattan "
                      f"(`pip install .`, or `pip install -e .` in a checkout)")

"""Rattan: a network path emulator. The package: compiler, registry, engine binding, tools."""
__version__ = "0.1.0"  # the distribution's version too: pyproject.toml reads it from here


# The library (rattan.library), imported on first use so that `import rattan` (the CLI's) stays cheap.
_LIBRARY = ("compile", "load_plan", "plan_hash", "sim", "run", "CompileResult", "Diagnostic", "SimResult",
            "FlowResult", "CellResult", "Run", "Endpoint", "ExecResult", "Process", "PacketLog",
            "CompileError", "RunError", "SimError")


def __getattr__(name: str):
    # `from rattan import PythonCell` without importing the cell machinery for every command
    if name == "PythonCell":
        from .pycell import PythonCell
        return PythonCell
    if name in _LIBRARY:
        from . import library
        return getattr(library, name)
    raise AttributeError(f"module 'rattan' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), "PythonCell", *_LIBRARY])

"""Rattan: a network path emulator. The package: compiler, registry, engine binding, tools."""
__version__ = "0.1.0"  # the distribution's version too: pyproject.toml reads it from here


def __getattr__(name: str):
    # `from rattan import PythonCell` without importing the cell machinery for every command
    if name == "PythonCell":
        from .pycell import PythonCell
        return PythonCell
    raise AttributeError(f"module 'rattan' has no attribute {name!r}")

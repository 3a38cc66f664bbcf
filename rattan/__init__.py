"""Rattan: a network path emulator. The package: compiler, registry, engine binding, tools."""
__version__ = "0.1.0"  # the distribution's version too: pyproject.toml reads it from here

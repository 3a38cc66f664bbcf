"""The cell registry: built-in cells from stdlib_cells/ and plugins from entry points."""
from .registry import CellType, Registry, default_registry

__all__ = ["CellType", "Registry", "default_registry"]

"""The cell registry: built-in cells from stdlib_cells/ and plugins from entry points."""
from .registry import CellType, RecordKind, Registry, default_registry

__all__ = ["CellType", "RecordKind", "Registry", "default_registry"]

"""The `cellular` cell for Rattan: its folder, which the `rattan.cells` entry point names."""
from pathlib import Path


def cells() -> list[str]:
    """The folders of this distribution's cells (each holds cell.schema.json)."""
    return [str(Path(__file__).resolve().parent / "cellular")]

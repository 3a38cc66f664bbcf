"""The `leo` cell's folder: its schema, and its class in cell.py."""

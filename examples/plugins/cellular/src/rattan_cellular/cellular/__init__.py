"""The `cellular` cell's folder: its schema, and its class in cell.py."""

"""Tests of the `duplicate` cell. A package, so that pytest imports them by their full name (stdlib_cells.duplicate.test_duplicate)
with the checkout on the path, whose tests/ has the shared helpers."""

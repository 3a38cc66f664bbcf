"""Tests of the `corrupt` cell. A package, so that pytest imports them by their full name (stdlib_cells.corrupt.test_corrupt)
with the checkout on the path, whose tests/ has the shared helpers."""

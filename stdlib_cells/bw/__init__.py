"""Tests of the `bw` cell. A package, so that pytest imports them by their full name (stdlib_cells.bw.test_bw)
with the checkout on the path, whose tests/ has the shared helpers."""

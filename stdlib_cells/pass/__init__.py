"""Tests of the `pass` cell. A package, so that pytest imports them by their full name (stdlib_cells.pass.test_pass)
with the checkout on the path, whose tests/ has the shared helpers."""

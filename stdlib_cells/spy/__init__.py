"""Tests of the `spy` cell. A package, so that pytest imports them by their full name (stdlib_cells.spy.test_spy)
with the checkout on the path, whose tests/ has the shared helpers."""

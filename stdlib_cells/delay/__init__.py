"""Tests of the `delay` cell. A package, so that pytest imports them by their full name (stdlib_cells.delay.test_delay)
with the checkout on the path, whose tests/ has the shared helpers."""

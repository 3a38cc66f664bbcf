"""Tests of the `outage` cell. A package, so that pytest imports them by their full name (stdlib_cells.outage.test_outage)
with the checkout on the path, whose tests/ has the shared helpers."""

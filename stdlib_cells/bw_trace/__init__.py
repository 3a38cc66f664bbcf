"""Tests of the `bw_trace` cell. A package, so that pytest imports them by their full name (stdlib_cells.bw_trace.test_bw_trace)
with the checkout on the path, whose tests/ has the shared helpers."""

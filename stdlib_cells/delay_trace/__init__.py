"""Tests of the `delay_trace` cell. A package, so that pytest imports them by their full name (stdlib_cells.delay_trace.test_delay_trace)
with the checkout on the path, whose tests/ has the shared helpers."""

"""Tests of the `loss_trace` cell. A package, so that pytest imports them by their full name (stdlib_cells.loss_trace.test_loss_trace)
with the checkout on the path, whose tests/ has the shared helpers."""

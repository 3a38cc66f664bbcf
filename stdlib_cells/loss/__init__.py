"""Tests of the `loss` cell. A package, so that pytest imports them by their full name (stdlib_cells.loss.test_loss)
with the checkout on the path, whose tests/ has the shared helpers."""

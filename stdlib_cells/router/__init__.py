"""Tests of the `router` cell. A package, so that pytest imports them by their full name (stdlib_cells.router.test_router)
with the checkout on the path, whose tests/ has the shared helpers."""

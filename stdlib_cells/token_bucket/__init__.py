"""Tests of the `token_bucket` cell. A package, so that pytest imports them by their full name (stdlib_cells.token_bucket.test_token_bucket)
with the checkout on the path, whose tests/ has the shared helpers."""

"""The `aggregate` cell. A package, so that pytest imports its test by its full name (stdlib_cells.aggregate.test_aggregate)
with the checkout on the path, whose tests/ has the fixtures of real runs."""

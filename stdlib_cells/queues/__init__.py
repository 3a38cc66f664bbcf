"""Tests of the queue kinds of `bw` and `bw_trace`. A package, so that pytest imports them by their full name
(stdlib_cells.queues.test_queues) with the checkout on the path, whose tests/ has the shared helpers."""

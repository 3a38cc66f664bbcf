"""Tests of the `delay_per_packet` cell. A package, so that pytest imports them by their full name
(stdlib_cells.delay_per_packet.test_delay_per_packet) with the checkout on the path, whose tests/ has the shared helpers."""

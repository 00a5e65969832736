"""The hop arithmetic of bench.e2e_latency: each hop from the records an event leaves."""

from __future__ import annotations

import math

from bench.e2e_latency import Delivery, hops


def test_hops_split_the_path_of_each_event() -> None:
    d = [
        Delivery(1, "service.suspension.progress", 100.000, 100.050, 100.010, 100.020),
        Delivery(2, "service.suspension.completed", 200.000, 200.300, 200.100, 200.250),
    ]
    h = hops(d)
    assert h.total.n == 2 and math.isclose(h.total.max, 300.0, abs_tol=1e-6)
    assert math.isclose(h.hook_row.p50, 10.0, abs_tol=1e-6)
    assert math.isclose(h.row_xadd.max, 150.0, abs_tol=1e-6)
    assert math.isclose(h.xadd_client.p50, 30.0, abs_tol=1e-6)


def test_a_missing_record_leaves_only_its_hops_out() -> None:
    # Delivered, but its stream entry was trimmed: the total counts, the Redis hops don't.
    h = hops([Delivery(3, "service.resumption.progress", 10.0, 10.2, 10.1, None)])
    assert (h.total.n, h.hook_row.n, h.row_xadd.n, h.xadd_client.n) == (1, 1, 0, 0)

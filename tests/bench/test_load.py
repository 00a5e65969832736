"""bench.load_check's lost-event check against a service's history (no stack: plain data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bench.load_check import CONNECT_TOLERANCE_S, check_listener
from bench.load_listeners import Connection, Listener

T0 = datetime.fromisoformat("2027-01-15T08:00:00+00:00").timestamp()


def _history() -> list[dict[str, Any]]:
    """Provisioning (ids 10-13, t0..t0+3) then suspension (ids 20-22, t0+30..t0+32)."""
    out = []
    for op, ids, start in (("prov", (10, 11, 12, 13), 0), ("susp", (20, 21, 22), 30)):
        for k, i in enumerate(ids):
            stamp = f"2027-01-15T08:{(start + k) // 60:02d}:{(start + k) % 60:02d}+00:00"
            out.append(
                {"id": i, "event_type": "x", "data": {"flow_run_id": op, "timestamp": stamp}}
            )
    return out


def _listener(ids: list[int], ready_offset: float = 0.0) -> Listener:
    lst = Listener(0, "svc", "now", T0)
    lst.connections.append(Connection(T0 + ready_offset, None, ready=T0 + ready_offset))
    lst.ids = ids
    return lst


def test_every_id_once_in_order_is_clean() -> None:
    v = check_listener(_listener([10, 11, 12, 13, 20, 21, 22]), _history())
    assert (v.delivered, v.lost, v.duplicates, v.out_of_order, v.unknown) == (7, 0, 0, 0, 0)
    assert not v.bad_start


def test_gap_duplicate_disorder_unknown_are_counted() -> None:
    v = check_listener(_listener([10, 11, 13, 13, 12, 20, 22, 99]), _history())
    assert v.lost == 1  # 21
    assert v.duplicates == 1 and v.out_of_order == 1 and v.unknown == 1


def test_a_late_join_starts_at_its_operations_first_event() -> None:
    # Joined during the suspension: its catch-up starts at 20; the provisioning is not owed.
    assert check_listener(_listener([20, 21, 22], ready_offset=31), _history()).lost == 0
    # Starting mid-operation loses the operation's earlier events.
    v = check_listener(_listener([21, 22], ready_offset=31), _history())
    assert v.bad_start and v.lost == 1


def test_events_after_the_connection_are_owed_even_before_the_start() -> None:
    # Connected during the provisioning but got only the suspension: 11-13 were stamped
    # more than the tolerance after the connection was ready, so they were lost.
    ready = 1 - CONNECT_TOLERANCE_S - 0.5
    assert check_listener(_listener([20, 21, 22], ready_offset=ready), _history()).lost == 3


def test_a_listener_that_got_nothing_lost_what_came_after_it_connected() -> None:
    assert check_listener(_listener([], ready_offset=20), _history()).lost == 3

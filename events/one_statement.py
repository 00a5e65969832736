"""Storing an event in one statement on PostgreSQL: lock, NOTIFY, insert, commit.

The general store (events/publisher.py) is a transaction of several round trips: BEGIN,
the per-service lock (with the NOTIFY), the insert, COMMIT. A flow run's process on a
busy machine may wait for a core after each of them, and the customer's page waits with
it. A progress event needs none of the reads the general store can make (the terminal
check, ``only_if``), so it can go as one autocommit statement:

    WITH service_lock AS (SELECT pg_advisory_xact_lock(...), pg_notify(...))
    INSERT INTO event_log (...) SELECT ... FROM service_lock RETURNING id

The insert takes its row from the lock's, so the id is drawn after the lock is held,
and the statement commits before it lets go: per service, commit order is still id
order. (A CTE calling volatile functions is never folded into the query, PostgreSQL
evaluates it first.) The NOTIFY is delivered at that commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, insert, literal, select

from fiberflow.core.db.models import EventLog


def store(engine: Engine, lock_key: str, channel: str, values: dict[str, Any]) -> int:
    """Insert one ``event_log`` row with ``values`` (column → value) under the advisory
    lock ``lock_key``, notifying ``channel`` at its commit. Returns its id."""
    table = EventLog.__table__
    locked = select(
        func.pg_advisory_xact_lock(func.hashtext(lock_key)).label("locked"),
        func.pg_notify(channel, "").label("notified"),
    ).cte("service_lock")
    columns = list(values)
    row = select(*(literal(values[c], table.c[c].type) for c in columns)).select_from(locked)
    statement = insert(EventLog).from_select(columns, row).returning(EventLog.id)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return int(conn.execute(statement).scalar_one())

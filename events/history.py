"""Reading the event log: SSE catch-up and the history endpoint.

Both read the database, which keeps every event (Redis only keeps the retention
window), so a resume works however old the ``Last-Event-ID`` is.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import EventLog
from fiberflow.events.record import EventRecord

HISTORY_PAGE = 1000


def events_for(session: Session, service_id: str, after: int | None) -> list[EventRecord]:
    """The SSE catch-up rule, oldest first.

    ``after`` given (a ``Last-Event-ID``): every event of the service with a larger id.
    ``after`` None: every event of the service's latest operation (the operation of
    its newest event), running or finished.
    """
    query = select(EventLog).where(EventLog.service_id == service_id)
    if after is not None:
        query = query.where(EventLog.id > after)
    else:
        newest = session.execute(
            select(EventLog.id, EventLog.operation_id)
            .where(EventLog.service_id == service_id)
            .order_by(EventLog.id.desc())
            .limit(1)
        ).first()
        if newest is None:
            return []
        operation_id = newest.operation_id
        query = query.where(
            EventLog.operation_id == operation_id
            if operation_id is not None
            else EventLog.operation_id.is_(None)
        )
    return [EventRecord.from_row(r) for r in session.scalars(query.order_by(EventLog.id))]


def history(
    session: Session, service_id: str, after: int | None = None, limit: int = HISTORY_PAGE
) -> list[EventRecord]:
    """The history endpoint: the service's events with id > ``after`` (all when None),
    oldest first, at most ``limit``; page on with ``after`` = the last id returned."""
    query = select(EventLog).where(EventLog.service_id == service_id)
    if after is not None:
        query = query.where(EventLog.id > after)
    rows = session.scalars(query.order_by(EventLog.id).limit(limit))
    return [EventRecord.from_row(r) for r in rows]

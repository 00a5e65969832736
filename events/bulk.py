"""Publishing a bulk run's events: stored and streamed exactly as service events are.

A bulk run's events are rows of the same ``event_log`` (the durable history and the
outbox) keyed by the bulk id where a service event has its service id, with
``operation`` ``bulk`` and ``operation_id`` the bulk id; they go to Redis through the
same publisher, on the same stream, trimmed by the same retention. So their ids are
event log ids, increasing in publish order within the bulk (the sequence is shared
with service events, as it is between services), and the SSE relay serves
``GET /api/v1/realtime/bulk/{id}`` with the code that serves a service's stream: a
connection without ``Last-Event-ID`` gets every event of the bulk (its one
"operation"), then live ones; with it, every later one exactly once.

Bulk events are never coalesced: each ``bulk.progress`` carries the items that changed
since the previous one, so dropping one would lose them. At most one
``bulk.completed`` is stored per bulk run (the publisher's terminal-event rule).

``publish_bulk_event`` is synchronous, like ``EventPublisher.publish``: Prefect tasks
and hooks call it with the runtime's publisher (``tasks.runtime.runtime().publisher``);
``apublish_bulk_event`` runs it in a thread for async code (API routes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fiberflow.events.bulk_schema import BULK_COMPLETED, BULK_PROGRESS, validate_bulk_event
from fiberflow.events.publisher import EventPublisher, LogEntry

logger = logging.getLogger(__name__)

#: ``event_log.operation`` of a bulk run's events.
BULK_OPERATION = "bulk"
_TIME_KEY = {BULK_PROGRESS: "timestamp", BULK_COMPLETED: "completed_at"}


def bulk_entry(bulk_id: str, tenant_id: str, event_type: str, data: Mapping[str, Any]) -> LogEntry:
    """The checked ``event_log`` entry of one bulk event; raises ValueError naming the
    bad field, an unknown event type, or a ``bulk_id`` / ``tenant_id`` in ``data``
    that differs from the arguments. ``bulk_id``, ``tenant_id`` and the time
    (``timestamp`` / ``completed_at``, now) are filled in when ``data`` lacks them; a
    naive ``datetime`` is taken as UTC."""
    payload = dict(data)
    for key, value in (("bulk_id", bulk_id), ("tenant_id", tenant_id)):
        given = payload.setdefault(key, value)
        if isinstance(given, str) and given.lower() != value.lower():
            raise ValueError(f"data.{key} {given!r} is not the event's {key} {value!r}")
    if event_type in _TIME_KEY:
        key = _TIME_KEY[event_type]
        at = payload.setdefault(key, datetime.now(UTC))
        if isinstance(at, datetime) and at.tzinfo is None:
            # A time read back from the database (SQLite hands back naive datetimes of
            # the UTC times fiberflow stores). A naive *string* is still refused.
            payload[key] = at.replace(tzinfo=UTC)
    checked = validate_bulk_event(event_type, payload)
    return LogEntry(
        key=checked.bulk_id,
        tenant_id=checked.tenant_id,
        operation=BULK_OPERATION,
        operation_id=checked.bulk_id,
        event_type=event_type,
        data=checked.model_dump(mode="json"),
        terminal=event_type == BULK_COMPLETED,
    )


def publish_bulk_event(
    publisher: EventPublisher,
    bulk_id: str,
    tenant_id: str,
    event_type: str,
    data: Mapping[str, Any],
) -> int | None:
    """Store one event of bulk run ``bulk_id`` and send it to Redis.

    ``publisher`` is the process's ``EventPublisher`` (its database is the history,
    its Redis client the live stream). ``event_type`` is ``bulk.progress`` or
    ``bulk.completed``; ``data`` as in events/bulk_schema.py. Returns the event's id
    (the SSE ``id:``), or None for a second ``bulk.completed`` of the same bulk (the
    first stands). Bad data raises ValueError before anything is stored; a Redis
    failure is not raised (the event waits in the outbox), a database failure is.
    """
    if not isinstance(publisher, EventPublisher):
        raise TypeError(
            "publish_bulk_event needs the EventPublisher (database history + Redis), "
            f"not {type(publisher).__name__}"
        )
    entry = bulk_entry(bulk_id, tenant_id, event_type, data)
    event_id = publisher.publish_entry(entry)
    logger.debug(
        "bulk event published",
        extra={"bulk_id": entry.key, "tenant_id": entry.tenant_id,
               "event_type": event_type, "event_id": event_id},
    )  # fmt: skip
    return event_id


async def apublish_bulk_event(
    publisher: EventPublisher,
    bulk_id: str,
    tenant_id: str,
    event_type: str,
    data: Mapping[str, Any],
) -> int | None:
    """``publish_bulk_event`` from async code (it blocks on the database: a thread)."""
    return await asyncio.to_thread(
        publish_bulk_event, publisher, bulk_id, tenant_id, event_type, data
    )

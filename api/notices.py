"""Events the API itself publishes: the first step of a run it starts (before the run
exists), a zero-touch order's wait, a withdrawn order's end.

They go through the same publisher as the flows' events (event log first, then Redis),
so they share the service's one id sequence and appear in history and SSE alike. A
notice that cannot be published is logged, never an error for the request: the
service row is committed and is the truth.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from fiberflow.api.realtime import PUBLISHER
from fiberflow.api.state import AppState
from fiberflow.core import catalogue
from fiberflow.core.db.models import EventLog, Operation, ServiceInstance
from fiberflow.events.publisher import EventPublisher
from fiberflow.events.schema import LifecycleEvent, failed, progress

log = logging.getLogger(__name__)


def publisher(state: AppState) -> EventPublisher:
    found = state.extras.get(PUBLISHER)
    if isinstance(found, EventPublisher):
        return found
    # No Redis (no realtime): the event still goes to the log, the history endpoint.
    return EventPublisher(state.sessions, None)


def publish(state: AppState, events: list[LifecycleEvent]) -> list[int | None]:
    """Publish ``events`` in order; their log ids (None: not stored)."""
    ids: list[int | None] = []
    try:
        pub = publisher(state)
        for event in events:
            ids.append(pub.publish(event))
    except Exception:
        log.exception("could not publish", extra={"service_id": events[0].service_id})
    return ids


@dataclass(frozen=True, slots=True)
class Queued:
    """The announcement of a run not yet created: its log id and provisional operation."""

    event_id: int
    operation_id: str


def announce(state: AppState, row: ServiceInstance, operation: Operation) -> Queued | None:
    """Publish step 1 (``queued``) of ``operation`` for ``row`` now, under a provisional
    operation id that :func:`adopt` replaces with the run's id once the run exists."""
    step = catalogue.queued_step(catalogue.of(operation))
    provisional = str(uuid.uuid4())
    event = progress(operation, service_id=row.id, tenant_id=row.tenant_id,
                     operation_id=provisional, step=step.number, total_steps=step.total,
                     status=step.status, message=step.message, flow_run_id=None)  # fmt: skip
    (event_id,) = publish(state, [event]) or [None]
    return Queued(event_id, provisional) if event_id is not None else None


def adopt(session: Session, queued: Queued | None, flow_run_id: str) -> None:
    """Make the announcement part of the run's operation (its events group by the flow
    run id: the stream's catch-up and the statistics). In the caller's transaction."""
    if queued is None:
        return
    session.execute(
        update(EventLog)
        .where(EventLog.id == queued.event_id, EventLog.operation_id == queued.operation_id)
        .values(operation_id=flow_run_id)
    )


def not_started(
    state: AppState,
    service_id: str,
    tenant_id: str,
    operation: Operation,
    queued: Queued | None,
    why: str,
) -> None:
    """The run could not be created: end the announced operation with its failed event
    (after the caller committed the service's give-back). Ids, not the row: reading the
    row again would open a transaction that the publisher's own write then waits for."""
    if queued is None:
        return
    event = failed(operation, service_id=service_id, tenant_id=tenant_id,
                   operation_id=queued.operation_id, step=1, error=why,
                   flow_run_id=None)  # fmt: skip
    publish(state, [event])

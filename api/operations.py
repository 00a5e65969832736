"""Starting a lifecycle operation: status transition first, then a Prefect deployment run.

The API never runs a flow itself: ``run_deployment(..., timeout=0)`` asks the Prefect
server for a run of the operation's deployment (named by the catalogue) and returns at
once; a worker picks it up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from anyio import from_thread
from fastapi import HTTPException, status
from sqlalchemy import update
from sqlalchemy.orm import Session

from fiberflow.api import notices
from fiberflow.api.schemas import Accepted
from fiberflow.api.state import AppState
from fiberflow.core import transition as core_transition
from fiberflow.core.catalogue import LifecycleOperation
from fiberflow.core.db.models import Operation, ServiceInstance
from fiberflow.core.launch import launch as core_launch

log = logging.getLogger(__name__)
UNREACHABLE = "the orchestrator is not reachable"

# What a route does with a service whose run could not be started:
# ``give_back(session, service_id, error)``, ``error`` the exception's class name.
GiveBack = Callable[[Session, str, str], None]


def transition(session: Session, change: Callable[[], None]) -> None:
    """Apply ``change`` to a service row and commit, or 409 (an invalid transition, or a
    row another request changed meanwhile). The same path a bulk run takes
    (core/transition.py), which skips the service instead."""
    try:
        core_transition.apply(session, change)
    except core_transition.Refused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


def begin(session: Session, service: ServiceInstance, operation: Operation) -> None:
    """Move the service into the operation's running status, or 409."""
    transition(session, lambda: service.begin(operation))


def start(
    session: Session,
    row: ServiceInstance,
    operation: Operation,
    params: dict[str, Any],
    *,
    state: AppState,
    give_back: GiveBack,
) -> Accepted:
    """Begin the operation (409 as :func:`begin`), start its run and record the run's id.

    Runs in the threadpool (the routes are sync): database calls block, and must not
    stall the event loop that serves the SSE streams; the Prefect call goes back to it.
    A run that cannot be started is 503, after ``give_back`` has dealt with the service.

    Step 1 is announced (a ``queued`` progress event) as soon as the status is
    committed, before the Prefect call: under a burst, creating the run and a worker
    picking it up take seconds to minutes, and the customer should see their request
    taken at once. The announcement joins the run's operation when the run exists.
    """
    begin(session, row, operation)
    queued = notices.announce(state, row, operation)
    try:
        flow_run_id = from_thread.run(launch, row.id, operation, params)
    except Exception as exc:
        log.exception("could not start %s", operation.value, extra={"service_id": row.id})
        give_back(session, row.id, type(exc).__name__)
        notices.not_started(state, row, operation, queued, UNREACHABLE)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"{UNREACHABLE}; try again"
        ) from None
    record_launch(session, row.id, flow_run_id, queued)
    return Accepted(id=row.id, status=row.status, flow_run_id=flow_run_id)


async def launch(service_id: str, operation: Operation, parameters: dict[str, Any]) -> str:
    """Create the flow run; returns its id. Raises on an unreachable Prefect server."""
    return await core_launch(service_id, operation, parameters)


def record_launch(
    session: Session, service_id: str, flow_run_id: str, queued: notices.Queued | None = None
) -> None:
    # A plain UPDATE, not the ORM's versioned one: the flow run may already be writing
    # the row (it records its own id too), and this column must not lose that race.
    session.execute(
        update(ServiceInstance)
        .where(ServiceInstance.id == service_id)
        .values(flow_run_id=flow_run_id)
    )
    notices.adopt(session, queued, flow_run_id)
    session.commit()


def record_launch_failure(
    session: Session, service_id: str, error: str, *, release_idempotency_key: bool = False
) -> None:
    row = session.get(ServiceInstance, service_id, populate_existing=True)
    if row is not None:
        row.fail(f"could not start the operation: {error}")
        if release_idempotency_key:
            # The order never started: a retry with the same key places it anew.
            row.idempotency_key = None
        session.commit()


def back_to_start(entry: LifecycleOperation, what: str) -> GiveBack:
    """A give-back for an operation that starts from one status only: a service still in
    the running status returns to it, ``error`` saying that ``what`` could not start."""

    def give_back(session: Session, service_id: str, error: str) -> None:
        row = session.get(ServiceInstance, service_id, populate_existing=True)
        if row is not None and row.status == entry.running.value:
            (before,) = entry.starts_from
            row.status = before.value
            row.error = f"could not start {what}: {error}"
            session.commit()

    return give_back

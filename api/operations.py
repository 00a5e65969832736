"""Starting a lifecycle operation: status transition first, then a Prefect deployment run.

The API never runs a flow itself: ``run_deployment(..., timeout=0)`` asks the Prefect
server for a run of the operation's deployment (named by the catalogue) and returns at
once; a worker picks it up.

The thread model: a request holds a thread of the pool only for its database work. The
routes that start runs are ``async def``; their checks and the status transition and
step-1 announcement (:func:`prepare`) run in one hop to the thread pool (the database
calls block and must not stall the event loop that serves the SSE streams); the Prefect
call (:func:`finish`) is awaited on the event loop, holding no thread; recording the
run's id (or giving the service back) is another short hop. Under a burst the Prefect
call takes seconds: were it made from a pool thread (40 of them), the requests behind
the first 40 would wait that long for a thread before even their status commit and
their ``queued`` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import update
from sqlalchemy.orm import Session

from fiberflow.api import notices
from fiberflow.api.schemas import Accepted
from fiberflow.api.state import AppState
from fiberflow.core import transition as core_transition
from fiberflow.core.catalogue import LifecycleOperation
from fiberflow.core.db.models import Operation, ServiceInstance
from fiberflow.core.launch import Launcher
from fiberflow.core.launch import launch as core_launch

log = logging.getLogger(__name__)
UNREACHABLE = "the orchestrator is not reachable"

# What a route does with a service whose run could not be started:
# ``give_back(session, service_id, error)``, ``error`` the exception's class name.
GiveBack = Callable[[Session, str, str], None]


@dataclass(frozen=True, slots=True)
class Pending:
    """An operation begun and announced whose run is not created yet: what
    :func:`finish` needs, so that it reads no ORM row on the event loop."""

    service_id: str
    tenant_id: str
    status: str  # the running status the transition committed (the 202's)
    operation: Operation
    params: Mapping[str, Any]
    queued: notices.Queued | None
    give_back: GiveBack


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


def prepare(
    session: Session,
    row: ServiceInstance,
    operation: Operation,
    params: Mapping[str, Any],
    *,
    state: AppState,
    give_back: GiveBack,
) -> Pending:
    """Begin the operation (409 as :func:`begin`) and announce its step 1. Blocking: call
    it in the thread pool, with the route's own checks in the same hop.

    Step 1 is announced (a ``queued`` progress event) as soon as the status is
    committed, before the Prefect call: under a burst, creating the run and a worker
    picking it up take seconds to minutes, and the customer should see their request
    taken at once. The announcement joins the run's operation when the run exists."""
    begin(session, row, operation)
    queued = notices.announce(state, row, operation)
    return Pending(
        service_id=row.id,
        tenant_id=row.tenant_id,
        status=row.status,
        operation=operation,
        params=dict(params),
        queued=queued,
        give_back=give_back,
    )


async def finish(state: AppState, pending: Pending, session: Session) -> Accepted:
    """Create the run on the event loop (no thread held while Prefect answers), then
    record its id in a thread hop. A run that cannot be started is 503, after the
    pending's ``give_back`` has dealt with the service and its announcement has ended
    failed. ``session`` is the one :func:`prepare` used: one thread at a time uses it."""
    try:
        found = state.extras.get(LAUNCHER)
        launcher = found if isinstance(found, Launcher) else None
        flow_run_id = await launch(
            pending.service_id, pending.operation, dict(pending.params), launcher
        )
    except Exception as exc:
        log.exception(
            "could not start %s", pending.operation.value, extra={"service_id": pending.service_id}
        )
        await run_in_threadpool(_not_started, state, pending, session, type(exc).__name__)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"{UNREACHABLE}; try again"
        ) from None
    await run_in_threadpool(record_launch, session, pending.service_id, flow_run_id, pending.queued)
    return Accepted(id=pending.service_id, status=pending.status, flow_run_id=flow_run_id)


async def answer(
    state: AppState, session: Session, ready: Accepted | Response | Pending
) -> Accepted | Response:
    """A route's answer from what its thread hop returned: a :class:`Pending` is finished
    (its run started); anything else (a dry run's plan, a replayed create, a waiting
    order) is the answer already."""
    if isinstance(ready, Pending):
        return await finish(state, ready, session)
    return ready


def _not_started(state: AppState, pending: Pending, session: Session, error: str) -> None:
    pending.give_back(session, pending.service_id, error)
    notices.not_started(state, pending.service_id, pending.tenant_id, pending.operation,
                        pending.queued, UNREACHABLE)  # fmt: skip


LAUNCHER = "launcher"  # state.extras: the app's core.launch.Launcher (api/app.py)


async def launch(
    service_id: str,
    operation: Operation,
    parameters: dict[str, Any],
    launcher: Launcher | None = None,
) -> str:
    """Create the flow run; returns its id. Raises on an unreachable Prefect server.
    Through the app's ``launcher`` (one Prefect client, deployment ids read once) when
    there is one."""
    if launcher is not None:
        return await launcher.launch(service_id, operation, parameters)
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

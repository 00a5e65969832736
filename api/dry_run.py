"""``?dry_run=true`` on the operation endpoints: what a run would change, nothing changed.

A dry run takes the route's own checks in the route's order (403, 422, 404, 409), then
asks the planner the shell handed to ``create_app(planner=...)`` (tasks/dry_run.py:
read-only device sessions, the drivers' render step, IPAM's preview) and answers 200
``{"operation", "changes"}``. The state check is the real transition applied and
rolled back, never committed; no flow run starts. The API imports no planning code:
``api`` never imports ``tasks``, so the shell injects it, as it does the reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import HTTPException, Query, Response, status
from sqlalchemy.orm import Session

from fiberflow.api.schemas import ChangeOut, DryRunOut
from fiberflow.api.state import AppState
from fiberflow.core.db.models import InvalidTransition, Operation, ServiceInstance
from fiberflow.devices.base import DeviceError, PermanentDeviceError
from fiberflow.devices.changes import Change, Refused

log = logging.getLogger(__name__)
PLANNER = "dry_run_planner"

#: ``plan(operation, service_id, params)``: the changes a run would make now (None: a
#: new order, its fields in ``params``). Raises Refused, or a device's DeviceError.
Planner = Callable[[Operation, str | None, Mapping[str, Any]], list[Change]]

#: The route's extra answer, for the OpenAPI schema.
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": DryRunOut, "description": "dry_run=true: the changes it would make"}
}
DryRun = Annotated[
    bool,
    Query(description="Answer 200 with the changes the operation would make, and make none"),
]


def check_begin(session: Session, row: ServiceInstance, operation: Operation) -> None:
    """409 exactly as starting the operation would answer, with nothing committed: the
    transition is applied to the row and rolled back."""
    try:
        row.begin(operation)  # what core.transition.apply would commit
    except InvalidTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    finally:
        session.rollback()  # nothing was flushed: the row reads as it was


def answer(
    state: AppState,
    session: Session,
    operation: Operation,
    service_id: str | None,
    params: Mapping[str, Any],
) -> DryRunOut:
    """The plan of ``operation``: 409 for what a run would refuse at its validating step,
    503 when a device cannot be read (or this process was given no planner)."""
    planner: Planner | None = state.extras.get(PLANNER)
    if planner is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "dry runs are not available in this API process")  # fmt: skip
    # No transaction stays open across device reads (on SQLite it would hold the lock).
    session.rollback()
    try:
        changes = planner(operation, service_id, params)
    except Refused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except PermanentDeviceError as exc:  # the run's validating step would fail the same way
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except DeviceError as exc:
        log.warning("dry run: device unreadable", extra={"device": exc.device,
                    "service_id": service_id, "operation": operation.value})  # fmt: skip
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"cannot read {exc.device}: {exc.message}") from None  # fmt: skip
    log.info("dry run", extra={"service_id": service_id, "operation": operation.value,
             "changes": len(changes)})  # fmt: skip
    return DryRunOut(
        operation=operation.value,
        changes=[ChangeOut(target=c.target, kind=c.kind, lines=list(c.lines)) for c in changes],
    )


def nothing(operation: Operation) -> DryRunOut:
    """A request that would change no device or table (e.g. a repeated create)."""
    return DryRunOut(operation=operation.value, changes=[])


def respond(plan: DryRunOut) -> Response:
    """200 with the plan (the routes' own answer is 202 Accepted)."""
    return Response(plan.model_dump_json(), status_code=200, media_type="application/json")

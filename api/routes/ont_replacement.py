"""``POST /api/v1/services/{id}/replace-ont``: swap a service's ONT for a new one.

Checked in the request, before anything starts: the body's shape (422 unless the serial
is 16 hex digits), the service (404), a missing body (422), its status (409 unless
active or suspended), the new serial (409 when it is the service's own ONT or belongs to
another live service, of any tenant). The flow run
then checks again against the OLT; a failure there leaves the service as it was.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.api import dry_run as dry
from fiberflow.api import operations
from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import OperatorDep, SessionDep, StateDep
from fiberflow.api.schemas import Accepted, ErrorBody, ReplaceOntBody
from fiberflow.api.state import AppState
from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceInstance, ServiceStatus
from fiberflow.core.tokens import Principal

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/services", tags=["services"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}
OPERATION = Operation.ONT_REPLACEMENT
# Statuses that free a serial (the partial unique index of the service table says so too).
_RELEASED = (ServiceStatus.TERMINATED.value, ServiceStatus.FAILED.value)


def _conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, message)


def _check_serial(session: SessionDep, row: ServiceInstance, serial: str) -> None:
    if serial == row.ont_serial:
        raise _conflict(f"ont_serial: {serial} is already this service's ONT")
    holder = session.scalars(
        select(ServiceInstance.id).where(
            ServiceInstance.ont_serial == serial,
            ServiceInstance.id != row.id,
            ServiceInstance.status.not_in(_RELEASED),
        )
    ).first()
    if holder is not None:  # another tenant's, maybe: named by nothing but the fact
        raise _conflict(
            f"ont_serial: {serial} already belongs to a service that is not terminated or failed"
        )


def _give_back(session: SessionDep, service_id: str, error: str) -> None:
    """The run never started, so nothing was touched: the service returns to the
    status it was in (not ``failed``, as a replacement that failed would not either)."""
    row = session.get(ServiceInstance, service_id, populate_existing=True)
    if row is not None:
        row.restore(f"could not start the operation: {error}")
        session.commit()


@router.post(
    "/{service_id}/replace-ont",
    status_code=202,
    response_model=Accepted,
    responses={**ERRORS, **dry.RESPONSES},
    summary="Replace the ONT: same PON port, VLAN, IP and RADIUS user; status unchanged",
)
async def replace_ont(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    state: StateDep,
    body: Annotated[ReplaceOntBody | None, Body()] = None,
    dry_run: dry.DryRun = False,
) -> Accepted | Response:
    # The checks, the transition and the announcement in one hop to the thread pool;
    # the Prefect call on the event loop (api/operations.py).
    ready = await run_in_threadpool(_prepare, service_id, principal, session, state, body, dry_run)
    if not isinstance(ready, operations.Pending):
        return ready
    accepted = await operations.finish(state, ready, session)
    log.info("ont replacement started", extra={"service_id": accepted.id,
             "flow_run_id": accepted.flow_run_id, "operation": OPERATION.value})  # fmt: skip
    return accepted


def _prepare(
    service_id: str,
    principal: Principal,
    session: Session,
    state: AppState,
    body: ReplaceOntBody | None,
    dry_run: bool,
) -> Response | operations.Pending:
    # The body is optional to FastAPI so that a service the caller may not see is 404
    # without one too (never a 422 that tells an id apart from a missing body).
    row = get_visible_service(session, principal, service_id)
    if body is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, 'ont_serial: required, as {"ont_serial": SN}'
        )
    if ServiceStatus(row.status) not in catalogue.ONT_REPLACEMENT.starts_from:
        raise _conflict(f"a service in status {row.status!r} cannot start {OPERATION.value}")
    _check_serial(session, row, body.ont_serial)
    params = {"ont_serial": body.ont_serial}
    if dry_run:
        dry.check_begin(session, row, OPERATION)
        return dry.respond(dry.answer(state, session, OPERATION, row.id, params))
    # begin: 409 if a concurrent request moved it
    return operations.prepare(session, row, OPERATION, params, state=state, give_back=_give_back)

"""``POST /api/v1/services/{id}/change-plan``: move an active service to another plan.

Checked in the request, before anything starts and in this order: the role (403), the
body's shape (422), the service (404, also another tenant's or customer's), a missing
body (422), the plan against the inventory (422 naming the known plans, or a plan on
another GEM port than the service's), the status (409 unless ``active``) and the plan
the service already has (409). Then the service becomes ``changing_plan`` and the
catalogue's ``change-plan`` deployment runs the flow; a failure there compensates and
leaves the service ``active`` on its old plan.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from fiberflow.api import dry_run as dry
from fiberflow.api import operations
from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import OperatorDep, SessionDep, StateDep
from fiberflow.api.inventory import InventoryDep
from fiberflow.api.schemas import Accepted, ChangePlanBody, ErrorBody
from fiberflow.api.state import AppState
from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceStatus
from fiberflow.core.tokens import Principal
from fiberflow.devices.inventory import Inventory

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/services", tags=["services"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}
OPERATION = Operation.PLAN_CHANGE
ENTRY = catalogue.PLAN_CHANGE

# The run never started, so nothing was touched: the service is ``active`` again on its
# plan (not ``failed``: a plan change that fails leaves it active too).
_give_back = operations.back_to_start(ENTRY, "the plan change")


@router.post(
    "/{service_id}/change-plan",
    status_code=202,
    response_model=Accepted,
    responses={**ERRORS, **dry.RESPONSES},
    summary="Change the plan: RADIUS, BNG policy, then CoA (or Disconnect) to the session",
)
async def change_plan(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    inventory: InventoryDep,
    state: StateDep,
    body: Annotated[ChangePlanBody | None, Body()] = None,
    dry_run: dry.DryRun = False,
) -> Accepted | Response:
    # The checks, the transition and the announcement in one hop to the thread pool;
    # the Prefect call on the event loop (api/operations.py).
    ready = await run_in_threadpool(
        _prepare, service_id, principal, session, inventory, state, body, dry_run
    )
    if not isinstance(ready, operations.Pending):
        return ready
    accepted = await operations.finish(state, ready, session)
    extra = {
        "service_id": accepted.id,
        "flow_run_id": accepted.flow_run_id,
        "operation": OPERATION.value,
        "plan": ready.params["plan"],
    }
    log.info("plan change started", extra=extra)
    return accepted


def _prepare(
    service_id: str,
    principal: Principal,
    session: Session,
    inventory: Inventory,
    state: AppState,
    body: ChangePlanBody | None,
    dry_run: bool,
) -> Response | operations.Pending:
    # The body is optional to FastAPI so that a service the caller may not see is 404
    # without one too (never a 422 that tells an id apart from a missing body).
    row = get_visible_service(session, principal, service_id)
    if body is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, 'plan: required, as {"plan": NAME}'
        )
    try:
        new = inventory.plan(body.plan)
    except KeyError:
        known = ", ".join(p.name for p in inventory.plans)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"plan: unknown plan {body.plan!r} (one of {known})",
        ) from None
    old = next((p for p in inventory.plans if p.name == row.plan), None)
    if old is not None and new.gem_port != old.gem_port:
        # The OLT's service-port carries the plan's GEM port, and a plan change does not
        # touch the OLT (the flow refuses it too).
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"plan: {new.name!r} uses GEM port {new.gem_port}, the service's plan "
            f"{old.name!r} GEM port {old.gem_port}; a plan change keeps the OLT as it is",
        )
    if ServiceStatus(row.status) not in ENTRY.starts_from:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"a service in status {row.status!r} cannot change plan"
        )
    if row.plan == body.plan:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"plan: the service is already on plan {body.plan!r}"
        )
    params = {"plan": body.plan}
    if dry_run:
        dry.check_begin(session, row, OPERATION)
        return dry.respond(dry.answer(state, session, OPERATION, row.id, params))
    # begin: 409 if a concurrent request moved it
    return operations.prepare(session, row, OPERATION, params, state=state, give_back=_give_back)

"""``/api/v1/bulk``: one operation over many services, as one bulk run (operators only).

``POST /api/v1/bulk/{operation}`` checks, in this order: the role (403), the operation
(404 naming it), the body (422: exactly one of ``service_ids`` / ``olt``, ids that are
UUIDs, at most 100,000, the operation's own fields), the OLT (422 naming it), the plan
of a change-plan (422), the services (404 "some services were not found" when any id is
unknown or another tenant's: it names none of them). With ``?dry_run=true`` it answers
200 with each service's plan after those same checks (api/bulk_dry_run.py). Otherwise,
in one transaction, the bulk row and its items are written and the parent run
(deployment ``bulk-run``) is started; the transaction commits only once the run exists,
so a run that cannot be started leaves nothing behind (503). The parent moves each
service through the same status transition a single request does; a service whose
status forbids it is ``skipped``.

The create is ``async def``: its checks and writes run in one hop to the thread pool,
the Prefect call on the event loop (a request holds a thread only for its database
work, as a single operation's does: api/operations.py), the commit in another hop.
Approve, reject and cancel are in api/routes/bulk_decisions.py.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fiberflow.api import bulk_dry_run
from fiberflow.api.bulk_schemas import (
    BulkAccepted,
    BulkCreate,
    BulkDryRunOut,
    BulkItemOut,
    BulkItemPage,
    BulkOut,
    ItemStateName,
)
from fiberflow.api.bulk_visibility import get_tenant_bulk
from fiberflow.api.deps import OperatorDep, SessionDep, StateDep
from fiberflow.api.dry_run import DryRun
from fiberflow.api.inventory import InventoryDep
from fiberflow.api.schemas import ErrorBody
from fiberflow.api.state import AppState
from fiberflow.core import bulk as core_bulk
from fiberflow.core.db.models import BulkItem, BulkRun, ServiceInstance, ServiceStatus, utcnow
from fiberflow.core.db.models.bulk import BulkStatus, ItemState
from fiberflow.core.launch import launch_bulk
from fiberflow.core.tokens import Principal
from fiberflow.devices.inventory import Inventory

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/bulk", tags=["bulk"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}
NOT_FOUND = "some services were not found"
_CHUNK = 5_000  # ids per IN (...): well under SQLite's and PostgreSQL's bind limits


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def _params(operation: str, body: BulkCreate, inventory: Inventory) -> dict[str, Any]:
    """The operation's own fields, checked; a field of another operation is 422."""
    if operation == "change-plan":
        if body.plan is None:
            raise _unprocessable('plan: required, as {"plan": NAME}')
        try:
            inventory.plan(body.plan)
        except KeyError:
            known = ", ".join(p.name for p in inventory.plans)
            raise _unprocessable(f"plan: unknown plan {body.plan!r} (one of {known})") from None
    elif body.plan is not None:
        raise _unprocessable(f"plan: not a field of a bulk {operation}")
    if body.hard is not None and operation != "suspend":
        raise _unprocessable(f"hard: not a field of a bulk {operation}")
    if operation == "change-plan":
        return {"plan": body.plan}
    if operation == "suspend":
        return {"hard": bool(body.hard)}
    return {}


def _targets(session: Session, principal: Principal, body: BulkCreate, inv: Inventory) -> list[str]:
    """The services of the batch, in the order given (an OLT's: oldest first)."""
    if body.olt is not None:
        try:
            inv.olt(body.olt)
        except KeyError:
            raise _unprocessable(f"olt: unknown OLT {body.olt!r}") from None
        ids = list(
            session.scalars(
                select(ServiceInstance.id)
                .where(ServiceInstance.tenant_id == principal.tenant_id)
                .where(ServiceInstance.olt == body.olt)
                .where(ServiceInstance.status != ServiceStatus.TERMINATED.value)
                .order_by(ServiceInstance.created_at, ServiceInstance.id)
            )
        )
        if not ids:
            raise _unprocessable(f"olt: no services on OLT {body.olt!r}")
        return ids
    assert body.service_ids is not None
    wanted = body.service_ids
    found = 0
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found += len(
            session.scalars(
                select(ServiceInstance.id)
                .where(ServiceInstance.id.in_(chunk))
                .where(ServiceInstance.tenant_id == principal.tenant_id)
            ).all()
        )
    if found != len(wanted):
        # Never which ones: an id of another tenant must look like an unknown one.
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return wanted


@router.post("/{operation}", status_code=202, response_model=BulkAccepted,
             responses={**ERRORS, 200: {"model": BulkDryRunOut,
                        "description": "dry_run=true: each service's changes, none made"}},
             summary="Start one operation over many services (a bulk run)")  # fmt: skip
async def create_bulk(
    operation: str,
    principal: OperatorDep,
    session: SessionDep,
    state: StateDep,
    inventory: InventoryDep,
    body: BulkCreate,
    dry_run: DryRun = False,
) -> BulkAccepted | Response:
    ready = await run_in_threadpool(
        _write, operation, principal, session, state, inventory, body, dry_run
    )
    if isinstance(ready, Response):
        return ready
    bulk, count = ready
    try:
        # Before the commit: the parent waits for its row (flows/bulk.py), and a run
        # that cannot be started rolls everything back. On the event loop: no thread
        # is held while the Prefect server answers.
        flow_run_id = await launch_bulk(bulk.id)
    except Exception:
        await run_in_threadpool(session.rollback)
        log.exception("could not start a bulk run", extra={"operation": operation})
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the orchestrator is not reachable; try again"
        ) from None
    await run_in_threadpool(_record_launch, session, bulk, flow_run_id)
    log.info(
        "bulk run requested",
        extra={"bulk_id": bulk.id, "tenant_id": bulk.tenant_id, "operation": operation,
               "count": count, "requested_by": principal.sub, "flow_run_id": flow_run_id},
    )  # fmt: skip
    return BulkAccepted(id=bulk.id, flow_run_id=flow_run_id, count=count)


def _record_launch(session: Session, bulk: BulkRun, flow_run_id: str) -> None:
    bulk.flow_run_id = flow_run_id
    session.commit()


def _write(
    operation: str,
    principal: Principal,
    session: Session,
    state: AppState,
    inventory: Inventory,
    body: BulkCreate,
    dry_run: bool,
) -> Response | tuple[BulkRun, int]:
    """The checks, then (unless a dry run) the bulk row and its items, flushed and not
    committed; in the thread pool. The row and the number of services."""
    if operation not in core_bulk.OPERATIONS:
        known = ", ".join(core_bulk.OPERATIONS)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no bulk operation {operation!r} (one of {known})"
        )
    params = _params(operation, body, inventory)
    ids = _targets(session, principal, body, inventory)
    if dry_run:  # after the same checks; writes nothing, starts nothing
        plan = bulk_dry_run.answer(state, session, inventory, operation, params, ids)
        return Response(plan.model_dump_json(), status_code=200, media_type="application/json")
    bulk = BulkRun(
        tenant_id=principal.tenant_id,
        operation=operation,
        params=params,
        status=BulkStatus.SCHEDULED.value,
        requested_by=principal.sub,
        created_at=utcnow(),
    )
    session.add(bulk)
    session.flush()
    for start in range(0, len(ids), _CHUNK):
        session.execute(
            insert(BulkItem),
            [
                {"bulk_id": bulk.id, "service_id": sid, "position": start + i,
                 "state": ItemState.PENDING.value}
                for i, sid in enumerate(ids[start : start + _CHUNK])
            ],
        )  # fmt: skip
    return bulk, len(ids)


def _visible_bulk(session: Session, principal: Principal, bulk_id: str) -> BulkRun:
    # One lookup rule for the API, the stream and the page (an id that is no UUID, e.g.
    # one holding a NUL that PostgreSQL refuses, is a 404 before any query).
    row = get_tenant_bulk(session, principal, bulk_id)
    session.refresh(row)
    return row


def _out(session: Session, row: BulkRun) -> BulkOut:
    return BulkOut.model_validate(core_bulk.view(session, row))


@router.get("/{bulk_id}", response_model=BulkOut, responses=ERRORS)
def get_bulk(bulk_id: str, principal: OperatorDep, session: SessionDep) -> BulkOut:
    return _out(session, _visible_bulk(session, principal, bulk_id))


def _decode(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _unprocessable("cursor: not a cursor this API returned") from None


@router.get("/{bulk_id}/items", response_model=BulkItemPage, responses=ERRORS,
            summary="The services in request order: state and reason")  # fmt: skip
def list_items(
    bulk_id: str,
    principal: OperatorDep,
    session: SessionDep,
    state: Annotated[ItemStateName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> BulkItemPage:
    row = _visible_bulk(session, principal, bulk_id)
    q = select(BulkItem).where(BulkItem.bulk_id == row.id)
    if state is not None:
        q = q.where(BulkItem.state == state)
    if cursor:
        q = q.where(BulkItem.position > _decode(cursor))
    items = list(session.scalars(q.order_by(BulkItem.position).limit(limit + 1)))
    more = len(items) > limit
    items = items[:limit]
    return BulkItemPage(
        items=[
            BulkItemOut(
                service_id=i.service_id, state=i.state, reason=i.reason, flow_run_id=i.flow_run_id
            )
            for i in items
        ],  # fmt: skip
        next=base64.urlsafe_b64encode(str(items[-1].position).encode()).decode() if more else None,
    )

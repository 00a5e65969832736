"""``/api/v1/bulk/{id}/approve|reject|cancel``: decisions on a bulk run (operators only).

Four-eyes: a bulk run its parent has put in ``awaiting_approval`` is approved or
rejected once, by an operator other than its requester (403 for the requester, 409 when
it is not awaiting approval or was already decided). A cancel skips every service not
started yet (running ones finish); 409 once the bulk run has ended.

Each decision is committed first (with its audit line; a cancel also publishes its
``bulk.progress``), then handed to the paused parent run through Prefect
(core/launch.resume_paused, which waits up to 30 s for the run to pause). A decision
Prefect does not take stays committed: the parent reads it from the database.

The routes are ``async def`` (as in api/operations.py): the database work in thread-pool
hops, the Prefect call awaited on the event loop, so a request holds no thread of the
pool, and no transaction, while it waits for the parent.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from fiberflow.api import notices
from fiberflow.api.bulk_schemas import BulkOut
from fiberflow.api.bulk_visibility import get_tenant_bulk
from fiberflow.api.deps import OperatorDep, SessionDep, StateDep
from fiberflow.api.routes.bulk import ERRORS
from fiberflow.api.state import AppState
from fiberflow.core import bulk as core_bulk
from fiberflow.core.db.models import BulkRun, utcnow
from fiberflow.core.db.models.bulk import BULK_OPEN, BulkStatus
from fiberflow.core.launch import resume_paused
from fiberflow.core.tokens import Principal
from fiberflow.events.bulk import publish_bulk_event
from fiberflow.events.bulk_schema import BULK_PROGRESS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/bulk", tags=["bulk"])
OWN_APPROVAL = "the requester cannot approve their own bulk run"

# What a decision's first hop returns: the bulk run's id and the parent run to resume
# (None: nothing to resume).
Decided = tuple[str, str | None]


@router.post("/{bulk_id}/cancel", response_model=BulkOut, responses=ERRORS,
             summary="Cancel: services not started are skipped; running ones finish")  # fmt: skip
async def cancel_bulk(
    bulk_id: str, principal: OperatorDep, session: SessionDep, state: StateDep
) -> BulkOut:
    decided = await run_in_threadpool(_cancel, bulk_id, principal, session, state)
    return await _resume_then_view(session, decided, False, principal.sub)


@router.post("/{bulk_id}/approve", response_model=BulkOut, responses=ERRORS,
             summary="Four-eyes: another operator approves; the bulk run starts")  # fmt: skip
async def approve_bulk(bulk_id: str, principal: OperatorDep, session: SessionDep) -> BulkOut:
    decided = await run_in_threadpool(_decide, bulk_id, principal, session, True)
    return await _resume_then_view(session, decided, True, principal.sub)


@router.post("/{bulk_id}/reject", response_model=BulkOut, responses=ERRORS,
             summary="Four-eyes: another operator rejects; every service is skipped")  # fmt: skip
async def reject_bulk(bulk_id: str, principal: OperatorDep, session: SessionDep) -> BulkOut:
    decided = await run_in_threadpool(_decide, bulk_id, principal, session, False)
    return await _resume_then_view(session, decided, False, principal.sub)


def _visible_bulk(session: Session, principal: Principal, bulk_id: str) -> BulkRun:
    row = get_tenant_bulk(session, principal, bulk_id)
    session.refresh(row)
    return row


def _cancel(bulk_id: str, principal: Principal, session: Session, state: AppState) -> Decided:
    """The cancel, committed and published. Blocking; leaves no transaction open."""
    row = _visible_bulk(session, principal, bulk_id)
    if BulkStatus(row.status) not in BULK_OPEN:
        raise HTTPException(status.HTTP_409_CONFLICT, f"the bulk run is already {row.status}")
    waiting = row.status == BulkStatus.AWAITING_APPROVAL.value
    if row.cancel_requested_at is None:
        row.cancel_requested_at = utcnow()
    changes = core_bulk.skip_pending(session, row.id, core_bulk.CANCELLED)
    session.commit()
    log.info("bulk run cancel requested",
             extra={"bulk_id": row.id, "by": principal.sub, "skipped": len(changes)})  # fmt: skip
    decided = (row.id, row.flow_run_id if waiting else None)
    _progress(state, session, row, changes)
    return decided


def _decide(bulk_id: str, principal: Principal, session: Session, approve: bool) -> Decided:
    """The four-eyes checks, then the decision, committed and logged. Blocking."""
    row = _visible_bulk(session, principal, bulk_id)
    if row.status != BulkStatus.AWAITING_APPROVAL.value:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"the bulk run is {row.status}, not awaiting_approval"
        )
    if principal.sub == row.requested_by:
        raise HTTPException(status.HTTP_403_FORBIDDEN, OWN_APPROVAL)
    if row.approved_by is not None or row.rejected_by is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "the bulk run was already decided")
    if approve:
        row.approved_by, row.approved_at = principal.sub, utcnow()
    else:
        row.rejected_by = principal.sub
    session.commit()
    # The audit trail of four-eyes: who decided what, for which requester.
    log.warning(
        "bulk run %s", "approved" if approve else "rejected",
        extra={"bulk_id": row.id, "tenant_id": row.tenant_id, "operation": row.operation,
               "requested_by": row.requested_by, "by": principal.sub},
    )  # fmt: skip
    return row.id, row.flow_run_id


def _progress(
    state: AppState, session: Session, row: BulkRun, changes: list[core_bulk.Change]
) -> None:
    """A ``bulk.progress`` event for a change the API made (never fails the request)."""
    bulk_id, tenant_id, operation, bulk_status = row.id, row.tenant_id, row.operation, row.status
    try:
        c = core_bulk.counts(session, bulk_id)
        # End the read before publishing: on SQLite its transaction holds the write lock
        # that the publisher's own connection needs for the event log.
        session.commit()
        data = {"operation": operation, "status": bulk_status, "counts": c,
                "total": sum(c.values()), "items": [ch.as_dict() for ch in changes]}  # fmt: skip
        publish_bulk_event(notices.publisher(state), bulk_id, tenant_id, BULK_PROGRESS, data)
    except Exception:
        session.rollback()
        log.exception("could not publish a bulk event", extra={"bulk_id": bulk_id})


async def _resume_then_view(session: Session, decided: Decided, approve: bool, by: str) -> BulkOut:
    """Hand the decision to the paused parent run (it also reads it from the row) on the
    event loop, then read the bulk run as it is now in a thread hop."""
    bulk_id, flow_run_id = decided
    if flow_run_id is not None:
        await _resume(bulk_id, flow_run_id, approve, by)
    return await run_in_threadpool(_view, session, bulk_id)


async def _resume(bulk_id: str, flow_run_id: str, approve: bool, by: str) -> None:
    try:
        resumed = await resume_paused(flow_run_id, {"approve": approve, "by": by})
    except Exception:
        log.exception("could not resume the bulk run", extra={"bulk_id": bulk_id})
        return
    if not resumed:
        log.warning("bulk run was not paused; its parent reads the decision from the database",
                    extra={"bulk_id": bulk_id, "flow_run_id": flow_run_id})  # fmt: skip


def _view(session: Session, bulk_id: str) -> BulkOut:
    row = session.get(BulkRun, bulk_id, populate_existing=True)
    assert row is not None, bulk_id  # bulk runs are never deleted
    try:
        return BulkOut.model_validate(core_bulk.view(session, row))
    finally:
        session.rollback()  # a read: nothing to keep

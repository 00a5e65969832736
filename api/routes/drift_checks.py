"""Drift checks: ``/api/v1/drift-checks`` and ``GET /api/v1/services/{id}/drift``.

The API never reads a device in a request: a check is a run of the ``drift-check``
deployment (flows/drift_check.py) that a worker executes; its report lands in the
``drift_checks`` table, which these routes read.

``GET /api/v1/services/{id}/drift`` starts a one-service check (that service's OLT, BNG
and RADIUS rows; no repair) and waits for its report up to ``wait`` seconds (default
10, at most 30), polling the database: 200 ``{in_sync, diff, id}`` when it has ended in
time, else 202 ``{id, flow_run_id}`` (the report then appears at
``GET /api/v1/drift-checks/{id}``).

Both routes that start a check are ``async def`` (as in api/operations.py): the database
work runs in short hops to the thread pool, the Prefect call and the wait between reads
on the event loop. A waiting request holds no thread of the pool and no transaction (on
SQLite one would hold the write lock the worker needs to store the report).

An operator sees fleet checks and their own tenant's one-service checks; in a report,
the service entries of other tenants are left out (their counts stay in the totals:
the devices are shared, the subscribers are not).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import OperatorDep, SessionDep
from fiberflow.api.schemas import ErrorBody
from fiberflow.core import catalogue
from fiberflow.core.db.models import DriftCheck, ServiceStatus, utcnow
from fiberflow.core.db.models.drift import DRIFT_FAILED, DRIFT_RUNNING
from fiberflow.core.tokens import Principal

log = logging.getLogger(__name__)
router = APIRouter(tags=["drift checks"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}
POLL_SECONDS = 0.25


class DriftCheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: "yes" or 1 is a mistake worth a 422, not a removal.
    remove_orphans: StrictBool = Field(
        default=False, description="Remove what no live service owns (through the drivers)"
    )


class DriftCheckAccepted(BaseModel):
    id: str
    flow_run_id: str


class DriftedService(BaseModel):
    service_id: str
    diff: str
    outcome: str  # repaired | in_sync | failed | skipped | not_repaired
    error: str | None = None


class OrphanOut(BaseModel):
    device: str
    kind: Literal["ont", "service-port", "sub-interface", "radius-user"]
    ref: str


class SkippedService(BaseModel):
    service_id: str
    status: str


class UnreadableDevice(BaseModel):
    device: str
    error: str
    services: list[str]


class DriftCheckOut(BaseModel):
    id: str
    status: Literal["running", "completed", "failed"]
    started_at: datetime
    finished_at: datetime | None
    remove_orphans: bool
    service_id: str | None
    flow_run_id: str | None
    error: str | None
    devices_read: list[str]
    services_checked: int
    in_sync: int
    drifted: list[DriftedService]
    repaired: int
    failed: int
    orphans: list[OrphanOut]
    orphans_removed: list[OrphanOut]
    skipped: list[SkippedService]
    unreadable: list[UnreadableDevice]


class ServiceDrift(BaseModel):
    id: str  # the drift check's
    in_sync: bool
    diff: str


def _out(row: DriftCheck, principal: Principal) -> DriftCheckOut:
    r: dict[str, Any] = row.report or {}

    def mine(entry: dict[str, Any]) -> bool:
        return entry.get("tenant_id") == principal.tenant_id

    return DriftCheckOut(
        id=row.id,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        remove_orphans=row.remove_orphans,
        service_id=row.service_id,
        flow_run_id=row.flow_run_id,
        error=row.error,
        devices_read=r.get("devices_read", []),
        services_checked=r.get("services_checked", 0),
        in_sync=r.get("in_sync", 0),
        drifted=[DriftedService(**d) for d in r.get("drifted", []) if mine(d)],
        repaired=r.get("repaired", 0),
        failed=r.get("failed", 0),
        orphans=[OrphanOut(**o) for o in r.get("orphans", [])],
        orphans_removed=[OrphanOut(**o) for o in r.get("orphans_removed", [])],
        skipped=[SkippedService(**s) for s in r.get("skipped", []) if mine(s)],
        unreadable=[
            UnreadableDevice(
                device=u["device"],
                error=u["error"],
                services=[s["service_id"] for s in u["services"] if mine(s)],
            )
            for u in r.get("unreadable", [])
        ],  # fmt: skip
    )


def _visible_check(session: Session, principal: Principal, check_id: str) -> DriftCheck:
    try:
        canonical = str(uuid.UUID(check_id))
    except ValueError:
        canonical = None
    row = session.get(DriftCheck, canonical) if canonical == check_id.lower() else None
    if row is None or (row.tenant_id is not None and row.tenant_id != principal.tenant_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"drift check {check_id} not found")
    return row


async def _launch_run(check_id: str, remove_orphans: bool, service_id: str | None) -> str:
    from prefect.deployments.flow_runs import arun_deployment

    run = await arun_deployment(
        catalogue.DRIFT_CHECK.full_name,
        parameters={
            "check_id": check_id,
            "remove_orphans": remove_orphans,
            "service_id": service_id,
        },  # fmt: skip
        timeout=0,
        tags=["drift-check", *([f"service:{service_id}"] if service_id else [])],
    )
    return str(run.id)


def _insert(session: Session, principal: Principal, remove_orphans: bool,
            service_id: str | None) -> str:  # fmt: skip
    """The check's row, committed (so GET answers at once); its id. Blocking."""
    row = DriftCheck(status=DRIFT_RUNNING, remove_orphans=remove_orphans, service_id=service_id,
                     tenant_id=principal.tenant_id, requested_by=principal.sub)  # fmt: skip
    session.add(row)
    session.commit()
    return row.id


async def _start(session: Session, check_id: str, remove_orphans: bool,
                 service_id: str | None) -> str:  # fmt: skip
    """Start the run of the inserted check on the event loop (no thread held while
    Prefect answers), then record its id in a thread hop; 503 if Prefect is away, the
    check then ended failed. The run's id."""
    try:
        flow_run_id = await _launch_run(check_id, remove_orphans, service_id)
    except Exception as exc:
        log.exception("could not start a drift check", extra={"check_id": check_id})
        await run_in_threadpool(_not_started, session, check_id, type(exc).__name__)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the orchestrator is not reachable; try again"
        ) from None
    await run_in_threadpool(_record, session, check_id, flow_run_id=flow_run_id)
    log.info("drift check started", extra={"check_id": check_id, "flow_run_id": flow_run_id,
                                           "service_id": service_id,
                                           "remove_orphans": remove_orphans})  # fmt: skip
    return flow_run_id


def _record(session: Session, check_id: str, **values: Any) -> None:
    session.execute(update(DriftCheck).where(DriftCheck.id == check_id).values(**values))
    session.commit()


def _not_started(session: Session, check_id: str, error: str) -> None:
    _record(session, check_id, status=DRIFT_FAILED, finished_at=utcnow(),
            error=f"could not start the check: {error}")  # fmt: skip


@router.post("/api/v1/drift-checks", status_code=202, response_model=DriftCheckAccepted,
             responses=ERRORS,
             summary="Check the whole fleet for drift; repair drifted services")  # fmt: skip
async def start_drift_check(
    principal: OperatorDep,
    session: SessionDep,
    body: Annotated[DriftCheckBody | None, Body()] = None,
) -> DriftCheckAccepted:
    remove_orphans = body.remove_orphans if body else False
    check_id = await run_in_threadpool(_insert, session, principal, remove_orphans, None)
    flow_run_id = await _start(session, check_id, remove_orphans, None)
    return DriftCheckAccepted(id=check_id, flow_run_id=flow_run_id)


@router.get("/api/v1/drift-checks/{check_id}", response_model=DriftCheckOut, responses=ERRORS)
def get_drift_check(check_id: str, principal: OperatorDep, session: SessionDep) -> DriftCheckOut:
    return _out(_visible_check(session, principal, check_id), principal)


@router.get("/api/v1/services/{service_id}/drift",
            response_model=ServiceDrift | DriftCheckAccepted,
            responses={**ERRORS, 202: {"model": DriftCheckAccepted}},
            summary="Read this service's devices now (a one-service drift check)")  # fmt: skip
async def service_drift(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    response: Response,
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for the report")] = 10,
) -> ServiceDrift | DriftCheckAccepted:
    sid, check_id = await run_in_threadpool(_insert_for_service, session, principal, service_id)
    flow_run_id = await _start(session, check_id, False, sid)
    # The wait holds no thread (an await between reads) and no transaction (each read is
    # a short hop that ends its own: on SQLite a transaction holds the write lock).
    deadline = time.monotonic() + wait
    state, report, error = await run_in_threadpool(_read, session, check_id)
    while state == DRIFT_RUNNING and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        state, report, error = await run_in_threadpool(_read, session, check_id)
    if state == DRIFT_RUNNING:
        response.status_code = status.HTTP_202_ACCEPTED
        return DriftCheckAccepted(id=check_id, flow_run_id=flow_run_id)
    if state == DRIFT_FAILED or not report:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"the drift check failed: {error or 'no report'}")  # fmt: skip
    return _service_answer(check_id, report, sid)


def _insert_for_service(session: Session, principal: Principal, service_id: str) -> tuple[str, str]:
    """The service's checks (404, 409), then the check's row: the service's id and the
    check's. Blocking."""
    svc = get_visible_service(session, principal, service_id)
    if svc.status != ServiceStatus.ACTIVE.value:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"a service in status {svc.status!r} has no plan state to compare (only active)",
        )
    return svc.id, _insert(session, principal, False, svc.id)


def _read(session: Session, check_id: str) -> tuple[str, dict[str, Any] | None, str | None]:
    """The check's status, report and error. Blocking; ends its transaction."""
    q = select(DriftCheck.status, DriftCheck.report, DriftCheck.error)
    try:
        state, report, error = session.execute(q.where(DriftCheck.id == check_id)).one()
    finally:
        session.rollback()  # a read: nothing to keep, and no lock held until the next one
    return state, report, error


def _service_answer(check_id: str, report: dict[str, Any], service_id: str) -> ServiceDrift:
    for down in report.get("unreadable", []):
        if any(s["service_id"] == service_id for s in down["services"]):
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                f"{down['device']} could not be read: {down['error']}")  # fmt: skip
    skipped = any(s["service_id"] == service_id for s in report.get("skipped", []))
    if skipped or not report.get("services_checked"):
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the service was no longer active when its devices were read"
        )
    drift = next((d for d in report.get("drifted", []) if d["service_id"] == service_id), None)
    return ServiceDrift(id=check_id, in_sync=drift is None, diff=drift["diff"] if drift else "")

"""Drift checks: ``/api/v1/drift-checks`` and ``GET /api/v1/services/{id}/drift``.

The API never reads a device in a request: a check is a run of the ``drift-check``
deployment (flows/drift_check.py) that a worker executes; its report lands in the
``drift_checks`` table, which these routes read.

``GET /api/v1/services/{id}/drift`` starts a one-service check (that service's OLT, BNG
and RADIUS rows; no repair) and waits for its report up to ``wait`` seconds (default
10, at most 30), polling the database: 200 ``{in_sync, diff, id}`` when it has ended in
time, else 202 ``{id, flow_run_id}`` (the report then appears at
``GET /api/v1/drift-checks/{id}``).

An operator sees fleet checks and their own tenant's one-service checks; in a report,
the service entries of other tenants are left out (their counts stay in the totals:
the devices are shared, the subscribers are not).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from anyio import from_thread
from fastapi import APIRouter, Body, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool
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


def _start(session: Session, principal: Principal, remove_orphans: bool,
           service_id: str | None) -> DriftCheck:  # fmt: skip
    """The row first (so GET answers at once), then the run; 503 if Prefect is away."""
    row = DriftCheck(status=DRIFT_RUNNING, remove_orphans=remove_orphans, service_id=service_id,
                     tenant_id=principal.tenant_id, requested_by=principal.sub)  # fmt: skip
    session.add(row)
    session.commit()
    try:
        flow_run_id = from_thread.run(_launch_run, row.id, remove_orphans, service_id)
    except Exception as exc:
        log.exception("could not start a drift check", extra={"check_id": row.id})
        row.status = DRIFT_FAILED
        row.error = f"could not start the check: {type(exc).__name__}"
        row.finished_at = utcnow()
        session.commit()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the orchestrator is not reachable; try again"
        ) from None
    row.flow_run_id = flow_run_id
    session.commit()
    log.info("drift check started", extra={"check_id": row.id, "flow_run_id": flow_run_id,
                                           "service_id": service_id,
                                           "remove_orphans": remove_orphans})  # fmt: skip
    return row


@router.post("/api/v1/drift-checks", status_code=202, response_model=DriftCheckAccepted,
             responses=ERRORS,
             summary="Check the whole fleet for drift; repair drifted services")  # fmt: skip
def start_drift_check(
    principal: OperatorDep,
    session: SessionDep,
    body: Annotated[DriftCheckBody | None, Body()] = None,
) -> DriftCheckAccepted:
    row = _start(session, principal, body.remove_orphans if body else False, None)
    assert row.flow_run_id is not None
    return DriftCheckAccepted(id=row.id, flow_run_id=row.flow_run_id)


@router.get("/api/v1/drift-checks/{check_id}", response_model=DriftCheckOut, responses=ERRORS)
def get_drift_check(check_id: str, principal: OperatorDep, session: SessionDep) -> DriftCheckOut:
    return _out(_visible_check(session, principal, check_id), principal)


@router.get("/api/v1/services/{service_id}/drift",
            response_model=ServiceDrift | DriftCheckAccepted,
            responses={**ERRORS, 202: {"model": DriftCheckAccepted}},
            summary="Read this service's devices now (a one-service drift check)")  # fmt: skip
def service_drift(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    response: Response,
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for the report")] = 10,
) -> ServiceDrift | DriftCheckAccepted:
    svc = get_visible_service(session, principal, service_id)
    if svc.status != ServiceStatus.ACTIVE.value:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"a service in status {svc.status!r} has no plan state to compare (only active)",
        )
    row = _start(session, principal, False, svc.id)
    deadline = time.monotonic() + wait
    while row.status == DRIFT_RUNNING and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)  # a threadpool route: the event loop is not held
        session.refresh(row)
    if row.status == DRIFT_RUNNING:
        response.status_code = status.HTTP_202_ACCEPTED
        assert row.flow_run_id is not None
        return DriftCheckAccepted(id=row.id, flow_run_id=row.flow_run_id)
    if row.status == DRIFT_FAILED or not row.report:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            f"the drift check failed: {row.error or 'no report'}")  # fmt: skip
    return _service_answer(row, svc.id)


def _service_answer(row: DriftCheck, service_id: str) -> ServiceDrift:
    report = row.report or {}
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
    return ServiceDrift(id=row.id, in_sync=drift is None, diff=drift["diff"] if drift else "")

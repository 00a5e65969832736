"""Zero-touch activation over HTTP: what the last discovery pass saw
(``GET /api/v1/discovery``) and a waiting order's serial given later
(``PATCH /api/v1/services/{id}``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import OperatorDep, SessionDep
from fiberflow.api.schemas import ErrorBody, SerialUpdate, ServiceOut
from fiberflow.core.db.models import OntSighting, ServiceInstance, ServiceStatus
from fiberflow.core.discovery import Sighting, WaitingOrder, decide

log = logging.getLogger(__name__)
router = APIRouter(tags=["zero-touch activation"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)
}
# A serial in one of these is free (DESIGN.md: held while not terminated or failed).
_FREE = (ServiceStatus.TERMINATED.value, ServiceStatus.FAILED.value)


class SightingOut(BaseModel):
    olt: str
    pon_port: str
    serial: str
    seen_at: datetime = Field(description="When the discovery pass read this OLT")
    matched: bool = Field(description="A service or a waiting order owns this serial")
    service_id: str | None = Field(description="That service, when it is yours to see")

    @field_validator("seen_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


class WaitingOut(BaseModel):
    service_id: str
    olt: str
    pon_port: str
    ont_serial: str | None
    reason: str = Field(description="Why it still waits (ambiguity, not seen yet, ...)")


class DiscoveryOut(BaseModel):
    sightings: list[SightingOut]
    waiting: list[WaitingOut]


@router.get("/api/v1/discovery", response_model=DiscoveryOut, responses=ERRORS,
            summary="ONTs seen in autofind on the last pass; orders awaiting theirs")  # fmt: skip
def get_discovery(principal: OperatorDep, session: SessionDep) -> DiscoveryOut:
    rows = list(session.scalars(select(OntSighting).order_by(OntSighting.olt,
                                                              OntSighting.pon_port,
                                                              OntSighting.serial)))  # fmt: skip
    sightings = [Sighting(r.olt, r.pon_port, r.serial) for r in rows]
    # Every tenant's orders and services decide (they share the ports); only the
    # principal's own are named.
    waiting_rows = list(session.scalars(
        select(ServiceInstance)
        .where(ServiceInstance.status == ServiceStatus.AWAITING_ONT.value)
        .order_by(ServiceInstance.created_at)
    ))  # fmt: skip
    owners: dict[str, ServiceInstance] = {r.ont_serial: r for r in waiting_rows if r.ont_serial}
    serials = {s.serial for s in sightings}
    if serials:
        owners |= {
            r.ont_serial: r
            for r in session.scalars(
                select(ServiceInstance).where(
                    ServiceInstance.ont_serial.in_(serials),
                    ServiceInstance.status.not_in(_FREE),
                    ServiceInstance.status != ServiceStatus.AWAITING_ONT.value,
                )
            )
            if r.ont_serial
        }
    held = {sn: r.id for sn, r in owners.items() if r.status != ServiceStatus.AWAITING_ONT}
    orders = [WaitingOrder(r.id, r.olt, r.pon_port, r.ont_serial) for r in waiting_rows]
    decision = decide(sightings, orders, held)
    bound = {b.serial: b.service_id for b in decision.bindings}
    mine = {r.id for r in owners.values() if r.tenant_id == principal.tenant_id}
    mine |= {r.id for r in waiting_rows if r.tenant_id == principal.tenant_id}

    def owner(serial: str) -> str | None:
        row = owners.get(serial)
        return row.id if row is not None else bound.get(serial)

    out_sightings = [
        SightingOut(olt=r.olt, pon_port=r.pon_port, serial=r.serial, seen_at=r.seen_at,
                    matched=owner(r.serial) is not None,
                    service_id=sid if (sid := owner(r.serial)) in mine else None)
        for r in rows
    ]  # fmt: skip
    by_order = {b.service_id: b.serial for b in decision.bindings}
    waiting = [
        WaitingOut(
            service_id=r.id, olt=r.olt, pon_port=r.pon_port, ont_serial=r.ont_serial,
            reason=decision.waiting.get(r.id)
            or f"its ONT {by_order.get(r.id)} is on its port: the next discovery pass binds it",
        )
        for r in waiting_rows
        if r.tenant_id == principal.tenant_id
    ]  # fmt: skip
    return DiscoveryOut(sightings=out_sightings, waiting=waiting)


@router.patch("/api/v1/services/{service_id}", response_model=ServiceOut, responses=ERRORS,
              summary="Give a zero-touch order (awaiting_ont) the serial of its ONT")  # fmt: skip
def set_serial(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    body: Annotated[SerialUpdate | None, Body()] = None,
) -> ServiceOut:
    # The body is optional to FastAPI so that a service the caller may not see is 404
    # whatever was sent (never a 422 that tells an id apart from a missing body).
    row = get_visible_service(session, principal, service_id)
    if body is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, 'ont_serial: required, as {"ont_serial": SN}'
        )
    if row.status != ServiceStatus.AWAITING_ONT:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"ont_serial: can only be set while the service awaits its ONT; it is {row.status}",
        )
    if row.ont_serial == body.ont_serial:
        return ServiceOut.of(row)
    row.ont_serial = body.ont_serial
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"ont_serial: {body.ont_serial} already belongs to a service that is not "
            "terminated or failed",
        ) from None
    except StaleDataError:
        # The discovery pass bound it, or it was terminated, since it was read.
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the service was changed by another request; retry"
        ) from None
    log.info("waiting order given its serial", extra={"service_id": row.id,
                                                      "serial": body.ont_serial})  # fmt: skip
    return ServiceOut.of(row)

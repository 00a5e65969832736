"""``/api/v1/services``: create, read, list, and the lifecycle operations.

The routes that start a run are ``async def``: their database work (checks, the insert,
the status transition, the step-1 announcement, a dry run's plan) runs in one hop to
the thread pool, and the Prefect call on the event loop (api/operations.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from fiberflow.api import dry_run as dry
from fiberflow.api import operations, zero_touch
from fiberflow.api.access import get_visible_service, visible
from fiberflow.api.deps import OperatorDep, PrincipalDep, SessionDep, StateDep
from fiberflow.api.inventory import InventoryDep
from fiberflow.api.ratelimit import limit_creates
from fiberflow.api.schemas import (
    Accepted,
    ErrorBody,
    ServiceCreate,
    ServiceOut,
    ServicePage,
    SuspendBody,
)
from fiberflow.core.catalogue import TERMINATES_WITHOUT_DEVICES
from fiberflow.core.db.models import Operation, ServiceInstance, ServiceStatus
from fiberflow.core.tokens import Principal
from fiberflow.devices.inventory import Inventory

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/services", tags=["services"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", pattern=r"^[A-Za-z0-9._:-]{1,128}$",
           description="Repeat a create safely: the same key returns the same service"),
]  # fmt: skip


def _check_against_inventory(body: ServiceCreate, inventory: Inventory) -> None:
    def bad(field: str, message: str) -> HTTPException:
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: {message}")

    try:
        olt = inventory.olt(body.olt)
    except KeyError:
        raise bad("olt", f"unknown OLT {body.olt!r}") from None
    try:
        inventory.plan(body.plan)
    except KeyError:
        known = ", ".join(p.name for p in inventory.plans)
        raise bad("plan", f"unknown plan {body.plan!r} (one of {known})") from None
    if not olt.has_port(body.pon_port):
        raise bad("pon_port", f"{body.pon_port} is not a GPON port of {olt.name}")


async def _limit_unless_dry_run(
    principal: OperatorDep, state: StateDep, dry_run: dry.DryRun = False
) -> Principal:
    """A dry run orders nothing: it takes no create token (the role check still runs)."""
    return principal if dry_run else await limit_creates(principal, state)


def _serial_held(session: SessionDep, serial: str | None) -> bool:
    """Would the insert meet the unique index on live serials (the create's 409)?"""
    held = ServiceInstance.status.not_in(
        [ServiceStatus.TERMINATED.value, ServiceStatus.FAILED.value]
    )
    q = select(ServiceInstance.id).where(ServiceInstance.ont_serial == serial, held)
    return serial is not None and session.scalars(q).first() is not None


def _dry_create(session: SessionDep, state: StateDep, body: ServiceCreate, waits: bool) -> Response:
    if _serial_held(session, body.ont_serial):
        raise HTTPException(status.HTTP_409_CONFLICT, _serial_conflict(body.ont_serial))
    plan = (
        dry.nothing(Operation.PROVISIONING)  # zero-touch: no device until its ONT appears
        if waits
        else dry.answer(state, session, Operation.PROVISIONING, None, body.model_dump())
    )
    return dry.respond(plan)


def _serial_conflict(serial: str | None) -> str:
    return f"ont_serial: {serial} already belongs to a service that is not terminated or failed"


def _request_hash(body: ServiceCreate) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def _prepare(
    session: SessionDep,
    state: StateDep,
    row: ServiceInstance,
    operation: Operation,
    params: dict[str, Any],
) -> operations.Pending:
    """Begin and announce the operation (in the thread pool); a run that cannot be
    started then fails the service."""
    # A create that never started frees its Idempotency-Key: "try again" must work.
    creating = operation is Operation.PROVISIONING
    give_back = partial(operations.record_launch_failure, release_idempotency_key=creating)
    return operations.prepare(session, row, operation, params, state=state, give_back=give_back)


@router.post("", status_code=202, response_model=Accepted,
             responses={**ERRORS, **dry.RESPONSES, 429: {"model": ErrorBody}},
             summary="Order a new fibre service (starts provisioning)")  # fmt: skip
async def create_service(
    principal: OperatorDep,
    _rate: Annotated[Principal, Depends(_limit_unless_dry_run)],
    session: SessionDep,
    inventory: InventoryDep,
    body: ServiceCreate,
    state: StateDep,
    idempotency_key: IdempotencyKey = None,
    dry_run: dry.DryRun = False,
) -> Accepted | Response:
    ready = await run_in_threadpool(
        _create, principal, session, inventory, body, state, idempotency_key, dry_run
    )
    return await operations.answer(state, session, ready)


def _create(
    principal: Principal,
    session: SessionDep,
    inventory: Inventory,
    body: ServiceCreate,
    state: StateDep,
    idempotency_key: str | None,
    dry_run: bool,
) -> Accepted | Response | operations.Pending:
    """The create's database work, in the thread pool: checks, the insert, and (unless
    the order waits for its ONT) the provisioning begun and announced."""
    _check_against_inventory(body, inventory)
    waits = body.activation == "on_discovery"
    if body.ont_serial is None and not waits:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "ont_serial: required unless activation is 'on_discovery'",
        )
    digest = _request_hash(body)
    if idempotency_key and (replayed := _replay(session, principal, idempotency_key, digest)):
        return dry.respond(dry.nothing(Operation.PROVISIONING)) if dry_run else replayed
    if dry_run:
        return _dry_create(session, state, body, waits)
    row = ServiceInstance(
        tenant_id=principal.tenant_id,
        status=ServiceStatus.PENDING.value,
        idempotency_key=idempotency_key,
        request_hash=digest,
        **body.model_dump(),
    )
    if waits:
        row.await_ont()  # zero-touch: the discovery pass starts provisioning
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        # A concurrent request with the same Idempotency-Key may have inserted first.
        if idempotency_key and (replayed := _replay(session, principal, idempotency_key, digest)):
            return replayed
        raise HTTPException(status.HTTP_409_CONFLICT, _serial_conflict(body.ont_serial)) from None
    if waits:
        return zero_touch.accept_waiting(state, row)
    return _prepare(session, state, row, Operation.PROVISIONING, {})


def _replay(session: SessionDep, principal: Principal, key: str, digest: str) -> Accepted | None:
    """The service an earlier create with this Idempotency-Key made, or None; 409 when
    that create had another body."""
    existing = session.scalars(
        select(ServiceInstance).where(
            ServiceInstance.tenant_id == principal.tenant_id,
            ServiceInstance.idempotency_key == key,
        )
    ).one_or_none()
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "Idempotency-Key was already used with a different body"
        )
    return Accepted(id=existing.id, status=existing.status, flow_run_id=existing.flow_run_id)


def _encode_cursor(row: ServiceInstance) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, _, sid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        at = datetime.fromisoformat(stamp)
        # created_at is UTC: SQLite hands it back naive, PostgreSQL aware. Compare instants.
        return (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)), sid
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "cursor: not a cursor this API returned") from None  # fmt: skip


@router.get("", response_model=ServicePage, responses=ERRORS,
            summary="List services (a customer sees their own), newest first")  # fmt: skip
def list_services(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status_filter: Annotated[ServiceStatus | None, Query(alias="status")] = None,
) -> ServicePage:
    q = visible(select(ServiceInstance), principal)
    if status_filter is not None:
        q = q.where(ServiceInstance.status == status_filter.value)
    if cursor:
        at, sid = _decode_cursor(cursor)
        q = q.where(
            or_(
                ServiceInstance.created_at < at,
                and_(ServiceInstance.created_at == at, ServiceInstance.id < sid),
            )
        )
    q = q.order_by(ServiceInstance.created_at.desc(), ServiceInstance.id.desc()).limit(limit + 1)
    rows: list[ServiceInstance] = list(session.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    return ServicePage(
        items=[ServiceOut.of(r) for r in rows],
        next=_encode_cursor(rows[-1]) if more and rows else None,
    )


@router.get("/{service_id}", response_model=ServiceOut, responses=ERRORS)
def get_service(service_id: str, principal: PrincipalDep, session: SessionDep) -> ServiceOut:
    return ServiceOut.of(get_visible_service(session, principal, service_id))


def _dry_or_prepare(
    session: SessionDep,
    state: StateDep,
    row: ServiceInstance,
    operation: Operation,
    params: dict[str, Any],
    dry_run: bool,
) -> Response | operations.Pending:
    if not dry_run:
        return _prepare(session, state, row, operation, params)
    dry.check_begin(session, row, operation)
    return dry.respond(dry.answer(state, session, operation, row.id, params))


@router.post(
    "/{service_id}/suspend",
    status_code=202,
    response_model=Accepted,
    responses={**ERRORS, **dry.RESPONSES},
    summary="Suspend: walled garden (RADIUS group + CoA); hard also stops the ONT",
)
async def suspend_service(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    state: StateDep,
    body: Annotated[SuspendBody | None, Body()] = None,
    dry_run: dry.DryRun = False,
) -> Accepted | Response:
    def ready() -> Response | operations.Pending:
        row = get_visible_service(session, principal, service_id)
        hard = body.hard if body else False
        return _dry_or_prepare(session, state, row, Operation.SUSPENSION, {"hard": hard}, dry_run)

    return await operations.answer(state, session, await run_in_threadpool(ready))


@router.post("/{service_id}/resume", status_code=202, response_model=Accepted,
             responses={**ERRORS, **dry.RESPONSES})  # fmt: skip
async def resume_service(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    state: StateDep,
    dry_run: dry.DryRun = False,
) -> Accepted | Response:
    def ready() -> Response | operations.Pending:
        row = get_visible_service(session, principal, service_id)
        return _dry_or_prepare(session, state, row, Operation.RESUMPTION, {}, dry_run)

    return await operations.answer(state, session, await run_in_threadpool(ready))


@router.post("/{service_id}/terminate", status_code=202, response_model=Accepted,
             responses={**ERRORS, **dry.RESPONSES})  # fmt: skip
async def terminate_service(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    state: StateDep,
    dry_run: dry.DryRun = False,
) -> Accepted | Response:
    def ready() -> Accepted | Response | operations.Pending:
        row = get_visible_service(session, principal, service_id)
        if row.status in TERMINATES_WITHOUT_DEVICES:
            if dry_run:  # a withdrawal: the row only, nothing on any device or in IPAM
                return dry.respond(dry.nothing(Operation.TERMINATION))
            return zero_touch.withdraw(session, state, row)  # nothing on any device: no run
        return _dry_or_prepare(session, state, row, Operation.TERMINATION, {}, dry_run)

    return await operations.answer(state, session, await run_in_threadpool(ready))

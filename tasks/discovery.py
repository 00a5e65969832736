"""Zero-touch activation's steps: read an OLT's autofind, keep what it showed, bind.

A discovery pass reads ``display ont autofind all`` once per OLT, never once per order:
the decision which ONT belongs to which waiting order is made in memory
(core/discovery.py) over everything the pass saw.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.asyncutils import run_coro_as_sync
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from fiberflow.core.db.models import (
    OntSighting,
    Operation,
    ServiceInstance,
    ServiceStatus,
)
from fiberflow.core.discovery import Binding, Decision, Sighting, WaitingOrder, decide
from fiberflow.core.launch import launch
from fiberflow.tasks import devices
from fiberflow.tasks.retry import device_task
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)
STEP = "discovery"  # the audit log's step of the autofind reads
# Statuses in which a serial is held by a service that is past waiting.
_NOT_HOLDING = (
    ServiceStatus.AWAITING_ONT.value,
    ServiceStatus.TERMINATED.value,
    ServiceStatus.FAILED.value,
)


@device_task(name="read-autofind", cache_policy=NO_CACHE)
def read_autofind(olt: str) -> list[Sighting]:
    """One ``display ont autofind all`` on ``olt`` (one session)."""
    driver = devices.olt(None, olt, STEP)
    with devices.device_slot(olt):
        found = driver.read_autofind()
    log.info("autofind read", extra={"device": olt, "onts": len(found)})
    return [Sighting(olt, f.fsp, f.serial) for f in found]


@task(name="record-sightings", cache_policy=NO_CACHE)
def record_sightings(olt: str, sightings: list[Sighting]) -> None:
    """Replace what ``olt`` showed on the last pass with what it shows now."""
    now = datetime.now(UTC)
    with runtime().sessions() as s, s.begin():
        s.execute(delete(OntSighting).where(OntSighting.olt == olt))
        s.add_all(
            OntSighting(olt=x.olt, pon_port=x.pon_port, serial=x.serial, seen_at=now)
            for x in sightings
        )


@task(name="forget-removed-olts", cache_policy=NO_CACHE)
def forget_other_olts(olts: list[str]) -> None:
    """Drop the sightings of OLTs the inventory no longer names (they are read no more)."""
    with runtime().sessions() as s, s.begin():
        s.execute(delete(OntSighting).where(OntSighting.olt.not_in(olts)))


def waiting_orders() -> list[WaitingOrder]:
    with runtime().sessions() as s:
        rows = s.scalars(
            select(ServiceInstance).where(
                ServiceInstance.status == ServiceStatus.AWAITING_ONT.value
            )
        )
        return [WaitingOrder(r.id, r.olt, r.pon_port, r.ont_serial) for r in rows]


def held_serials(serials: set[str]) -> dict[str, str]:
    """Which of ``serials`` a live service (past waiting) holds: serial -> service id."""
    if not serials:
        return {}
    with runtime().sessions() as s:
        rows = s.execute(
            select(ServiceInstance.ont_serial, ServiceInstance.id).where(
                ServiceInstance.ont_serial.in_(serials),
                ServiceInstance.status.not_in(_NOT_HOLDING),
            )
        )
        return {serial: sid for serial, sid in rows if serial}


@task(name="match-onts", cache_policy=NO_CACHE)
def match(sightings: list[Sighting]) -> Decision:
    decision = decide(sightings, waiting_orders(), held_serials({s.serial for s in sightings}))
    for sid, reason in decision.waiting.items():
        log.info("order keeps waiting", extra={"service_id": sid, "reason": reason})
    return decision


@task(name="bind-ont", cache_policy=NO_CACHE)
def bind(binding: Binding) -> str | None:
    """Give the order its serial, move it to provisioning and start the provisioning
    deployment. None (nothing changed) when the order stopped waiting meanwhile or the
    serial was taken by another service; the id of the provisioning run otherwise."""
    extra = {"service_id": binding.service_id, "serial": binding.serial}
    try:
        with runtime().sessions() as s, s.begin():
            row = s.get(ServiceInstance, binding.service_id)
            if row is None or row.status != ServiceStatus.AWAITING_ONT.value:
                log.info("order no longer waits; not bound", extra=extra)
                return None
            if row.ont_serial is None:
                row.ont_serial = binding.serial
            row.begin(Operation.PROVISIONING)
    except (IntegrityError, StaleDataError) as exc:
        # Terminated or given another serial by a request since the pass read it, or
        # the serial now belongs to another service: the next pass decides again.
        log.warning("bind lost a race; not bound", extra={**extra, "error": type(exc).__name__})
        return None
    try:
        flow_run_id = run_coro_as_sync(launch(binding.service_id, Operation.PROVISIONING, {}))
    except Exception as exc:
        log.exception("could not start provisioning", extra=extra)
        with runtime().sessions() as s, s.begin():
            row = s.get(ServiceInstance, binding.service_id, populate_existing=True)
            if row is not None and row.status == ServiceStatus.PROVISIONING.value:
                row.fail(f"could not start the operation: {type(exc).__name__}")
        raise
    assert flow_run_id is not None
    with runtime().sessions() as s, s.begin():
        # Unversioned, as the API records it: the run may already be writing the row.
        s.execute(
            update(ServiceInstance)
            .where(ServiceInstance.id == binding.service_id)
            .values(flow_run_id=flow_run_id)
        )
    log.info("ONT bound; provisioning started", extra={**extra, "flow_run_id": flow_run_id})
    return flow_run_id

"""Removing a service from every system, each part idempotent (absent = done).

Used by termination, and by the reconciler to compensate a run that crashed (whose
Prefect rollback hooks never ran): it finds the ONT by serial, not only by the recorded
id, because a crash can fall between a device change and the row update.
"""

from __future__ import annotations

import logging

from fiberflow.core.ipam import release_ip, release_vlan
from fiberflow.devices.olt.protocol import OltDriver
from fiberflow.devices.radius.types import CoaStatus, RadiusTimeout
from fiberflow.tasks import devices, service
from fiberflow.tasks.context import RunContext
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceView

log = logging.getLogger(__name__)


def disconnect(ctx: RunContext | None, svc: ServiceView, step: str) -> str:
    if not svc.radius_username:
        return "no RADIUS user"
    try:
        result = devices.radius(ctx, step).disconnect(devices.nas_for(svc.olt),
                                                      svc.radius_username)  # fmt: skip
    except RadiusTimeout as exc:
        # The client has already re-sent it. A silent NAS must not block removal either:
        # removing the RADIUS rows and the BNG sub-interface ends the session anyway.
        log.warning("disconnect unanswered: %s", exc, extra={"service_id": svc.id})
        return "NAS did not answer the disconnect"
    if result.status is CoaStatus.ACK:
        return "session disconnected"
    if result.session_not_found:
        return "no active session"
    # A NAS that refuses for another reason must not block removal; it is recorded.
    log.warning("disconnect refused: %s", result.error_cause, extra={"service_id": svc.id})
    return f"NAS refused disconnect ({result.error_cause or 'NAK'})"


def remove_radius(ctx: RunContext | None, svc: ServiceView, step: str) -> None:
    if svc.radius_username:
        devices.radius(ctx, step).remove(svc.radius_username)


def remove_bng(ctx: RunContext | None, svc: ServiceView, step: str) -> None:
    if svc.vlan is None:
        return
    name = runtime().inventory.olt(svc.olt).bng
    with devices.device_slot(name):
        devices.bng(ctx, name, step).remove_subscriber(svc.vlan)


def ont_location(olt: OltDriver, svc: ServiceView) -> tuple[str, int] | None:
    """Where the service's ONT is: found by serial, else the recorded id (if any)."""
    with devices.device_slot(svc.olt):
        found = olt.find_ont_by_serial(svc.ont_serial)
    if found is not None:
        return found.fsp, found.ont_id
    return None if svc.ont_id is None else (svc.pon_port, svc.ont_id)


def remove_ont(ctx: RunContext | None, svc: ServiceView, step: str) -> None:
    olt = devices.olt(ctx, svc.olt, step)
    with devices.session(olt, svc.olt):  # the lookup and the delete: one login
        where = ont_location(olt, svc)
        if where is not None:
            olt.delete_ont(*where)  # also removes its service-ports


def release(svc: ServiceView) -> None:
    with runtime().sessions() as s, s.begin():
        release_ip(s, service_id=svc.id)
        release_vlan(s, service_id=svc.id)


def clear_row(svc: ServiceView) -> None:
    service.update(svc.id, ip_address=None, vlan=None, ont_id=None)


def everything(ctx: RunContext | None, svc: ServiceView) -> None:
    """The whole teardown, in dependency order."""
    disconnect(ctx, svc, "compensating")
    remove_radius(ctx, svc, "compensating")
    remove_bng(ctx, svc, "compensating")
    remove_ont(ctx, svc, "compensating")
    release(svc)

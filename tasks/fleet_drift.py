"""The fleet drift check's device work: one read per device, removal of an orphan.

Each read is one driver call (one SSH session or three SQL reads) inside the device's
Prefect global concurrency slot (tasks/devices.py), so the per-device session limits
bind here as in every other run. Reads are audited with step ``drift-check`` and no
service: they belong to the fleet, not to one subscriber.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import select

from fiberflow.core.db.models import ServiceInstance, ServiceStatus
from fiberflow.devices.bng.fleet import BngFleet
from fiberflow.devices.olt.fleet import OltFleet
from fiberflow.devices.radius.types import RadiusSubscriber
from fiberflow.tasks import devices
from fiberflow.tasks.fleet_compare import RADIUS, Orphan
from fiberflow.tasks.retry import device_task
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceView

log = logging.getLogger(__name__)
STEP = "drift-check"


@device_task(name="read-olt-fleet", cache_policy=NO_CACHE)
def read_olt(name: str) -> OltFleet:
    driver = devices.olt(None, name, STEP)
    with devices.device_slot(name):
        fleet = driver.read_fleet()
    log.info("olt read", extra={"device": name, "onts": len(fleet.onts),
                                "service_ports": len(fleet.service_ports)})  # fmt: skip
    return fleet


@device_task(name="read-bng-fleet", cache_policy=NO_CACHE)
def read_bng(name: str) -> BngFleet:
    driver = devices.bng(None, name, STEP)
    with devices.device_slot(name):
        fleet = driver.read_fleet()
    log.info("bng read", extra={"device": name, "subinterfaces": len(fleet.subinterfaces)})
    return fleet


@device_task(name="read-radius-fleet", cache_policy=NO_CACHE)
def read_radius() -> dict[str, RadiusSubscriber]:
    users = devices.radius(None, STEP).read_all()
    log.info("radius read", extra={"device": RADIUS, "users": len(users)})
    return users


@task(name="load-services", cache_policy=NO_CACHE)
def load_services(service_ids: list[str] | None = None) -> list[ServiceView]:
    """Every service that is not terminated (or the given ones, whatever their status)."""
    with runtime().sessions() as s:
        q = select(ServiceInstance)
        if service_ids is not None:
            q = q.where(ServiceInstance.id.in_(service_ids))
        else:
            q = q.where(ServiceInstance.status != ServiceStatus.TERMINATED.value)
        return [ServiceView.of(row) for row in s.scalars(q.order_by(ServiceInstance.created_at))]


@device_task(name="remove-orphan", cache_policy=NO_CACHE)
def remove_orphan(orphan: Orphan) -> bool:
    """Remove one orphan through its driver (audited like every device command)."""
    step = f"{STEP}-orphans"
    if orphan.device == RADIUS:
        return devices.radius(None, step).remove(orphan.ref).changed
    if orphan.kind == "sub-interface":
        bng = devices.bng(None, orphan.device, step)
        with devices.device_slot(orphan.device):
            return bng.remove_interface(orphan.ref).changed
    olt = devices.olt(None, orphan.device, step)
    with devices.device_slot(orphan.device):
        if orphan.kind == "ont":
            assert orphan.fsp is not None and orphan.ont_id is not None
            return olt.delete_ont(orphan.fsp, orphan.ont_id).changed
        assert orphan.index is not None
        return olt.remove_service_port(orphan.index).changed


def still_orphans(found: Iterable[Orphan], fresh: Iterable[Orphan]) -> list[Orphan]:
    """``found`` that are orphans still when compared with the services as they are now:
    a service created since the devices were read may own one of them."""
    keep = set(fresh)
    return [o for o in found if o in keep]

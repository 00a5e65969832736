"""Drift repair: read OLT, BNG and RADIUS state, diff against the database, re-apply
only what drifted. Every repair goes through the same idempotent driver calls as
provisioning, so repairing an in-sync service changes nothing.

Only ``active`` services are reprovisioned (the status machine), so the wanted state is
always the plan's: RADIUS group = the plan, BNG policies = the plan's, ONT activated.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from fiberflow.core import catalogue
from fiberflow.core.db.models import InvalidTransition, Operation, ServiceStatus
from fiberflow.devices.base import Result
from fiberflow.devices.bng.models import SubInterface
from fiberflow.devices.bng.protocol import BngDriver
from fiberflow.devices.inventory import Plan
from fiberflow.devices.olt.models import OntInfo, ServicePort
from fiberflow.devices.olt.protocol import OltDriver
from fiberflow.devices.radius.protocol import RadiusRows
from fiberflow.devices.radius.types import RadiusSubscriber
from fiberflow.tasks import devices, service, service_ops
from fiberflow.tasks.context import lookup, register
from fiberflow.tasks.hooks import step_hooks
from fiberflow.tasks.provisioning import subscriber_password
from fiberflow.tasks.retry import device_task
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceStateError, ServiceView

log = logging.getLogger(__name__)
S = catalogue.REPROVISIONING.steps


@dataclass(frozen=True, slots=True)
class Drift:
    system: str  # olt | bng | radius
    item: str
    expected: str
    actual: str

    def line(self) -> str:
        return f"{self.system}.{self.item}: expected {self.expected}, found {self.actual}"


@dataclass(frozen=True, slots=True)
class DriftReport:
    service_id: str
    drift: list[Drift] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not self.drift

    @property
    def items(self) -> set[str]:
        return {f"{d.system}.{d.item}" for d in self.drift}

    def diff(self) -> str:
        return "\n".join(d.line() for d in self.drift)


class DriftRemains(RuntimeError):
    """The repair ran, yet the devices still differ from the record. Not retried: the
    same repair would run again."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the database says the devices should hold for one service."""

    plan: Plan
    bng: str
    ont_id: int
    vlan: int
    ip: str
    netmask: str
    username: str
    description: str


def wanted(svc: ServiceView) -> Wanted:
    if svc.ont_id is None or svc.vlan is None or svc.ip_address is None:
        raise ServiceStateError("service record lacks ONT id, VLAN or IP")
    if not svc.radius_username:
        raise ServiceStateError("service record lacks its RADIUS username")
    inv = runtime().inventory
    bng = inv.bng_for(svc.olt)
    return Wanted(
        plan=inv.plan(svc.plan),
        bng=bng.name,
        ont_id=svc.ont_id,
        vlan=svc.vlan,
        ip=svc.ip_address,
        netmask=str(ipaddress.ip_network(bng.ip_pool).netmask),
        username=svc.radius_username,
        description=svc.description or f"ff-{svc.customer_ref}"[:64],
    )


# -- the checks, on values already read (here per service; tasks/fleet_compare.py per fleet) --
def olt_drift(serial: str | None, want: Wanted, ont: OntInfo | None,
              ports: Iterable[ServicePort]) -> list[Drift]:  # fmt: skip
    if ont is None or ont.serial != serial:
        return [Drift("olt", "ont", str(serial), ont.serial if ont else "absent")]
    drift: list[Drift] = []
    if ont.control_flag != "active":
        drift.append(Drift("olt", "ont_state", "active", ont.control_flag))
    if not any(p.vlan == want.vlan and p.gem_port == want.plan.gem_port for p in ports):
        drift.append(Drift("olt", "service-port", f"vlan {want.vlan}", "absent"))
    return drift


def bng_drift(want: Wanted, sub: SubInterface | None) -> list[Drift]:
    if sub is None:
        return [Drift("bng", "sub-interface", f"vlan {want.vlan}", "absent")]
    return [
        Drift("bng", item, str(expected), str(found))
        for item, expected, found in (
            ("vlan", want.vlan, sub.vlan),
            ("ip_address", want.ip, sub.ip_address),
            ("netmask", want.netmask, sub.netmask),
            ("policy_in", want.plan.policy_in, sub.policy_in),
            ("policy_out", want.plan.policy_out, sub.policy_out),
        )
        if expected != found
    ]


def radius_drift(want: Wanted, rad: RadiusSubscriber | None) -> list[Drift]:
    if rad is None or not rad.password:
        return [Drift("radius", "subscriber", want.username, "absent")]
    drift = [
        Drift("radius", item, str(expected), str(found))
        for item, expected, found in (
            ("ip_address", want.ip, rad.ip_address),
            ("netmask", want.netmask, rad.netmask),
            ("group", want.plan.name, rad.group),
        )
        if expected != found
    ]
    if len(rad.groups) > 1:
        drift.append(Drift("radius", "groups", want.plan.name, ",".join(rad.groups)))
    return drift


def _read_olt(olt: OltDriver, svc: ServiceView, want: Wanted) -> list[Drift]:
    with devices.session(olt, svc.olt):  # the ONT and its service-ports: one login
        ont = olt.get_ont(svc.pon_port, want.ont_id)
        if ont is None or ont.serial != svc.ont_serial:
            return olt_drift(svc.ont_serial, want, ont, ())  # no service-ports to read then
        ports = olt.list_service_ports(svc.pon_port, want.ont_id)
    return olt_drift(svc.ont_serial, want, ont, ports)


def _read_bng(bng: BngDriver, want: Wanted) -> list[Drift]:
    with devices.device_slot(want.bng):
        sub = bng.get_subscriber(want.vlan)
    return bng_drift(want, sub)


def drift_of(svc: ServiceView, want: Wanted, olt: OltDriver, bng: BngDriver,
             radius: RadiusRows) -> DriftReport:  # fmt: skip
    """Read the service's OLT, BNG and RADIUS state through these drivers; compare."""
    drift = _read_olt(olt, svc, want) + _read_bng(bng, want)
    return DriftReport(svc.id, drift + radius_drift(want, radius.get(want.username)))


def read_drift(svc: ServiceView) -> DriftReport:
    ctx = lookup(flow_run.id)
    want = wanted(svc)
    olt, bng = devices.olt(ctx, svc.olt, "checking"), devices.bng(ctx, want.bng, "checking")
    return drift_of(svc, want, olt, bng, devices.radius(ctx, "checking"))


def repair_olt(olt: OltDriver, svc: ServiceView, want: Wanted, *, dry_run: bool = False
               ) -> list[Result]:  # fmt: skip
    """The ONT (by its recorded id), its service-port, its activation: one login."""
    with devices.session(olt, svc.olt):
        added = olt.add_ont(svc.pon_port, want.ont_id, svc.ont_serial, want.plan.line_profile_id,
                            want.plan.service_profile_id, want.description,
                            dry_run=dry_run)  # fmt: skip
        port = olt.add_service_port(svc.pon_port, want.ont_id, want.plan.gem_port, want.vlan,
                                    dry_run=dry_run)  # fmt: skip
        if dry_run and added.changed:
            return [added, port]  # an ONT that `ont add` registers is active: nothing to read
        return [added, port, olt.activate_ont(svc.pon_port, want.ont_id, dry_run=dry_run)]


def repair_bng(bng: BngDriver, want: Wanted, *, dry_run: bool = False) -> Result:
    with devices.device_slot(want.bng):
        return bng.add_subscriber(want.vlan, want.ip, want.netmask, want.plan.policy_in,
                                  want.plan.policy_out, want.description,
                                  dry_run=dry_run)  # fmt: skip


def repair_radius(radius: RadiusRows, want: Wanted, *, dry_run: bool = False) -> Result:
    password = subscriber_password(radius, want.username)
    # The same rows provisioning writes (netmask included); replaces the groups.
    return radius.activate(want.username, password, want.ip, want.plan.name,
                           netmask=want.netmask, dry_run=dry_run)  # fmt: skip


def repair(svc: ServiceView, report: DriftReport) -> None:
    ctx = lookup(flow_run.id)
    want = wanted(svc)
    systems = {d.system for d in report.drift}
    if "olt" in systems:
        repair_olt(devices.olt(ctx, svc.olt, "repairing"), svc, want)
    if "bng" in systems:
        repair_bng(devices.bng(ctx, want.bng, "repairing"), want)
    if "radius" in systems:
        repair_radius(devices.radius(ctx, "repairing"), want)


def claim_or_refuse(service_id: str) -> None:
    """Move an ``active`` service into ``reprovisioning`` (a direct run), or accept one
    the API / the nightly run already moved; refuse any other status, as the API answers
    409: the row is left untouched (not failed, its last flow run kept)."""
    if service_ops.claim(service_id, Operation.REPROVISIONING):
        return
    svc = service.load(service_id)
    if svc.status == ServiceStatus.REPROVISIONING.value:
        return
    refused = InvalidTransition(svc.status, Operation.REPROVISIONING.value)
    # Registered so the flow's failure hook reports this operation, not the row's last one.
    register(svc.id, svc.tenant_id, Operation.REPROVISIONING, str(flow_run.id)).error = str(refused)
    raise refused


@device_task(name="check-drift", cache_policy=NO_CACHE, **step_hooks(S["checking"]))
def check_drift(service_id: str) -> DriftReport:
    return read_drift(service.load(service_id))


@device_task(name="repair-drift", cache_policy=NO_CACHE, **step_hooks(S["repairing"]))
def repair_drift(service_id: str, report: DriftReport) -> str:
    if report.in_sync:
        return "in_sync"
    svc = service.load(service_id)
    repair(svc, report)
    after = read_drift(svc)
    if not after.in_sync:
        raise DriftRemains(f"drift remains after repair: {after.diff()}")
    log.info("drift repaired", extra={"service_id": service_id, "drift": sorted(report.items)})
    return "repaired"


@task(name="complete-reprovisioning", cache_policy=NO_CACHE, **step_hooks(S["completed"]))
def complete_reprovisioning(service_id: str) -> None:
    service.finish(service_id, Operation.REPROVISIONING)

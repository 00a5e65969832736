"""Drift repair: read OLT, BNG and RADIUS state, diff against the database, re-apply
only what drifted. Every repair goes through the same idempotent driver calls as
provisioning, so repairing an in-sync service changes nothing."""

from __future__ import annotations

import ipaddress
import logging
import secrets
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from core.db.models import Operation
from devices.base import PermanentDeviceError
from devices.radius.types import SUSPENDED_GROUP
from tasks import devices, service
from tasks.context import lookup
from tasks.hooks import step_hooks
from tasks.retry import device_retries
from tasks.runtime import runtime
from tasks.service import ServiceView
from tasks.steps import REPROVISIONING as S

log = logging.getLogger(__name__)


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

    def diff(self) -> str:
        return "\n".join(d.line() for d in self.drift)


def _description(svc: ServiceView) -> str:
    return svc.description or f"ff-{svc.customer_ref}"[:64]


def _expected_policies(svc: ServiceView) -> tuple[str, str]:
    inv = runtime().inventory
    if svc.status == "suspended":
        return inv.walled_garden_policy, inv.walled_garden_policy
    plan = inv.plan(svc.plan)
    return plan.policy_in, plan.policy_out


def read_drift(svc: ServiceView, suspended: bool) -> DriftReport:
    ctx = lookup(flow_run.id)
    inv = runtime().inventory
    plan = inv.plan(svc.plan)
    bng_name = inv.olt(svc.olt).bng
    drift: list[Drift] = []
    if svc.ont_id is None or svc.vlan is None or svc.ip_address is None:
        raise PermanentDeviceError("fiberflow", "service record lacks ONT id, VLAN or IP")
    olt = devices.olt(ctx, svc.olt, "checking")
    with devices.device_slot(svc.olt):
        ont = olt.get_ont(svc.pon_port, svc.ont_id)
    if ont is None or ont.serial != svc.ont_serial:
        drift.append(Drift("olt", "ont", svc.ont_serial, ont.serial if ont else "absent"))
    else:
        with devices.device_slot(svc.olt):
            ports = olt.list_service_ports(svc.pon_port, svc.ont_id)
        if not any(p.vlan == svc.vlan and p.gem_port == plan.gem_port for p in ports):
            drift.append(Drift("olt", "service-port", f"vlan {svc.vlan}", "absent"))
    with devices.device_slot(bng_name):
        sub = devices.bng(ctx, bng_name, "checking").get_subscriber(svc.vlan)
    want_in, want_out = _expected_policies(svc)
    if sub is None:
        drift.append(Drift("bng", "sub-interface", f"vlan {svc.vlan}", "absent"))
    else:
        for item, want, have in (
            ("ip_address", svc.ip_address, sub.ip_address),
            ("policy_in", want_in, sub.policy_in),
            ("policy_out", want_out, sub.policy_out),
        ):
            if want != have:
                drift.append(Drift("bng", item, str(want), str(have)))
    assert svc.radius_username is not None
    rad = devices.radius(ctx, "checking").get(svc.radius_username)
    want_group = SUSPENDED_GROUP if suspended else plan.name
    if rad is None or not rad.password:
        drift.append(Drift("radius", "subscriber", svc.radius_username, "absent"))
    else:
        if rad.ip_address != svc.ip_address:
            drift.append(Drift("radius", "ip_address", svc.ip_address, str(rad.ip_address)))
        if rad.group != want_group:
            drift.append(Drift("radius", "group", want_group, str(rad.group)))
    return DriftReport(svc.id, drift)


def repair(svc: ServiceView, report: DriftReport, suspended: bool) -> None:
    ctx = lookup(flow_run.id)
    inv = runtime().inventory
    plan = inv.plan(svc.plan)
    bng_name = inv.olt(svc.olt).bng
    systems = {d.system for d in report.drift}
    assert svc.ont_id is not None and svc.vlan is not None and svc.ip_address is not None
    if "olt" in systems:
        olt = devices.olt(ctx, svc.olt, "repairing")
        with devices.device_slot(svc.olt):
            olt.add_ont(
                svc.pon_port,
                svc.ont_id,
                svc.ont_serial,
                plan.line_profile_id,
                plan.service_profile_id,
                _description(svc),
            )
        with devices.device_slot(svc.olt):
            olt.add_service_port(svc.pon_port, svc.ont_id, plan.gem_port, svc.vlan)
    if "bng" in systems:
        netmask = str(ipaddress.ip_network(inv.bng(bng_name).ip_pool).netmask)
        want_in, want_out = _expected_policies(svc)
        with devices.device_slot(bng_name):
            devices.bng(ctx, bng_name, "repairing").add_subscriber(
                svc.vlan, svc.ip_address, netmask, want_in, want_out,
                _description(svc),
            )  # fmt: skip
    if "radius" in systems:
        radius = devices.radius(ctx, "repairing")
        assert svc.radius_username is not None
        existing = radius.get(svc.radius_username)
        password = (
            existing.password if existing and existing.password else secrets.token_urlsafe(18)
        )
        radius.activate(svc.radius_username, password, svc.ip_address, plan.name)
        radius.set_group(svc.radius_username, SUSPENDED_GROUP if suspended else plan.name)


@task(name="check-drift", cache_policy=NO_CACHE, **device_retries(),
      **step_hooks(S["checking"]))  # fmt: skip
def check_drift(service_id: str) -> DriftReport:
    svc = service.load(service_id)
    return read_drift(svc, suspended=False)


@task(name="repair-drift", cache_policy=NO_CACHE, **device_retries(),
      **step_hooks(S["repairing"]))  # fmt: skip
def repair_drift(service_id: str, report: DriftReport) -> str:
    if report.in_sync:
        return "in_sync"
    svc = service.load(service_id)
    repair(svc, report, suspended=False)
    after = read_drift(svc, suspended=False)
    if not after.in_sync:
        raise PermanentDeviceError("fiberflow", f"drift remains after repair: {after.diff()}")
    return "repaired"


@task(name="complete-reprovisioning", cache_policy=NO_CACHE, **step_hooks(S["completed"]))
def complete_reprovisioning(service_id: str) -> None:
    service.finish(service_id, Operation.REPROVISIONING)

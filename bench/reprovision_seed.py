"""Bulk reprovisioning's seed: N active services without provisioning flows, their
rows, IP and VLAN through fiberflow's allocators (core/ipam.py), their RADIUS rows
through its store (devices/radius/sql.py), and their ONTs, service-ports and BNG
sub-interfaces through the lab's ``seed`` admin op (the state the CLI path makes)."""

from __future__ import annotations

import ipaddress
import json
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import (
    ServiceInstance,
    ServiceStatus,
)
from fiberflow.core.ipam import allocate_ip, allocate_vlan
from fiberflow.devices import validation
from fiberflow.devices.inventory import Inventory
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.lab.admin import admin_call

TENANT = "7c0f4b1e-2a55-4d0e-9a61-3f8e2b6d9c21"
SEED_CHUNK = 50  # services per admin ``seed`` request (one SSH exec line each)
PORTS = [f"0/{slot}/{p}" for slot in (1, 2) for p in range(16)]


@dataclass
class Svc:
    """One seeded service: its database row and what the devices must hold for it."""

    id: str
    customer_ref: str
    plan: str
    olt: str
    pon_port: str
    serial: str
    ont_id: int
    username: str
    description: str
    bng: str = ""
    uplink: str = ""
    vlan: int = 0
    ip: str = ""
    netmask: str = ""
    line_profile_id: int = 0
    gem_port: int = 0
    policy_in: str = ""
    policy_out: str = ""
    drift: str | None = None

    @property
    def interface(self) -> str:
        return f"{self.uplink}.{self.vlan}"


def radius_username(customer_ref: str, service_id: str) -> str:
    """As provisioning names the subscriber (tasks.provisioning.radius_username)."""
    from fiberflow.tasks.provisioning import radius_username as name

    return name(customer_ref, service_id)


def plan_services(n: int, inv: Inventory) -> list[Svc]:
    """N services over both OLTs' 32 PON ports, ONT ids from 0 per port (what the OLT
    picks first), plans in turn; serials and ids random."""
    olts = [o.name for o in inv.olts]
    plans = [p.name for p in inv.plans]
    next_id: Counter[tuple[str, str]] = Counter()
    out = []
    for i in range(n):
        olt = olts[i % len(olts)]
        port = PORTS[(i // len(olts)) % len(PORTS)]
        sid, ref = str(uuid.uuid4()), f"bulk-{i}"
        ont_id = next_id[(olt, port)]
        next_id[(olt, port)] += 1
        out.append(
            Svc(id=sid, customer_ref=ref, plan=plans[i % len(plans)], olt=olt, pon_port=port,
                serial=uuid.uuid4().hex[:16].upper(), ont_id=ont_id,
                username=radius_username(ref, sid),
                description=validation.description(f"ff-{ref}"[:64]))
        )  # fmt: skip
    return out


def seed_database(database_url: str, inv: Inventory, services: list[Svc]) -> None:
    """Service rows (active) with their IP and VLAN from core.ipam, then RADIUS rows."""
    engine = make_engine(database_url)
    try:
        for start in range(0, len(services), 100):
            with Session(engine) as s, s.begin():
                for svc in services[start : start + 100]:
                    olt, plan = inv.olt(svc.olt), inv.plan(svc.plan)
                    bng = inv.bng(olt.bng)
                    row = ServiceInstance(
                        id=svc.id, tenant_id=TENANT, customer_ref=svc.customer_ref,
                        status=ServiceStatus.ACTIVE.value, current_operation="provisioning",
                        plan=svc.plan, olt=svc.olt, pon_port=svc.pon_port,
                        ont_serial=svc.serial, ont_id=svc.ont_id,
                        radius_username=svc.username,
                    )  # fmt: skip
                    s.add(row)
                    svc.ip = allocate_ip(s, pool=bng.name, network=bng.ip_pool,
                                         gateway=bng.ip_gateway, service_id=svc.id)  # fmt: skip
                    svc.vlan = allocate_vlan(s, scope=bng.name, first=olt.vlan_first,
                                             last=olt.vlan_last, service_id=svc.id)  # fmt: skip
                    row.ip_address, row.vlan = svc.ip, svc.vlan
                    svc.bng, svc.uplink = bng.name, bng.uplink
                    svc.netmask = str(ipaddress.ip_network(bng.ip_pool).netmask)
                    svc.line_profile_id, svc.gem_port = plan.line_profile_id, plan.gem_port
                    svc.policy_in, svc.policy_out = plan.policy_in, plan.policy_out
        store = RadiusStore(engine, name="bench-seed")
        for svc in services:
            store.activate(svc.username, secrets.token_urlsafe(18), svc.ip, svc.plan,
                           netmask=svc.netmask)  # fmt: skip
    finally:
        engine.dispose()


class Lab:
    """The running lab's devices over the admin channel (lab.json)."""

    def __init__(self, data_dir: Path) -> None:
        info = json.loads((data_dir / "lab.json").read_text())
        self.devices: dict[str, dict[str, Any]] = info["admin"]["devices"]
        self.inventory_path = info["inventory"]

    def call(self, device: str, op: str, **args: Any) -> Any:
        dev = self.devices[device]
        return admin_call(int(dev["port"]), op, host=dev["host"], **args)

    def all(self, op: str, **args: Any) -> dict[str, Any]:
        return {name: self.call(name, op, **args) for name in self.devices}


def seed_lab(lab: Lab, services: list[Svc]) -> None:
    """ONT + service-port per service on its OLT, its sub-interface on the BNG."""
    by_olt: dict[str, list[Svc]] = {}
    for svc in services:
        by_olt.setdefault(svc.olt, []).append(svc)
    failures: list[str] = []
    for olt, svcs in by_olt.items():
        for start in range(0, len(svcs), SEED_CHUNK):
            chunk = svcs[start : start + SEED_CHUNK]
            onts = [{"fsp": s.pon_port, "ont_id": s.ont_id, "serial": s.serial,
                     "description": s.description, "line_profile_id": s.line_profile_id,
                     "service_profile_id": s.line_profile_id} for s in chunk]  # fmt: skip
            sps = [{"fsp": s.pon_port, "ont_id": s.ont_id, "gem_port": s.gem_port,
                    "vlan": s.vlan} for s in chunk]  # fmt: skip
            failures += lab.call(olt, "seed", onts=onts, service_ports=sps)["failures"]
    by_bng: dict[str, list[Svc]] = {}
    for svc in services:
        by_bng.setdefault(svc.bng, []).append(svc)
    for bng, svcs in by_bng.items():
        for start in range(0, len(svcs), SEED_CHUNK):
            chunk = svcs[start : start + SEED_CHUNK]
            subs = [{"name": s.interface, "description": s.description, "outer_vlan": s.vlan,
                     "ip_address": s.ip, "netmask": s.netmask, "policy_in": s.policy_in,
                     "policy_out": s.policy_out} for s in chunk]  # fmt: skip
            failures += lab.call(bng, "seed", subinterfaces=subs)["failures"]
    if failures:
        raise RuntimeError(f"lab seed refused {len(failures)}: {failures[:5]}")

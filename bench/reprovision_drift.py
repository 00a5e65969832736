"""Bulk reprovisioning's drift, put on the lab and RADIUS behind fiberflow's back (four
kinds in turn), and the check of every service's devices and RADIUS rows against its
database row (lab ``dump``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bench.reprovision_seed import Lab, Svc
from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import (
    RadReply,
    ServiceInstance,
    ServiceStatus,
)
from fiberflow.devices.radius.sql import IP_ATTR, RadiusStore

DRIFT_KINDS = ("olt.ont", "bng.sub-interface", "radius.ip_address", "bng.policy_in")
DRIFT_LABEL = {
    "olt.ont": "ONT deleted on the OLT (with its service-port)",
    "bng.sub-interface": "BNG sub-interface removed",
    "radius.ip_address": "RADIUS Framed-IP-Address changed",
    "bng.policy_in": "BNG input service-policy changed",
}


def apply_drift(lab: Lab, database_url: str, services: list[Svc]) -> None:
    """Each drifted service gets its kind of drift (behind fiberflow's back)."""
    engine = make_engine(database_url)
    try:
        for svc in services:
            if svc.drift == "olt.ont":
                assert lab.call(svc.olt, "delete_ont", fsp=svc.pon_port, ont_id=svc.ont_id)[
                    "deleted"
                ]
            elif svc.drift == "bng.sub-interface":
                assert lab.call(svc.bng, "remove_interface", interface=svc.interface)["removed"]
            elif svc.drift == "bng.policy_in":
                other = "PLAN-X-IN"
                assert lab.call(svc.bng, "set_policy", interface=svc.interface,
                                direction="input", policy=other)["ok"]  # fmt: skip
            elif svc.drift == "radius.ip_address":
                with Session(engine) as s, s.begin():
                    s.execute(
                        update(RadReply)
                        .where(RadReply.username == svc.username, RadReply.attribute == IP_ATTR)
                        .values(value="100.64.255.254")
                    )
    finally:
        engine.dispose()


def verify(lab: Lab, database_url: str, services: list[Svc]) -> dict[str, list[str]]:
    """Per service whose devices or RADIUS rows differ from its row: what differs."""
    onts: dict[tuple[str, str, int], dict[str, Any]] = {}
    sps: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    subs: dict[str, dict[str, Any]] = {}
    for name, dump in lab.all("dump").items():
        for o in dump.get("onts", []):
            onts[(name, o["fsp"], o["ont_id"])] = o
        for sp in dump.get("service_ports", []):
            sps.setdefault((name, sp["fsp"], sp["ont_id"]), []).append(sp)
        for sub in dump.get("subinterfaces", []):
            subs[sub["name"]] = sub
    engine = make_engine(database_url)
    store = RadiusStore(engine, name="bench-verify")
    bad: dict[str, list[str]] = {}
    try:
        with Session(engine) as s:
            status = dict(
                s.execute(
                    select(ServiceInstance.id, ServiceInstance.status).where(
                        ServiceInstance.id.in_([x.id for x in services])
                    )
                ).all()
            )
        for svc in services:
            diff = []
            key = (svc.olt, svc.pon_port, svc.ont_id)
            o = onts.get(key)
            if o is None or (o["serial"], o["active"], o["description"]) != (
                svc.serial, True, svc.description
            ):  # fmt: skip
                diff.append(f"ont {o and (o['serial'], o['active'], o['description'])}")
            if not any((p["vlan"], p["gem_port"]) == (svc.vlan, svc.gem_port)
                       for p in sps.get(key, [])):  # fmt: skip
                diff.append("service-port")
            sub = subs.get(svc.interface)
            want = (svc.vlan, svc.ip, svc.netmask, svc.policy_in, svc.policy_out, svc.description)
            have = sub and (sub["outer_vlan"], sub["ip_address"], sub["netmask"],
                            sub["policy_in"], sub["policy_out"], sub["description"])  # fmt: skip
            if have != want:
                diff.append(f"sub-interface {sub}")
            rad = store.get(svc.username)
            if rad is None or (rad.ip_address, rad.netmask, list(rad.groups)) != (
                svc.ip, svc.netmask, [svc.plan]
            ) or not rad.password:  # fmt: skip
                diff.append(f"radius {rad and (rad.ip_address, rad.netmask, rad.groups)}")
            if status.get(svc.id) != ServiceStatus.ACTIVE.value:
                diff.append(f"status {status.get(svc.id)}")
            if diff:
                bad[svc.id] = diff
    finally:
        engine.dispose()
    return bad

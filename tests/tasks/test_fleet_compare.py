"""tasks/fleet_compare.py without devices: typed snapshots in, verdicts and orphans out."""

from __future__ import annotations

import dataclasses

from fiberflow.devices.bng.fleet import BngFleet
from fiberflow.devices.bng.models import SubInterface
from fiberflow.devices.inventory import Inventory
from fiberflow.devices.olt.fleet import OltFleet
from fiberflow.devices.olt.models import OntInfo, ServicePort
from fiberflow.devices.radius.types import RadiusSubscriber
from fiberflow.lab.lab_inventory import build_inventory
from fiberflow.tasks.fleet_compare import RADIUS, Orphan, Snapshot, compare, orphans
from fiberflow.tasks.service import ServiceView

UPLINK = "GigabitEthernet0/0/1"
MASK = "255.255.0.0"


def _inventory() -> Inventory:
    return build_inventory(host="127.0.0.1", olt_ports={"olt-1": 1, "olt-2": 2}, bng_port=3,
                           radius_port=4, nas_port=5)  # fmt: skip


def _svc(n: int, status: str = "active", **fields: object) -> ServiceView:
    base = dict(
        id=f"s{n}", tenant_id="t", customer_ref=f"c{n}", status=status, plan="100M",
        olt="olt-1", pon_port="0/1/3", ont_serial=f"48575443000000{n:02X}", ont_id=n,
        vlan=100 + n, ip_address=f"100.64.0.{n}", radius_username=f"ff-{n}",
        description=None, flow_run_id=None, current_operation=None,
    )  # fmt: skip
    base.update(fields)
    return ServiceView(**base)  # type: ignore[arg-type]


def _olt(name: str, services: list[ServiceView], gem_port: int) -> OltFleet:
    mine = [s for s in services if s.olt == name]
    onts = tuple(
        OntInfo(
            s.pon_port, s.ont_id or 0, s.ont_serial, "active", "online", "normal", "match", "d"
        )  # fmt: skip
        for s in mine
    )
    ports = tuple(
        ServicePort(i, s.vlan or 0, s.pon_port, s.ont_id or 0, gem_port, s.vlan, "up")
        for i, s in enumerate(mine)
    )
    return OltFleet(name, onts, ports)


def _held(services: list[ServiceView], inv: Inventory) -> Snapshot:
    """What the devices hold when every service is exactly as recorded."""
    plan = inv.plan("100M")
    subs = tuple(
        SubInterface(
            f"{UPLINK}.{s.vlan}",
            s.vlan,
            None,
            "d",
            s.ip_address,
            MASK,
            plan.policy_in,
            plan.policy_out,
        )  # fmt: skip
        for s in services
    )
    radius = {
        s.radius_username or "": RadiusSubscriber(
            s.radius_username or "", "pw", s.ip_address, MASK, ("100M",)
        )  # fmt: skip
        for s in services
    }
    return Snapshot(
        olts={name: _olt(name, services, plan.gem_port) for name in ("olt-1", "olt-2")},
        bngs={"bng-1": BngFleet("bng-1", UPLINK, subs)},
        radius=radius,
        unreadable={},
    )


def test_in_sync_fleet_has_no_drift_and_no_orphans() -> None:
    inv = _inventory()
    services = [_svc(n) for n in range(1, 6)]
    result = compare(services, services, _held(services, inv), inv)
    assert result.in_sync == [s.id for s in services] == result.checked
    assert (result.drifted, result.orphans, result.skipped) == ({}, [], {})


def test_each_kind_of_drift_is_named_like_the_per_service_check() -> None:
    inv = _inventory()
    services = [_svc(n) for n in range(1, 7)]
    snap = _held(services, inv)
    olt, bng, radius = snap.olts["olt-1"], snap.bngs["bng-1"], dict(snap.radius or {})
    subs = {s.name: s for s in bng.subinterfaces}
    subs.pop(f"{UPLINK}.101")  # s1: sub-interface missing
    subs[f"{UPLINK}.102"] = dataclasses.replace(subs[f"{UPLINK}.102"], vlan=999)  # s2
    subs[f"{UPLINK}.103"] = dataclasses.replace(subs[f"{UPLINK}.103"], policy_in="PLAN-1G-IN")
    ports = tuple(p for p in olt.service_ports if p.ont_id != 4)  # s4: no service-port
    onts = tuple(o for o in olt.onts if o.ont_id != 5)  # s5: ONT deleted
    radius.pop("ff-6")  # s6: RADIUS rows deleted
    snap = dataclasses.replace(
        snap,
        olts={**snap.olts, "olt-1": OltFleet("olt-1", onts, ports)},
        bngs={"bng-1": BngFleet("bng-1", UPLINK, tuple(subs.values()))},
        radius=radius,
    )
    result = compare(services, services, snap, inv)
    lines = {sid: [d.line() for d in drift] for sid, drift in result.drifted.items()}
    assert lines == {
        "s1": ["bng.sub-interface: expected vlan 101, found absent"],
        "s2": ["bng.vlan: expected 102, found 999"],
        "s3": ["bng.policy_in: expected PLAN-100M-IN, found PLAN-1G-IN"],
        "s4": ["olt.service-port: expected vlan 104, found absent"],
        "s5": ["olt.ont: expected 4857544300000005, found absent"],
        "s6": ["radius.subscriber: expected ff-6, found absent"],
    }  # fmt: skip
    assert result.in_sync == []
    # s5's service-port is still on the OLT without its ONT: s5 owns it, not an orphan.
    assert result.orphans == []


def test_transitional_skipped_other_statuses_not_checked_unreadable_reported() -> None:
    inv = _inventory()
    services = [_svc(1), _svc(2, "reprovisioning"), _svc(3, "suspended"), _svc(4, "failed"),
                _svc(5, olt="olt-2", pon_port="0/1/0")]  # fmt: skip
    snap = dataclasses.replace(_held(services, inv), unreadable={"olt-2": "authentication failed"})
    snap = dataclasses.replace(snap, olts={"olt-1": snap.olts["olt-1"]})
    result = compare(services, services, snap, inv)
    assert result.checked == ["s1"] and result.in_sync == ["s1"]
    assert result.skipped == {"s2": "reprovisioning"}
    assert result.unreadable == {"olt-2": ["s5"]}
    # Suspended and failed services still own their state.
    assert result.orphans == []


def test_every_kind_of_orphan() -> None:
    inv = _inventory()
    services = [_svc(1), _svc(2)]
    snap = _held(services, inv)
    owners = [services[0], _svc(2, "terminated")]
    found = orphans(owners, snap, inv)
    assert found == [
        Orphan("olt-1", "ont", "0/1/3 2", fsp="0/1/3", ont_id=2),
        Orphan("olt-1", "service-port", "1", fsp="0/1/3", ont_id=2, index=1),
        Orphan("bng-1", "sub-interface", f"{UPLINK}.102"),
        Orphan(RADIUS, "radius-user", "ff-2"),
    ]
    assert [o.public() for o in found][0] == {"device": "olt-1", "kind": "ont", "ref": "0/1/3 2"}


def test_mid_provisioning_owner_keeps_its_ont_and_ports() -> None:
    inv = _inventory()
    held = _held([_svc(1)], inv)
    # The ONT is on the OLT, the record has its serial but no ONT id or VLAN yet.
    owner = _svc(1, "provisioning", ont_id=None, vlan=None)
    assert [o.kind for o in orphans([owner], held, inv)] == ["sub-interface"]

"""The whole fleet against the database, in memory: pure functions, no device, no Prefect.

Input: the services (as the database holds them), what each device and the RADIUS
tables hold (fleet snapshots, one read each), the devices that could not be read and
the inventory. Output: which services are in sync, which drifted (and how, in the
per-service reprovisioning's own words, ``olt.ont: expected ..., found ...``), which
were skipped (a run in flight), which could not be checked (a device unreadable), and
the orphans: device or RADIUS state that no service that is not terminated owns.

Only ``active`` services are checked: the wanted state of any other status is not the
plan's (a suspended service sits in the walled garden), and reprovisioning starts from
``active`` only. Every service that is not terminated owns its state, so a suspended or
failed service's ONT is never an orphan.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fiberflow.core.catalogue import TRANSITIONAL, ServiceStatus
from fiberflow.devices.bng.fleet import BngFleet
from fiberflow.devices.bng.models import SubInterface
from fiberflow.devices.inventory import Inventory
from fiberflow.devices.olt.fleet import OltFleet
from fiberflow.devices.olt.models import OntInfo, ServicePort
from fiberflow.devices.radius.types import RadiusSubscriber
from fiberflow.tasks.reprovisioning import Drift, Wanted, bng_drift, olt_drift, radius_drift
from fiberflow.tasks.service import ServiceView

RADIUS = "radius"  # the "device" name of the RADIUS tables in reports


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the run read: each device that answered, and why the others did not."""

    olts: Mapping[str, OltFleet]
    bngs: Mapping[str, BngFleet]
    radius: Mapping[str, RadiusSubscriber] | None  # None: the tables could not be read
    unreadable: Mapping[str, str]  # device (or "radius") -> the error


@dataclass(frozen=True, slots=True)
class Orphan:
    """State no live service owns. ``ref`` names it on its device; the other fields are
    what a removal needs."""

    device: str
    kind: str  # ont | service-port | sub-interface | radius-user
    ref: str
    fsp: str | None = None
    ont_id: int | None = None
    index: int | None = None

    def public(self) -> dict[str, str]:
        return {"device": self.device, "kind": self.kind, "ref": self.ref}


@dataclass
class Comparison:
    checked: list[str] = field(default_factory=list)
    in_sync: list[str] = field(default_factory=list)
    drifted: dict[str, list[Drift]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # service -> its status
    # device -> the services it leaves unchecked (neither repaired nor failed)
    unreadable: dict[str, list[str]] = field(default_factory=dict)
    orphans: list[Orphan] = field(default_factory=list)


def wanted(svc: ServiceView, inventory: Inventory) -> Wanted | None:
    """What the devices should hold for ``svc``; None when its record lacks a field."""
    if svc.ont_id is None or svc.vlan is None or svc.ip_address is None:
        return None
    if not svc.radius_username:
        return None
    bng = inventory.bng_for(svc.olt)
    return Wanted(
        plan=inventory.plan(svc.plan),
        bng=bng.name,
        ont_id=svc.ont_id,
        vlan=svc.vlan,
        ip=svc.ip_address,
        netmask=str(ipaddress.ip_network(bng.ip_pool).netmask),
        username=svc.radius_username,
        description=svc.description or f"ff-{svc.customer_ref}"[:64],
    )


@dataclass(frozen=True, slots=True)
class _Index:
    """The snapshot by the keys a service looks itself up with, built once per check."""

    onts: dict[str, dict[tuple[str, int], OntInfo]]
    ports: dict[str, dict[tuple[str, int], list[ServicePort]]]
    subs: dict[str, dict[str, SubInterface]]

    @classmethod
    def of(cls, snap: Snapshot) -> _Index:
        return cls(
            onts={name: olt.ont_at() for name, olt in snap.olts.items()},
            ports={name: olt.ports_of() for name, olt in snap.olts.items()},
            subs={name: {s.name: s for s in bng.subinterfaces} for name, bng in snap.bngs.items()},
        )


def service_drift(svc: ServiceView, want: Wanted, snap: Snapshot,
                  index: _Index | None = None) -> list[Drift]:  # fmt: skip
    """``svc`` against the snapshot; its OLT, BNG and RADIUS must all have been read."""
    idx = index or _Index.of(snap)
    radius = snap.radius
    assert radius is not None
    key = (svc.pon_port, want.ont_id)
    ont = idx.onts[svc.olt].get(key)
    ports = idx.ports[svc.olt].get(key, [])
    sub = idx.subs[want.bng].get(f"{snap.bngs[want.bng].uplink}.{want.vlan}")
    return (
        olt_drift(svc.ont_serial, want, ont, ports)
        + bng_drift(want, sub)
        + radius_drift(want, radius.get(want.username))
    )


# -- the fleet --------------------------------------------------------------------------
def devices_of(svc: ServiceView, inventory: Inventory) -> tuple[str, str, str]:
    return svc.olt, inventory.bng_for(svc.olt).name, RADIUS


def compare(services: Iterable[ServiceView], owners: Iterable[ServiceView], snap: Snapshot,
            inventory: Inventory) -> Comparison:  # fmt: skip
    """Check ``services``; orphans are state none of ``owners`` (every service that is
    not terminated, read after the devices were) holds."""
    result = Comparison()
    index = _Index.of(snap)
    for svc in services:
        status = ServiceStatus(svc.status)
        if status in TRANSITIONAL:
            result.skipped[svc.id] = svc.status
            continue
        if status is not ServiceStatus.ACTIVE:
            continue
        down = [d for d in devices_of(svc, inventory) if d in snap.unreadable]
        if down:
            for device in down:
                result.unreadable.setdefault(device, []).append(svc.id)
            continue
        result.checked.append(svc.id)
        want = wanted(svc, inventory)
        drift = (
            [Drift("record", "fields", "ont_id, vlan, ip and username", "missing")]
            if want is None
            else service_drift(svc, want, snap, index)
        )
        if drift:
            result.drifted[svc.id] = drift
        else:
            result.in_sync.append(svc.id)
    for device in snap.unreadable:
        result.unreadable.setdefault(device, [])
    result.orphans = orphans(owners, snap, inventory)
    return result


def orphans(owners: Iterable[ServiceView], snap: Snapshot, inventory: Inventory) -> list[Orphan]:
    live = [s for s in owners if s.status != ServiceStatus.TERMINATED.value]
    found: list[Orphan] = []
    for name, olt in sorted(snap.olts.items()):
        found += _olt_orphans(name, olt, [s for s in live if s.olt == name])
    for name, bng in sorted(snap.bngs.items()):
        mine = [s for s in live if inventory.bng_for(s.olt).name == name]
        owned = {f"{bng.uplink}.{s.vlan}" for s in mine if s.vlan is not None}
        found += [
            Orphan(name, "sub-interface", sub.name)
            for sub in bng.subinterfaces
            if sub.name not in owned
        ]
    if snap.radius is not None:
        users = {s.radius_username for s in live if s.radius_username}
        found += [Orphan(RADIUS, "radius-user", u) for u in sorted(snap.radius) if u not in users]
    return found


def _olt_orphans(name: str, olt: OltFleet, mine: list[ServiceView]) -> list[Orphan]:
    at = {(s.pon_port, s.ont_id) for s in mine if s.ont_id is not None}
    by_serial = {s.ont_serial: s for s in mine if s.ont_serial}
    ports = {(s.pon_port, s.ont_id, s.vlan) for s in mine if s.ont_id is not None}
    found: list[Orphan] = []
    # ONTs whose service has no VLAN or ONT id recorded yet (mid-provisioning): any
    # service-port on them is theirs; otherwise a service owns the one with its VLAN.
    loose: set[tuple[str, int]] = set()
    for ont in olt.onts:
        key = (ont.fsp, ont.ont_id)
        owner = by_serial.get(ont.serial)
        if owner is not None and (owner.vlan is None or owner.ont_id is None):
            loose.add(key)
        if key in at or owner is not None:
            continue
        found.append(Orphan(name, "ont", f"{ont.fsp} {ont.ont_id}", fsp=ont.fsp,
                            ont_id=ont.ont_id))  # fmt: skip
    for sp in olt.service_ports:
        if (sp.fsp, sp.ont_id, sp.vlan) in ports or (sp.fsp, sp.ont_id) in loose:
            continue
        found.append(Orphan(name, "service-port", str(sp.index), fsp=sp.fsp, ont_id=sp.ont_id,
                            index=sp.index))  # fmt: skip
    return found

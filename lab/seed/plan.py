"""Planning a seed: N services placed on the inventory's free ONT ids, VLANs and IPs.

Pure: it reads only ``Taken`` (what the database and the devices already hold) and
allocates in bulk, in memory, the way provisioning allocates one at a time: the lowest
free VLAN of the OLT's range in its BNG's scope and the lowest free address of the BNG's
pool (core/ipam.py), the lowest free ONT id of a PON port (what the OLT gives an ``ont
add`` without an id). Services go to the OLTs in turn and to each OLT's PON ports in
turn, until one runs out of ONT ids, VLANs or addresses; then the others take its share.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from collections import deque
from dataclasses import dataclass, field

from fiberflow.devices import validation
from fiberflow.devices.inventory import Inventory, Olt
from fiberflow.lab.lab_inventory import VLAN_FIRST, VLAN_LAST
from fiberflow.lab.ont_optics import default_rx_power
from fiberflow.lab.seed.errors import SeedRefused

ONT_IDS = range(128)  # GPON: 0-127 per PON port
SERIAL_VENDOR = "48575443"  # "HWTC" in hex, as Huawei ONTs report it


@dataclass
class Taken:
    """What is in use already, wherever it was found (database or device)."""

    vlans: dict[str, set[int]] = field(default_factory=dict)  # BNG -> VLANs
    ips: dict[str, set[int]] = field(default_factory=dict)  # BNG pool -> addresses (int)
    ont_ids: dict[tuple[str, str], set[int]] = field(default_factory=dict)  # (olt, fsp)
    serials: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Planned:
    """One service as provisioning would have left it."""

    id: str
    customer_ref: str
    plan: str
    olt: str
    bng: str
    pon_port: str
    ont_id: int
    serial: str
    rx_power_dbm: float  # what the lab OLT reports for it (provisioning measures it)
    vlan: int
    ip: str
    netmask: str
    username: str
    password: str
    description: str  # the ONT's and the sub-interface's
    line_profile_id: int
    service_profile_id: int
    gem_port: int
    policy_in: str
    policy_out: str
    interface: str  # the BNG sub-interface, <uplink>.<vlan>


def radius_username(customer_ref: str, service_id: str) -> str:
    """As provisioning names the subscriber (tasks.provisioning.radius_username; a test
    holds the two equal: importing tasks here would cost the CLI Prefect's start-up)."""
    return validation.username(f"{customer_ref[:55]}.{service_id[:8]}")


class _Lowest:
    """The lowest free values of ``candidates``, ``used`` shared with other allocators
    of the same scope (two OLTs on one BNG draw from one VLAN space)."""

    def __init__(self, candidates: range, used: set[int]) -> None:
        self.candidates, self.used, self.pos = candidates, used, 0

    def peek(self) -> int | None:
        while self.pos < len(self.candidates) and self.candidates[self.pos] in self.used:
            self.pos += 1
        return self.candidates[self.pos] if self.pos < len(self.candidates) else None

    def take(self) -> int:
        value = self.peek()
        assert value is not None
        self.used.add(value)
        return value

    def free(self) -> int:
        return sum(1 for v in self.candidates[self.pos :] if v not in self.used)


class _OltRoom:
    """Free ONT ids of one OLT, handed out port by port in turn."""

    def __init__(self, olt: Olt, taken: Taken, vlans: _Lowest, ips: _Lowest) -> None:
        self.olt, self.vlans, self.ips = olt, vlans, ips
        self.free: dict[str, deque[int]] = {}
        for board, count in sorted(olt.boards.items(), key=lambda b: _numbers(b[0])):
            for port in range(count):
                fsp = f"{board}/{port}"
                used = taken.ont_ids.get((olt.name, fsp), set())
                ids = deque(i for i in ONT_IDS if i not in used)
                if ids:
                    self.free[fsp] = ids
        self.ports = deque(self.free)

    def ont_ids(self) -> int:
        return sum(len(ids) for ids in self.free.values())

    def fits(self) -> bool:
        return bool(self.ports) and self.vlans.peek() is not None and self.ips.peek() is not None

    def take_ont(self) -> tuple[str, int]:
        fsp = self.ports.popleft()
        ids = self.free[fsp]
        ont_id = ids.popleft()
        if ids:
            self.ports.append(fsp)
        return fsp, ont_id


def _numbers(board: str) -> tuple[int, ...]:
    return tuple(int(x) for x in board.split("/"))


def _pool_range(network: str) -> range:
    net = ipaddress.ip_network(network)
    first, last = int(net.network_address), int(net.broadcast_address)
    return range(first + 1, last) if net.num_addresses > 2 else range(first, last + 1)


def _rooms(inv: Inventory, taken: Taken) -> list[_OltRoom]:
    rooms = []
    ips: dict[str, _Lowest] = {}
    for bng in inv.bngs:
        used = taken.ips.setdefault(bng.name, set())
        if bng.ip_gateway:
            used.add(int(ipaddress.ip_address(bng.ip_gateway)))
        ips[bng.name] = _Lowest(_pool_range(bng.ip_pool), used)
    vlans: dict[tuple[str, int, int], _Lowest] = {}
    for olt in inv.olts:
        scope = (olt.bng, olt.vlan_first, olt.vlan_last)
        if scope not in vlans:
            used = taken.vlans.setdefault(olt.bng, set())
            vlans[scope] = _Lowest(range(olt.vlan_first, olt.vlan_last + 1), used)
        rooms.append(_OltRoom(olt, taken, vlans[scope], ips[olt.bng]))
    return rooms


def plan_services(n: int, tenant_id: str, inv: Inventory, taken: Taken) -> list[Planned]:
    """N services (SeedRefused, naming what runs out, if they do not fit). Changes
    ``taken`` (the plan's own allocations join it)."""
    rooms = _rooms(inv, taken)
    report = _report(inv, rooms)
    turn = deque(rooms)
    placed: list[tuple[_OltRoom, str, int, int, int]] = []
    while len(placed) < n and turn:
        room = turn.popleft()
        if not room.fits():  # (OLTs sharing a BNG also use up each other's room)
            continue
        fsp, ont_id = room.take_ont()
        placed.append((room, fsp, ont_id, room.vlans.take(), room.ips.take()))
        turn.append(room)
    if len(placed) < n:
        raise SeedRefused(
            f"--services: {n:,} services do not fit the running lab, which has room for "
            f"{len(placed):,} more ({report}); a lab of more OLTs holds more "
            f"(`fiberflow lab --olts N`: {VLAN_LAST - VLAN_FIRST + 1:,} services per BNG)"
        )
    batch = secrets.token_hex(3)
    plans = inv.plans
    bngs = {b.name: b for b in inv.bngs}
    out = []
    for i, (room, fsp, ont_id, vlan, ip) in enumerate(placed):
        plan, bng = plans[i % len(plans)], bngs[room.olt.bng]
        sid, ref = str(uuid.uuid4()), f"seed-{batch}-{i + 1:05d}"
        serial = _serial(taken.serials)
        out.append(
            Planned(
                id=sid, customer_ref=ref, plan=plan.name, olt=room.olt.name, bng=bng.name,
                pon_port=fsp, ont_id=ont_id, serial=serial,
                rx_power_dbm=default_rx_power(serial), vlan=vlan,
                ip=str(ipaddress.ip_address(ip)),
                netmask=str(ipaddress.ip_network(bng.ip_pool).netmask),
                username=radius_username(ref, sid), password=secrets.token_urlsafe(18),
                description=validation.description(f"ff-{ref}"[:64]),
                line_profile_id=plan.line_profile_id, service_profile_id=plan.service_profile_id,
                gem_port=plan.gem_port, policy_in=plan.policy_in, policy_out=plan.policy_out,
                interface=f"{bng.uplink}.{vlan}",
            )
        )  # fmt: skip
    return out


def _serial(taken: set[str]) -> str:
    while True:
        serial = f"{SERIAL_VENDOR}{secrets.randbits(32):08X}"
        if serial not in taken:
            taken.add(serial)
            return serial


def _report(inv: Inventory, rooms: list[_OltRoom]) -> str:
    """Per BNG: free VLANs, addresses and ONT ids of its OLTs (before planning)."""
    parts = []
    for bng in inv.bngs:
        mine = [r for r in rooms if r.olt.bng == bng.name]
        if not mine:
            continue
        vlans = {id(r.vlans): r.vlans for r in mine}.values()
        parts.append(
            f"{bng.name}: {sum(v.free() for v in vlans):,} free VLANs, "
            f"{mine[0].ips.free():,} free IPs, {sum(r.ont_ids() for r in mine):,} free ONT ids "
            f"on {', '.join(r.olt.name for r in mine)}"
        )
    return "; ".join(parts)

"""State of one lab OLT: ONTs and service-ports, with the failure texts a Huawei OLT prints.

Thread-safe: every public method takes the device lock, because tests and the admin
channel change state from other threads while SSH sessions run in the lab's loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fiberflow.lab.faults import FaultSet

# Failure lines exactly as MA5600T/MA5800 print them (two leading spaces).
SN_EXISTS = "  Failure: SN already exists"
ONT_ID_EXISTS = "  Failure: The ONT ID has already existed"
ONT_MISSING = "  Failure: The required ONT does not exist"
NO_ONT_ON_PORT = "  Failure: There is no ONT available"
SP_INDEX_CONFLICT = "  Failure: Conflicted service virtual port index"
SP_EXISTS = "  Failure: Service virtual port has existed already"
SP_MISSING = "  Failure: The service virtual port does not exist"
NO_SP = "  Failure: No service virtual port can be operated"
ONT_HAS_SP = "  Failure: This configured object has some service virtual ports"
PORT_MISSING = "  Failure: The port does not exist"

Key = tuple[int, int, int, int]  # frame, slot, port, ont id


@dataclass
class Ont:
    serial: str
    description: str
    line_profile_id: int
    service_profile_id: int
    active: bool = True
    activated_at: float = field(default_factory=time.monotonic)


@dataclass
class ServicePort:
    index: int
    vlan: int
    frame: int
    slot: int
    port: int
    ont_id: int
    gem_port: int
    user_vlan: int


@dataclass(frozen=True)
class OntView:
    """An ONT as displayed at this moment (run state computed from activation time)."""

    key: Key
    ont: Ont
    online: bool


class OltState:
    def __init__(
        self,
        name: str,
        faults: FaultSet,
        boards: dict[tuple[int, int], int] | None = None,
        online_delay: float = 0.3,
    ) -> None:
        self.name = name
        self.faults = faults
        self.boards = boards if boards is not None else {(0, 1): 16, (0, 2): 16}
        self.online_delay = online_delay
        self.lock = threading.RLock()
        self.onts: dict[Key, Ont] = {}
        self.service_ports: dict[int, ServicePort] = {}

    # --- queries -------------------------------------------------------------------

    def has_port(self, frame: int, slot: int, port: int) -> bool:
        count = self.boards.get((frame, slot))
        return count is not None and 0 <= port < count

    def _online(self, ont: Ont) -> bool:
        if not ont.active or self.faults.never_online(ont.serial):
            return False
        return time.monotonic() - ont.activated_at >= self.online_delay

    def view(self, key: Key) -> OntView | None:
        with self.lock:
            ont = self.onts.get(key)
            return None if ont is None else OntView(key, ont, self._online(ont))

    def views_on_port(self, frame: int, slot: int, port: int) -> list[OntView]:
        with self.lock:
            return [
                OntView(k, o, self._online(o))
                for k, o in sorted(self.onts.items())
                if k[:3] == (frame, slot, port)
            ]

    def find_serial(self, serial: str) -> OntView | None:
        with self.lock:
            for key, ont in self.onts.items():
                if ont.serial == serial:
                    return OntView(key, ont, self._online(ont))
            return None

    def ports_of(self, frame: int, slot: int, port: int, ont_id: int) -> list[ServicePort]:
        with self.lock:
            return [
                sp
                for _, sp in sorted(self.service_ports.items())
                if (sp.frame, sp.slot, sp.port, sp.ont_id) == (frame, slot, port, ont_id)
            ]

    def sp_online(self, sp: ServicePort) -> bool:
        with self.lock:
            ont = self.onts.get((sp.frame, sp.slot, sp.port, sp.ont_id))
            return ont is not None and self._online(ont)

    # --- changes (return a failure line, or None on success) ------------------------

    def add_ont(self, key: Key, serial: str, desc: str, line: int, srv: int) -> str | None:
        with self.lock:
            if not self.has_port(*key[:3]):
                return PORT_MISSING
            if any(o.serial == serial for o in self.onts.values()):
                return SN_EXISTS
            if key in self.onts:
                return ONT_ID_EXISTS
            self.onts[key] = Ont(serial, desc, line, srv)
            return None

    def delete_ont(self, key: Key, force: bool = False) -> str | None:
        with self.lock:
            if key not in self.onts:
                return ONT_MISSING
            sps = [
                i
                for i, sp in self.service_ports.items()
                if (sp.frame, sp.slot, sp.port, sp.ont_id) == key
            ]
            if sps and not force:
                return ONT_HAS_SP
            for i in sps:
                del self.service_ports[i]
            del self.onts[key]
            return None

    def set_active(self, key: Key, active: bool) -> str | None:
        with self.lock:
            ont = self.onts.get(key)
            if ont is None:
                return ONT_MISSING
            if active and not ont.active:
                ont.activated_at = time.monotonic()
            ont.active = active
            return None

    def add_service_port(self, index: int | None, sp: ServicePort) -> str | None:
        """Add ``sp``; ``index`` None lets the OLT pick the lowest free index."""
        with self.lock:
            key = (sp.frame, sp.slot, sp.port, sp.ont_id)
            if key not in self.onts:
                return ONT_MISSING
            for other in self.service_ports.values():
                same_ont = (other.frame, other.slot, other.port, other.ont_id) == key
                if same_ont and (other.gem_port, other.vlan) == (sp.gem_port, sp.vlan):
                    return SP_EXISTS
            if index is None:
                index = next(i for i in range(65536) if i not in self.service_ports)
            elif index in self.service_ports:
                return SP_INDEX_CONFLICT
            sp.index = index
            self.service_ports[index] = sp
            return None

    def remove_service_port(self, index: int) -> str | None:
        with self.lock:
            if self.service_ports.pop(index, None) is None:
                return SP_MISSING
            return None

    # --- admin ----------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.onts.clear()
            self.service_ports.clear()

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "onts": [
                    {
                        "fsp": f"{k[0]}/{k[1]}/{k[2]}",
                        "ont_id": k[3],
                        "serial": o.serial,
                        "description": o.description,
                        "line_profile_id": o.line_profile_id,
                        "service_profile_id": o.service_profile_id,
                        "active": o.active,
                        "online": self._online(o),
                    }
                    for k, o in sorted(self.onts.items())
                ],
                "service_ports": [
                    {
                        "index": sp.index,
                        "vlan": sp.vlan,
                        "fsp": f"{sp.frame}/{sp.slot}/{sp.port}",
                        "ont_id": sp.ont_id,
                        "gem_port": sp.gem_port,
                        "user_vlan": sp.user_vlan,
                    }
                    for _, sp in sorted(self.service_ports.items())
                ],
            }

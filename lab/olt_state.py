"""State of one lab OLT: ONTs and service-ports, with the failure texts a Huawei OLT prints.

Thread-safe: every public method takes the device lock, because tests and the admin
channel change state from other threads while SSH sessions run in the lab's loop.

Sized like a full MA5800 shelf (4,096 ONTs: 2 boards x 16 ports x 128): lookups by
serial, port and ONT go through indexes kept in step with the two tables, so no display
scans the whole state once per ONT.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fiberflow.lab.faults import FaultSet
from fiberflow.lab.olt_plugs import SERIAL, Fsp, Plug, PlugBoard

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
PARAM_ERROR = "  % Parameter error, the error locates at '^'"

MAX_ONT_ID = 127  # GPON: 128 ONTs per port
MAX_SP_INDEX = 65535

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
        self.started = time.monotonic()
        self.lock = threading.RLock()
        self.onts: dict[Key, Ont] = {}
        self.service_ports: dict[int, ServicePort] = {}
        self.plugs = PlugBoard()
        # Indexes over the two tables above; every change below keeps them in step.
        self._by_serial: dict[str, Key] = {}
        self._by_port: dict[Fsp, dict[int, Ont]] = {}
        self._sp_by_ont: dict[Key, dict[int, ServicePort]] = {}
        self._sp_free_from = 0  # no free service-port index below this one

    # --- queries -------------------------------------------------------------------

    def has_port(self, frame: int, slot: int, port: int) -> bool:
        count = self.boards.get((frame, slot))
        return count is not None and 0 <= port < count

    def _never(self) -> set[str]:
        return self.faults.snapshot().never_online

    def _online(self, key: Key, ont: Ont, never: set[str]) -> bool:
        if not ont.active or ont.serial in never:
            return False
        since = self.plugs.reachable_since(ont.serial, key[:3])
        if since is None:
            return False
        return time.monotonic() - max(ont.activated_at, since) >= self.online_delay

    def _view(self, key: Key, ont: Ont, never: set[str]) -> OntView:
        return OntView(key, ont, self._online(key, ont, never))

    def view(self, key: Key) -> OntView | None:
        with self.lock:
            ont = self.onts.get(key)
            return None if ont is None else self._view(key, ont, self._never())

    def views_on_port(self, frame: int, slot: int, port: int) -> list[OntView]:
        with self.lock:
            never = self._never()
            on_port = self._by_port.get((frame, slot, port), {})
            return [self._view((frame, slot, port, i), on_port[i], never) for i in sorted(on_port)]

    def views_in_frame(self, frame: int) -> list[tuple[Fsp, list[OntView]]]:
        """Every port of ``frame`` that has ONTs, in board and port order."""
        with self.lock:
            never = self._never()
            out = []
            for fsp in sorted(k for k, onts in self._by_port.items() if onts and k[0] == frame):
                on_port = self._by_port[fsp]
                out.append(
                    (fsp, [self._view((*fsp, i), on_port[i], never) for i in sorted(on_port)])
                )
            return out

    def find_serial(self, serial: str) -> OntView | None:
        with self.lock:
            key = self._by_serial.get(_norm(serial))
            return None if key is None else self._view(key, self.onts[key], self._never())

    def ports_of(self, frame: int, slot: int, port: int, ont_id: int) -> list[ServicePort]:
        with self.lock:
            sps = self._sp_by_ont.get((frame, slot, port, ont_id), {})
            return [sps[i] for i in sorted(sps)]

    def sp_online(self, sp: ServicePort) -> bool:
        with self.lock:
            key = (sp.frame, sp.slot, sp.port, sp.ont_id)
            ont = self.onts.get(key)
            return ont is not None and self._online(key, ont, self._never())

    def service_port_rows(self) -> list[tuple[ServicePort, bool]]:
        """Every service-port by index, with whether its ONT is online."""
        with self.lock:
            never = self._never()
            rows = []
            for i in sorted(self.service_ports):
                sp = self.service_ports[i]
                key = (sp.frame, sp.slot, sp.port, sp.ont_id)
                ont = self.onts.get(key)
                rows.append((sp, ont is not None and self._online(key, ont, never)))
            return rows

    def configuration(self) -> tuple[list[tuple[Key, Ont]], list[ServicePort]]:
        """ONTs by key and service-ports by index: what the running configuration holds."""
        with self.lock:
            onts = sorted(self.onts.items())
            return onts, [self.service_ports[i] for i in sorted(self.service_ports)]

    def autofind(self) -> list[Plug]:
        """Plugged serials not registered on the port they are plugged into."""
        with self.lock:
            found = [
                p
                for p in self.plugs.plugs.values()
                if self._by_serial.get(p.serial, (-1, -1, -1, -1))[:3] != p.fsp
            ]
            return sorted(found, key=lambda p: (p.fsp, p.plugged_at))

    def rx_power(self, serial: str) -> float:
        with self.lock:
            return self.plugs.rx_power(serial)

    # --- changes (return a failure line, or None on success) ------------------------

    def add_ont(self, key: Key, serial: str, desc: str, line: int, srv: int) -> str | None:
        serial = _norm(serial)
        with self.lock:
            if not self.has_port(*key[:3]):
                return PORT_MISSING
            if not 0 <= key[3] <= MAX_ONT_ID:
                return PARAM_ERROR
            if serial in self._by_serial:
                return SN_EXISTS
            if key in self.onts:
                return ONT_ID_EXISTS
            ont = Ont(serial, desc, line, srv)
            self.onts[key] = ont
            self._by_serial[serial] = key
            self._by_port.setdefault(key[:3], {})[key[3]] = ont
            return None

    def delete_ont(self, key: Key, force: bool = False) -> str | None:
        with self.lock:
            ont = self.onts.get(key)
            if ont is None:
                return ONT_MISSING
            sps = list(self._sp_by_ont.get(key, {}))
            if sps and not force:
                return ONT_HAS_SP
            for i in sps:
                self.remove_service_port(i)
            del self.onts[key]
            del self._by_serial[ont.serial]
            del self._by_port[key[:3]][key[3]]
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
            for other in self._sp_by_ont.get(key, {}).values():
                if (other.gem_port, other.vlan) == (sp.gem_port, sp.vlan):
                    return SP_EXISTS
            if index is None:
                index = self._sp_free_from
                while index in self.service_ports:
                    index += 1
                if index > MAX_SP_INDEX:
                    return SP_INDEX_CONFLICT
            elif index in self.service_ports:
                return SP_INDEX_CONFLICT
            sp.index = index
            self.service_ports[index] = sp
            self._sp_by_ont.setdefault(key, {})[index] = sp
            if index == self._sp_free_from:
                self._sp_free_from = index + 1
            return None

    def remove_service_port(self, index: int) -> str | None:
        with self.lock:
            sp = self.service_ports.pop(index, None)
            if sp is None:
                return SP_MISSING
            key = (sp.frame, sp.slot, sp.port, sp.ont_id)
            del self._sp_by_ont[key][index]
            if not self._sp_by_ont[key]:
                del self._sp_by_ont[key]
            self._sp_free_from = min(self._sp_free_from, index)
            return None

    # --- fibres ---------------------------------------------------------------------

    def plug(self, serial: str, fsp: Fsp, rx_dbm: float | None) -> Plug:
        """Plug ``serial`` (checked) into ``fsp``; ValueError if this OLT has no such port."""
        if not self.has_port(*fsp):
            ports = ", ".join(f"{f}/{s}/0-{n - 1}" for (f, s), n in sorted(self.boards.items()))
            raise ValueError(f"{self.name} has no PON port {'/'.join(map(str, fsp))} ({ports})")
        with self.lock:
            return self.plugs.plug(serial, fsp, rx_dbm)

    def unplug(self, serial: str) -> bool:
        """Unplug ``serial``: False (nothing changed) if neither plugged nor registered here."""
        with self.lock:
            if serial not in self.plugs.plugs and serial not in self._by_serial:
                return False
            self.plugs.unplug(serial)
            return True

    def plugged(self) -> list[dict[str, object]]:
        with self.lock:
            return self.plugs.to_list()

    # --- admin ----------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.onts.clear()
            self.service_ports.clear()
            self._by_serial.clear()
            self._by_port.clear()
            self._sp_by_ont.clear()
            self._sp_free_from = 0
            self.plugs.clear()

    def dump(self) -> dict[str, Any]:
        with self.lock:
            never = self._never()
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
                        "online": self._online(k, o, never),
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

    # --- saved state (lab/persist.py) -------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the OLT holds (ONTs, service-ports, fibres), as JSON-ready data
        ``restore`` takes back."""
        with self.lock:
            return {
                "onts": [[*k, o.serial, o.description, o.line_profile_id,
                          o.service_profile_id, o.active] for k, o in self.onts.items()],
                "service_ports": [[sp.index, sp.vlan, sp.frame, sp.slot, sp.port, sp.ont_id,
                                   sp.gem_port, sp.user_vlan]
                                  for sp in self.service_ports.values()],
                "plugs": [[p.serial, *p.fsp, p.rx_dbm, p.found_at.isoformat()]
                          for p in self.plugs.plugs.values()],
                "dark": sorted(self.plugs.dark),
            }  # fmt: skip

    def restore(self, saved: dict[str, Any]) -> None:
        """Replace the state with a ``snapshot`` through the same checks as the CLI;
        ValueError (state emptied) if it is not one this OLT could hold. Restored ONTs
        and fibres count as up since long ago: they are online at once."""
        since = time.monotonic() - self.online_delay
        with self.lock:
            self.reset()
            try:
                for f, s, p, i, serial, desc, line, srv, active in saved["onts"]:
                    key = (int(f), int(s), int(p), int(i))
                    failure = self.add_ont(key, str(serial), str(desc), int(line), int(srv))
                    if failure:
                        raise ValueError(f"ont {f}/{s}/{p} {i}:{failure}")
                    self.onts[key].active, self.onts[key].activated_at = bool(active), since
                for index, vlan, f, s, p, i, gem, user_vlan in saved["service_ports"]:
                    sp = ServicePort(0, *(int(x) for x in (vlan, f, s, p, i, gem, user_vlan)))
                    failure = self.add_service_port(int(index), sp)
                    if failure:
                        raise ValueError(f"service-port {index}:{failure}")
                for serial, f, s, p, rx, found in saved["plugs"]:
                    fsp = (int(f), int(s), int(p))
                    if not self.has_port(*fsp):
                        raise ValueError(f"plug {serial}: no PON port {f}/{s}/{p}")
                    plug = Plug(str(serial), fsp, float(rx), since, datetime.fromisoformat(found))
                    self.plugs.plugs[plug.serial] = plug
                self.plugs.dark.update(str(serial) for serial in saved["dark"])
            except BaseException:
                self.reset()
                raise


def _norm(serial: str) -> str:
    # The OLT keeps hex serials upper-case whatever case they were typed in.
    return serial.upper() if SERIAL.fullmatch(serial) else serial

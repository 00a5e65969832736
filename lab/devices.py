"""The lab device classes: an OLT and a BNG, each an SSH listener with state and faults."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fiberflow.lab import atomic_seed
from fiberflow.lab.bng_state import BngState, SubIf
from fiberflow.lab.cisco_cli import CiscoCli
from fiberflow.lab.faults import Faults, FaultSet
from fiberflow.lab.huawei_cli import HuaweiCli
from fiberflow.lab.lab_inventory import BNG_MAX_SESSIONS, OLT_MAX_SESSIONS
from fiberflow.lab.olt_plugs import check_fsp, check_rx_power, check_serial
from fiberflow.lab.olt_state import OltState, ServicePort
from fiberflow.lab.ssh_server import SshDevice


class LabOlt(SshDevice):
    def __init__(
        self,
        name: str,
        *,
        online_delay: float = 0.3,
        faults: Faults | None = None,
        boards: dict[tuple[int, int], int] | None = None,
        username: str = "lab",
        password: str = "lab",
        max_sessions: int | None = OLT_MAX_SESSIONS,
    ) -> None:
        fault_set = FaultSet(faults)
        self.state = OltState(name, fault_set, boards, online_delay)
        super().__init__(name, lambda: HuaweiCli(self.state), fault_set, username, password,
                         max_sessions=max_sessions)  # fmt: skip

    def reset(self) -> None:
        """Empty state, no faults, counters at zero."""
        self.state.reset()
        self.faults.clear()
        self.counters.reset()

    def admin_ops(self) -> dict[str, Callable[..., dict[str, Any]]]:
        def delete_ont(fsp: str, ont_id: int) -> dict[str, Any]:
            f, s, p = (int(x) for x in fsp.split("/"))
            failure = self.state.delete_ont((f, s, p, int(ont_id)), force=True)
            return {"deleted": failure is None}

        def set_ont_active(fsp: str, ont_id: int, active: bool) -> dict[str, Any]:
            f, s, p = (int(x) for x in fsp.split("/"))
            return {"ok": self.state.set_active((f, s, p, int(ont_id)), bool(active)) is None}

        def reset() -> dict[str, Any]:
            self.reset()
            return {}

        return {
            **super().admin_ops(),
            "dump": self.state.dump,
            "reset": reset,
            "delete_ont": delete_ont,
            "set_ont_active": set_ont_active,
            "seed": self.seed,
            "unseed": lambda onts: atomic_seed.olt_unseed(self.state, onts),
            "plug": self.plug,
            "unplug": self.unplug,
            "plugs": lambda: {"plugs": self.state.plugged()},
        }

    def plug(self, fsp: str, serial: str, rx_power_dbm: float | None = None) -> dict[str, Any]:
        """Admin: an ONT's fibre into PON port ``fsp`` (receive power ``rx_power_dbm``, or a
        healthy one stable per serial). Unregistered, it shows in ``display ont autofind``;
        registered there, it comes online. ValueError, nothing changed, on bad input."""
        sn, port = check_serial(str(serial)), check_fsp(str(fsp))
        rx = None if rx_power_dbm is None else check_rx_power(rx_power_dbm)
        plugged = self.state.plug(sn, port, rx)
        return {"serial": sn, "fsp": "/".join(map(str, port)), "rx_power_dbm": plugged.rx_dbm}

    def unplug(self, serial: str) -> dict[str, Any]:
        """Admin: the ONT's fibre out: it leaves autofind, and a registered ONT with that
        serial goes offline. ``unplugged`` is False if this OLT does not know the serial."""
        sn = check_serial(str(serial))
        return {"serial": sn, "unplugged": self.state.unplug(sn)}

    def seed(
        self,
        onts: list[dict[str, Any]] | None = None,
        service_ports: list[dict[str, Any]] | None = None,
        atomic: bool = False,
    ) -> dict[str, Any]:
        """Admin: insert ONTs and service-ports as ``ont add`` / ``service-port`` would,
        without a CLI session (bulk set-up for benchmarks). Takes ``dump``'s own shape
        (``online`` is ignored; a service-port without ``index`` gets the lowest free
        one, as the CLI gives it). Returns the counts added and one line per refusal;
        ``atomic``: one refusal refuses the whole batch (lab/atomic_seed.py)."""
        if atomic:
            return atomic_seed.olt_seed(self.state, onts or [], service_ports or [])
        added, ports, failures = 0, 0, []
        for o in onts or []:
            f, s, p = (int(x) for x in str(o["fsp"]).split("/"))
            key = (f, s, p, int(o["ont_id"]))
            desc, serial = str(o["description"]), str(o["serial"])
            if not re.fullmatch(r"[^\"\r\n]*", desc) or not re.fullmatch(r"\S+", serial):
                failures.append(f"ont {o['fsp']} {o['ont_id']}: not what the CLI accepts")
                continue
            failure = self.state.add_ont(
                key, serial, desc, int(o["line_profile_id"]), int(o["service_profile_id"])
            )
            if failure is None and not o.get("active", True):
                failure = self.state.set_active(key, False)
            if failure:
                failures.append(f"ont {o['fsp']} {o['ont_id']}:{failure}")
            else:
                added += 1
        for sp in service_ports or []:
            f, s, p = (int(x) for x in str(sp["fsp"]).split("/"))
            vlan = int(sp["vlan"])
            row = ServicePort(0, vlan, f, s, p, int(sp["ont_id"]), int(sp["gem_port"]),
                              int(sp.get("user_vlan", vlan)))  # fmt: skip
            index = sp.get("index")
            failure = self.state.add_service_port(None if index is None else int(index), row)
            if failure:
                where = f"service-port vlan {vlan} {sp['fsp']} ont {sp['ont_id']}"
                failures.append(f"{where}:{failure}")
            else:
                ports += 1
        return {"onts": added, "service_ports": ports, "failures": failures}


class LabBng(SshDevice):
    def __init__(
        self,
        name: str,
        *,
        uplink: str = "GigabitEthernet0/0/1",
        faults: Faults | None = None,
        username: str = "lab",
        password: str = "lab",
        max_sessions: int | None = BNG_MAX_SESSIONS,
    ) -> None:
        fault_set = FaultSet(faults)
        self.state = BngState(name, uplink)
        super().__init__(name, lambda: CiscoCli(self.state), fault_set, username, password,
                         max_sessions=max_sessions)  # fmt: skip

    def reset(self) -> None:
        self.state.reset()
        self.faults.clear()
        self.counters.reset()

    def admin_ops(self) -> dict[str, Callable[..., dict[str, Any]]]:
        def set_policy(interface: str, direction: str, policy: str | None) -> dict[str, Any]:
            return {"ok": self.state.set_policy(interface, direction, policy)}

        def remove_interface(interface: str) -> dict[str, Any]:
            return {"removed": self.state.remove(interface)}

        def reset() -> dict[str, Any]:
            self.reset()
            return {}

        return {
            **super().admin_ops(),
            "dump": self.state.dump,
            "reset": reset,
            "set_policy": set_policy,
            "remove_interface": remove_interface,
            "seed": self.seed,
            "unseed": lambda subinterfaces: atomic_seed.bng_unseed(self.state, subinterfaces),
        }

    def seed(
        self, subinterfaces: list[dict[str, Any]] | None = None, atomic: bool = False
    ) -> dict[str, Any]:
        """Admin: insert sub-interfaces as the CLI would have configured them, without a
        CLI session (bulk set-up for benchmarks). Takes ``dump``'s own shape. Returns
        the count added and one line per refusal; ``atomic``: one refusal refuses the
        whole batch (lab/atomic_seed.py)."""
        if atomic:
            return atomic_seed.bng_seed(self.state, subinterfaces or [])
        added, failures = 0, []
        for item in subinterfaces or []:
            failure = self.state.seed(SubIf(**item))
            if failure:
                failures.append(failure)
            else:
                added += 1
        return {"subinterfaces": added, "failures": failures}

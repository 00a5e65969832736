"""The lab device classes: an OLT and a BNG, each an SSH listener with state and faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devices.lab.bng_state import BngState
from devices.lab.cisco_cli import CiscoCli
from devices.lab.faults import Faults, FaultSet
from devices.lab.huawei_cli import HuaweiCli
from devices.lab.olt_state import OltState
from devices.lab.ssh_server import SshDevice


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
    ) -> None:
        fault_set = FaultSet(faults)
        self.state = OltState(name, fault_set, boards, online_delay)
        super().__init__(name, lambda: HuaweiCli(self.state), fault_set, username, password)

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
        }


class LabBng(SshDevice):
    def __init__(
        self,
        name: str,
        *,
        uplink: str = "GigabitEthernet0/0/1",
        faults: Faults | None = None,
        username: str = "lab",
        password: str = "lab",
    ) -> None:
        fault_set = FaultSet(faults)
        self.state = BngState(name, uplink)
        super().__init__(name, lambda: CiscoCli(self.state), fault_set, username, password)

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
        }

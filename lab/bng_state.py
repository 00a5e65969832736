"""State of one lab BNG: subscriber sub-interfaces under the uplink (thread-safe)."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class SubIf:
    name: str
    description: str | None = None
    outer_vlan: int | None = None
    inner_vlan: int | None = None
    ip_address: str | None = None
    netmask: str | None = None
    policy_in: str | None = None
    policy_out: str | None = None
    shutdown: bool = False


class BngState:
    def __init__(self, name: str, uplink: str = "GigabitEthernet0/0/1") -> None:
        self.name = name
        self.uplink = uplink
        self.lock = threading.RLock()
        self.subifs: dict[str, SubIf] = {}

    def get(self, name: str) -> SubIf | None:
        with self.lock:
            sub = self.subifs.get(name)
            return None if sub is None else SubIf(**asdict(sub))

    def ensure(self, name: str) -> SubIf:
        with self.lock:
            return self.subifs.setdefault(name, SubIf(name))

    def remove(self, name: str) -> bool:
        with self.lock:
            return self.subifs.pop(name, None) is not None

    def vlan_owner(self, outer: int, inner: int | None, other_than: str) -> str | None:
        with self.lock:
            for sub in self.subifs.values():
                if sub.name != other_than and (sub.outer_vlan, sub.inner_vlan) == (outer, inner):
                    return sub.name
            return None

    def set_policy(self, name: str, direction: str, policy: str | None) -> bool:
        """Admin: change a policy behind the system's back (drift tests)."""
        with self.lock:
            sub = self.subifs.get(name)
            if sub is None or direction not in ("input", "output"):
                return False
            if direction == "input":
                sub.policy_in = policy
            else:
                sub.policy_out = policy
            return True

    def seed(self, sub: SubIf) -> str | None:
        """Admin: insert a whole sub-interface as the CLI would have built it (bulk set-up
        for benchmarks); returns why it was refused, or None. The CLI's own checks apply:
        a sub-interface of the uplink, a VID no other one has, no IP without one."""
        if not re.fullmatch(re.escape(self.uplink) + r"\.\d{1,9}", sub.name):
            return f"{sub.name!r} is not a sub-interface of {self.uplink}"
        if sub.ip_address and sub.outer_vlan is None:
            return f"{sub.name}: an IP address needs an encapsulation"
        with self.lock:
            if sub.name in self.subifs:
                return f"{sub.name} exists"
            if sub.outer_vlan is not None:
                owner = self.vlan_owner(sub.outer_vlan, sub.inner_vlan, other_than=sub.name)
                if owner:
                    return f"VID {sub.outer_vlan} is already configured on {owner}"
            self.subifs[sub.name] = SubIf(**asdict(sub))
            return None

    def reset(self) -> None:
        with self.lock:
            self.subifs.clear()

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {"subinterfaces": [asdict(s) for _, s in sorted(self.subifs.items())]}

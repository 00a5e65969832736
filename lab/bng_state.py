"""State of one lab BNG: the uplink and its subscriber sub-interfaces (thread-safe)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
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


def subif_number(name: str) -> int:
    """IOS lists sub-interfaces by number (.2 before .10), not by name."""
    return int(name.rpartition(".")[2])


class BngState:
    def __init__(self, name: str, uplink: str = "GigabitEthernet0/0/1") -> None:
        self.name = name
        self.uplink = uplink
        self.lock = threading.RLock()
        self.subifs: dict[str, SubIf] = {}
        # (outer, inner) -> sub-interface: the VID check is a lookup, not a scan, so a
        # BNG with 20,000 subscribers configures the next one as fast as the first.
        self._vids: dict[tuple[int, int | None], str] = {}
        # IOS keeps a removed sub-interface's IDB until reload: `show ip interface
        # brief` and `show interfaces description` list it as "deleted".
        self.deleted: set[str] = set()
        self.uplink_description: str | None = None
        self.uplink_shutdown = False
        self.booted = time.time()
        self.changed = self.booted

    def is_subif(self, name: str) -> bool:
        return re.fullmatch(re.escape(self.uplink) + r"\.\d{1,9}", name) is not None

    def touch(self) -> None:
        """Remember when the configuration last changed (`show running-config` says so)."""
        self.changed = time.time()

    def get(self, name: str) -> SubIf | None:
        with self.lock:
            sub = self.subifs.get(name)
            return None if sub is None else SubIf(**asdict(sub))

    def ensure(self, name: str) -> SubIf:
        with self.lock:
            self.deleted.discard(name)
            return self.subifs.setdefault(name, SubIf(name))

    def remove(self, name: str) -> bool:
        with self.lock:
            sub = self.subifs.pop(name, None)
            if sub is None:
                return False
            if sub.outer_vlan is not None:
                self._vids.pop((sub.outer_vlan, sub.inner_vlan), None)
            self.deleted.add(name)
            self.touch()
            return True

    def vlan_owner(self, outer: int, inner: int | None, other_than: str) -> str | None:
        with self.lock:
            owner = self._vids.get((outer, inner))
            return None if owner == other_than else owner

    def set_encapsulation(self, name: str, outer: int, inner: int | None) -> str | None:
        """``encapsulation dot1Q outer [second-dot1q inner]`` on ``name``; returns the
        sub-interface that already has this VID (the change is refused), or None."""
        with self.lock:
            owner = self.vlan_owner(outer, inner, other_than=name)
            if owner:
                return owner
            sub = self.ensure(name)
            if sub.outer_vlan is not None:
                self._vids.pop((sub.outer_vlan, sub.inner_vlan), None)
            sub.outer_vlan, sub.inner_vlan = outer, inner
            self._vids[(outer, inner)] = name
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
            self.touch()
            return True

    def seed(self, sub: SubIf) -> str | None:
        """Admin: insert a whole sub-interface as the CLI would have built it (bulk set-up
        for benchmarks); returns why it was refused, or None. The CLI's own checks apply:
        a sub-interface of the uplink, a VID no other one has, no IP without one."""
        if not self.is_subif(sub.name):
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
                self._vids[(sub.outer_vlan, sub.inner_vlan)] = sub.name
            self.deleted.discard(sub.name)
            self.subifs[sub.name] = SubIf(**asdict(sub))
            self.touch()
            return None

    def in_order(self) -> Iterator[SubIf]:
        """Live sub-interfaces in IOS order; iterate while holding ``lock``."""
        for name in sorted(self.subifs, key=subif_number):
            yield self.subifs[name]

    def listed(self) -> list[tuple[str, SubIf | None]]:
        """Every sub-interface IOS lists in interface tables, deleted ones as None
        (the SubIfs are live: read them while holding ``lock``)."""
        with self.lock:
            names = sorted(self.subifs.keys() | self.deleted, key=subif_number)
            return [(n, self.subifs.get(n)) for n in names]

    def reset(self) -> None:
        with self.lock:
            self.subifs.clear()
            self._vids.clear()
            self.deleted.clear()
            self.uplink_description = None
            self.uplink_shutdown = False
            self.changed = time.time()

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {"subinterfaces": [asdict(s) for _, s in sorted(self.subifs.items())]}

    # --- saved state (lab/persist.py) ---------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the BNG holds, as JSON-ready data ``restore`` takes back."""
        with self.lock:
            return {
                "uplink": self.uplink,
                "uplink_description": self.uplink_description,
                "uplink_shutdown": self.uplink_shutdown,
                "subinterfaces": [asdict(s) for s in self.subifs.values()],
                "deleted": sorted(self.deleted),
                "changed": self.changed,
            }

    def restore(self, saved: dict[str, Any]) -> None:
        """Replace the state with a ``snapshot``; ValueError (state unchanged) if it is not
        one this BNG could hold."""
        if saved.get("uplink") != self.uplink:
            raise ValueError(f"uplink {saved.get('uplink')!r} is not {self.uplink!r}")
        subs = [SubIf(**item) for item in saved["subinterfaces"]]
        vids: dict[tuple[int, int | None], str] = {}
        for sub in subs:
            if not self.is_subif(sub.name):
                raise ValueError(f"{sub.name!r} is not a sub-interface of {self.uplink}")
            if sub.outer_vlan is not None:
                if (sub.outer_vlan, sub.inner_vlan) in vids:
                    raise ValueError(f"VID {sub.outer_vlan} twice")
                vids[(sub.outer_vlan, sub.inner_vlan)] = sub.name
        if len({sub.name for sub in subs}) != len(subs):
            raise ValueError("a sub-interface twice")
        deleted = {str(name) for name in saved["deleted"]}
        with self.lock:
            self.subifs = {sub.name: sub for sub in subs}
            self._vids = vids
            self.deleted = deleted - self.subifs.keys()
            self.uplink_description = saved["uplink_description"]
            self.uplink_shutdown = bool(saved["uplink_shutdown"])
            self.changed = float(saved["changed"])

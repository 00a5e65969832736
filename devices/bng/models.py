"""Typed values read back from a BNG."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SubInterface:
    """A subscriber sub-interface as the running configuration shows it."""

    name: str  # e.g. GigabitEthernet0/0/1.100
    vlan: int | None  # encapsulation dot1Q outer VLAN
    inner_vlan: int | None  # second-dot1q, when QinQ
    description: str | None
    ip_address: str | None
    netmask: str | None
    policy_in: str | None
    policy_out: str | None

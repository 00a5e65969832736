"""What the flows need from a BNG, whatever the vendor."""

from __future__ import annotations

from typing import Protocol

from fiberflow.devices.base import Result
from fiberflow.devices.bng.fleet import BngFleet
from fiberflow.devices.bng.models import SubInterface


class BngDriver(Protocol):
    def add_subscriber(
        self,
        vlan: int,
        ip_address: str,
        netmask: str,
        policy_in: str,
        policy_out: str,
        description: str,
        inner_vlan: int | None = None,
    ) -> Result: ...

    def apply_walled_garden(self, vlan: int) -> Result: ...

    def restore_plan(self, vlan: int, policy_in: str, policy_out: str) -> Result: ...

    def remove_subscriber(self, vlan: int) -> Result: ...

    def get_subscriber(self, vlan: int) -> SubInterface | None: ...

    def read_fleet(self) -> BngFleet: ...

    def remove_interface(self, name: str) -> Result: ...

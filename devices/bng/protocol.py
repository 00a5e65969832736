"""What the flows need from a BNG, whatever the vendor.

Every write takes ``dry_run=True``: the same reads, the lines it would send in
``Result.lines``, nothing sent.

``held()``: the operations called inside it share one CLI session (one login) instead
of opening one each; a session that dies in the scope is not reused (the next
operation raises TransientDeviceError), and a nested ``held()`` opens a fresh one
then."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from fiberflow.devices.base import Result
from fiberflow.devices.bng.fleet import BngFleet
from fiberflow.devices.bng.models import SubInterface


class BngDriver(Protocol):
    def held(self) -> AbstractContextManager[None]: ...

    def add_subscriber(
        self,
        vlan: int,
        ip_address: str,
        netmask: str,
        policy_in: str,
        policy_out: str,
        description: str,
        inner_vlan: int | None = None,
        *,
        dry_run: bool = False,
    ) -> Result: ...

    def apply_walled_garden(self, vlan: int, *, dry_run: bool = False) -> Result: ...

    def restore_plan(
        self, vlan: int, policy_in: str, policy_out: str, *, dry_run: bool = False
    ) -> Result: ...

    def remove_subscriber(self, vlan: int, *, dry_run: bool = False) -> Result: ...

    def get_subscriber(self, vlan: int) -> SubInterface | None: ...

    def read_fleet(self) -> BngFleet: ...

    def remove_interface(self, name: str, *, dry_run: bool = False) -> Result: ...

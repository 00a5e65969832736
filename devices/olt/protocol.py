"""What the flows need from an OLT, whatever the vendor.

Every write takes ``dry_run=True``: the same reads, the lines it would send in
``Result.lines``, nothing sent. ``render_*`` give a write's lines without a session,
for a state an earlier step of the same plan would make (an ONT id freed).

``held()``: the operations called inside it share one CLI session (one login) instead
of opening one each; a session that dies in the scope is not reused (the next
operation raises TransientDeviceError), and a nested ``held()`` opens a fresh one
then."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from fiberflow.devices.base import Result
from fiberflow.devices.olt.autofind import AutofindOnt
from fiberflow.devices.olt.fleet import OltFleet
from fiberflow.devices.olt.models import OntInfo, OpticalInfo, ServicePort


class OltDriver(Protocol):
    def held(self) -> AbstractContextManager[None]: ...

    def add_ont(
        self,
        fsp: str,
        ont_id: int | None,
        serial: str,
        line_profile_id: int,
        service_profile_id: int,
        description: str,
        *,
        dry_run: bool = False,
    ) -> Result: ...

    def find_free_ont_id(self, fsp: str) -> int: ...

    def add_service_port(
        self,
        fsp: str,
        ont_id: int,
        gem_port: int,
        vlan: int,
        index: int | None = None,
        *,
        dry_run: bool = False,
    ) -> Result: ...

    def activate_ont(self, fsp: str, ont_id: int, *, dry_run: bool = False) -> Result: ...

    def deactivate_ont(self, fsp: str, ont_id: int, *, dry_run: bool = False) -> Result: ...

    def remove_service_port(self, index: int, *, dry_run: bool = False) -> Result: ...

    def delete_ont(self, fsp: str, ont_id: int, *, dry_run: bool = False) -> Result: ...

    def render_add_ont(
        self,
        fsp: str,
        ont_id: int,
        serial: str,
        line_profile_id: int,
        service_profile_id: int,
        description: str,
    ) -> tuple[str, ...]: ...

    def render_add_service_port(
        self, fsp: str, ont_id: int, gem_port: int, vlan: int, index: int | None = None
    ) -> tuple[str, ...]: ...

    def render_set_active(self, fsp: str, ont_id: int, active: bool) -> tuple[str, ...]: ...

    def get_ont(self, fsp: str, ont_id: int) -> OntInfo | None: ...

    def get_optical_info(self, fsp: str, ont_id: int) -> OpticalInfo | None: ...

    def find_ont_by_serial(self, serial: str) -> OntInfo | None: ...

    def list_service_ports(self, fsp: str, ont_id: int) -> list[ServicePort]: ...

    def read_autofind(self) -> list[AutofindOnt]: ...

    def read_fleet(self) -> OltFleet: ...

"""What the flows need from an OLT, whatever the vendor."""

from __future__ import annotations

from typing import Protocol

from fiberflow.devices.base import Result
from fiberflow.devices.olt.autofind import AutofindOnt
from fiberflow.devices.olt.fleet import OltFleet
from fiberflow.devices.olt.models import OntInfo, OpticalInfo, ServicePort


class OltDriver(Protocol):
    def add_ont(
        self,
        fsp: str,
        ont_id: int | None,
        serial: str,
        line_profile_id: int,
        service_profile_id: int,
        description: str,
    ) -> Result: ...

    def find_free_ont_id(self, fsp: str) -> int: ...

    def add_service_port(
        self, fsp: str, ont_id: int, gem_port: int, vlan: int, index: int | None = None
    ) -> Result: ...

    def activate_ont(self, fsp: str, ont_id: int) -> Result: ...

    def deactivate_ont(self, fsp: str, ont_id: int) -> Result: ...

    def remove_service_port(self, index: int) -> Result: ...

    def delete_ont(self, fsp: str, ont_id: int) -> Result: ...

    def get_ont(self, fsp: str, ont_id: int) -> OntInfo | None: ...

    def get_optical_info(self, fsp: str, ont_id: int) -> OpticalInfo | None: ...

    def find_ont_by_serial(self, serial: str) -> OntInfo | None: ...

    def list_service_ports(self, fsp: str, ont_id: int) -> list[ServicePort]: ...

    def read_autofind(self) -> list[AutofindOnt]: ...

    def read_fleet(self) -> OltFleet: ...

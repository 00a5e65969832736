"""The RADIUS driver as tasks see it: SQL rows (FreeRADIUS schema) + the wire (pyrad)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from fiberflow.devices.base import Result
from fiberflow.devices.inventory import Plan
from fiberflow.devices.radius.types import AuthResult, CoaResult, NasTarget, RadiusSubscriber


class RadiusRows(Protocol):
    """Subscriber rows (RadiusStore). Writes take ``dry_run=True``: the same reads, the
    row lines in ``Result.lines``, nothing written."""

    def activate(
        self,
        username: str,
        password: str,
        ip: str,
        plan: str,
        *,
        netmask: str | None = None,
        dry_run: bool = False,
    ) -> Result: ...

    def set_group(self, username: str, group: str, *, dry_run: bool = False) -> Result: ...

    def remove(self, username: str, *, dry_run: bool = False) -> Result: ...

    def get(self, username: str) -> RadiusSubscriber | None: ...

    def read_all(self) -> dict[str, RadiusSubscriber]: ...

    def ensure_groups(self, plans: Iterable[Plan], walled_garden: str) -> Result: ...


class RadiusWire(Protocol):
    """Packets (RadiusClient). Timeouts raise RadiusTimeout (a TransientDeviceError)."""

    def authenticate(self, username: str, password: str) -> AuthResult: ...

    def coa(
        self, nas: NasTarget, username: str, attributes: Mapping[str, str | Sequence[str]]
    ) -> CoaResult: ...

    def disconnect(self, nas: NasTarget, username: str) -> CoaResult: ...


class RadiusDriver(RadiusRows, RadiusWire, Protocol):
    """Both halves; devices.radius.driver.Radius implements it."""

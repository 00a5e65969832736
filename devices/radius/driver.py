"""Radius: one object for tasks, the SQL store and the pyrad client side by side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from fiberflow.devices.base import Result
from fiberflow.devices.inventory import Plan
from fiberflow.devices.radius.client import RadiusClient
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.devices.radius.types import AuthResult, CoaResult, NasTarget, RadiusSubscriber


class Radius:
    """Implements RadiusDriver by delegating rows to RadiusStore and packets to RadiusClient."""

    def __init__(self, store: RadiusStore, client: RadiusClient) -> None:
        self.store = store
        self.client = client

    def activate(
        self,
        username: str,
        password: str,
        ip: str,
        plan: str,
        *,
        netmask: str | None = None,
        dry_run: bool = False,
    ) -> Result:
        return self.store.activate(username, password, ip, plan, netmask=netmask, dry_run=dry_run)

    def set_group(self, username: str, group: str, *, dry_run: bool = False) -> Result:
        return self.store.set_group(username, group, dry_run=dry_run)

    def remove(self, username: str, *, dry_run: bool = False) -> Result:
        return self.store.remove(username, dry_run=dry_run)

    def get(self, username: str) -> RadiusSubscriber | None:
        return self.store.get(username)

    def read_all(self) -> dict[str, RadiusSubscriber]:
        return self.store.read_all()

    def ensure_groups(self, plans: Iterable[Plan], walled_garden: str) -> Result:
        return self.store.ensure_groups(plans, walled_garden)

    def authenticate(self, username: str, password: str) -> AuthResult:
        return self.client.authenticate(username, password)

    def coa(
        self, nas: NasTarget, username: str, attributes: Mapping[str, str | Sequence[str]]
    ) -> CoaResult:
        return self.client.coa(nas, username, attributes)

    def disconnect(self, nas: NasTarget, username: str) -> CoaResult:
        return self.client.disconnect(nas, username)

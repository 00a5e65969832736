"""The device inventory: a YAML file (``FIBERFLOW_INVENTORY``) validated at load.

Credentials are never in the file: each device names the environment variable that
holds its password (``password_env``). The one exception is the device lab, whose
generated inventory may carry ``password: lab`` (a lab, not a secret).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,127}$"
Name = Annotated[str, Field(pattern=NAME)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _olt_platform(value: str) -> str:
    # Imported here, not at the top: the drivers import this module for their types.
    from fiberflow.devices.registry import OLT_DRIVERS

    return _known_platform(value, "OLT", OLT_DRIVERS)


def _bng_platform(value: str) -> str:
    from fiberflow.devices.registry import BNG_DRIVERS

    return _known_platform(value, "BNG", BNG_DRIVERS)


def _known_platform(value: str, kind: str, drivers: Mapping[str, object]) -> str:
    if value not in drivers:
        known = ", ".join(sorted(drivers))
        raise ValueError(f"unknown {kind} platform {value!r} (known: {known})")
    return value


OltPlatform = Annotated[str, AfterValidator(_olt_platform)]
BngPlatform = Annotated[str, AfterValidator(_bng_platform)]


class InventoryError(ValueError):
    """The inventory is missing or invalid; the message names the entry and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Credentials(_Strict):
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")]
    password_env: Annotated[str | None, Field(pattern=ENV_NAME)] = None
    password: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _one_source(self) -> Credentials:
        if (self.password_env is None) == (self.password is None):
            raise ValueError(
                "give exactly one of password_env (an environment variable) or password"
            )
        return self

    def secret(self) -> str:
        """The password, read from the environment at the moment it is needed."""
        if self.password is not None:
            return self.password
        assert self.password_env is not None
        value = os.environ.get(self.password_env)
        if value is None:
            raise InventoryError(f"environment variable {self.password_env} is not set")
        return value


class Device(Credentials):
    name: Name
    host: str
    port: Port = 22
    # CLI sessions fiberflow opens at once on this device (a Prefect concurrency limit
    # per device and a per-process cap). The device itself takes only its VTY lines
    # (Huawei SmartAX: 4 remote users, Cisco IOS: 5 by default; sources in
    # docs/devices.md "Session limits") and shares them with operators and other tools:
    # the default 2 leaves lines free for them. Set it at most to the device's figure.
    max_sessions: Annotated[int, Field(ge=1, le=64)] = 2
    # Seconds netmiko waits for a prompt; real OLTs can be slow under load.
    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0


class Olt(Device):
    # The driver that speaks to it (devices/registry.py).
    platform: OltPlatform = "huawei_olt"
    bng: Name
    vlan_first: Annotated[int, Field(ge=2, le=4094)] = 100
    vlan_last: Annotated[int, Field(ge=2, le=4094)] = 3999
    # GPON boards as (frame, slot) -> port count; the lab has 16-port boards in 0/1 and 0/2.
    boards: dict[str, Annotated[int, Field(ge=1, le=128)]] = Field(
        default_factory=lambda: {"0/1": 16, "0/2": 16}
    )

    @model_validator(mode="after")
    def _check(self) -> Olt:
        if self.vlan_first > self.vlan_last:
            raise ValueError("vlan_first must not exceed vlan_last")
        for board in self.boards:
            if not re.fullmatch(r"\d{1,2}/\d{1,2}", board):
                raise ValueError(f"board {board!r} must be FRAME/SLOT, e.g. 0/1")
        return self

    def has_port(self, fsp: str) -> bool:
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{1,3})", fsp)
        if not m:
            return False
        count = self.boards.get(f"{int(m[1])}/{int(m[2])}")
        return count is not None and int(m[3]) < count


class Bng(Device):
    platform: BngPlatform = "cisco_ios"
    # Parent interface for subscriber sub-interfaces, e.g. GigabitEthernet0/0/1.
    uplink: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z-]*[0-9]+(/[0-9]+)*$")] = (
        "GigabitEthernet0/0/1"
    )
    ip_pool: str
    ip_gateway: str | None = None
    # The NAS address RADIUS CoA / Disconnect go to (this BNG's RADIUS dynamic-author port).
    nas_host: str = "127.0.0.1"
    nas_port: Port = 3799
    nas_secret_env: Annotated[str | None, Field(pattern=ENV_NAME)] = None
    nas_secret: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _check(self) -> Bng:
        net = ipaddress.ip_network(self.ip_pool, strict=True)
        if self.ip_gateway is not None and ipaddress.ip_address(self.ip_gateway) not in net:
            raise ValueError(f"ip_gateway {self.ip_gateway} is not in ip_pool {self.ip_pool}")
        return self


class RadiusServer(_Strict):
    host: str = "127.0.0.1"
    auth_port: Port = 1812
    acct_port: Port = 1813
    secret_env: Annotated[str | None, Field(pattern=ENV_NAME)] = None
    secret: str | None = Field(default=None, repr=False)
    timeout: Annotated[float, Field(gt=0, le=60)] = 3.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2


class Plan(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
    download_kbps: Annotated[int, Field(ge=64, le=100_000_000)]
    upload_kbps: Annotated[int, Field(ge=64, le=100_000_000)]
    line_profile_id: Annotated[int, Field(ge=0, le=8192)] = 10
    service_profile_id: Annotated[int, Field(ge=0, le=8192)] = 10
    gem_port: Annotated[int, Field(ge=0, le=1023)] = 1
    # BNG service-policy names (policy-map), e.g. PLAN-100M-IN.
    policy_in: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
    policy_out: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]


class Inventory(_Strict):
    olts: list[Olt]
    bngs: list[Bng]
    radius: RadiusServer
    plans: list[Plan]
    walled_garden_policy: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")] = "WALLED-GARDEN"

    @model_validator(mode="after")
    def _cross_check(self) -> Inventory:
        named: dict[str, list[str]] = {
            "olts": [o.name for o in self.olts],
            "bngs": [b.name for b in self.bngs],
            "plans": [p.name for p in self.plans],
        }
        for kind, names in named.items():
            seen: set[str] = set()
            for i, name in enumerate(names):
                if name in seen:
                    raise ValueError(f"{kind}[{i}].name: duplicate name {name!r}")
                seen.add(name)
        bngs = {b.name for b in self.bngs}
        for i, olt in enumerate(self.olts):
            if olt.bng not in bngs:
                raise ValueError(f"olts[{i}].bng: unknown BNG {olt.bng!r}")
        return self

    def olt(self, name: str) -> Olt:
        return _by_name(self.olts, name, "OLT")

    def bng(self, name: str) -> Bng:
        return _by_name(self.bngs, name, "BNG")

    def plan(self, name: str) -> Plan:
        return _by_name(self.plans, name, "plan")

    def bng_for(self, olt_name: str) -> Bng:
        return self.bng(self.olt(olt_name).bng)


_Named = TypeVar("_Named", Olt, Bng, Plan)


def _by_name(items: list[_Named], name: str, kind: str) -> _Named:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"unknown {kind} {name!r}")


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in e["loc"])
        parts.append(f"{loc.replace('.[', '[')}: {e['msg']}")
    return "; ".join(parts)


def parse_inventory(data: Any, source: str = "inventory") -> Inventory:
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        raise InventoryError(f"{source}: {_describe(exc)}") from None


def load_inventory(path: Path | str) -> Inventory:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        # Not str(exc): PyYAML quotes the offending line, which may hold a password.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise InventoryError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_inventory(data, str(path))

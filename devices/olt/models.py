"""Typed values read back from an OLT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ControlFlag = Literal["active", "deactivated"]


@dataclass(frozen=True, slots=True)
class OntInfo:
    fsp: str  # "F/S/P", no padding
    ont_id: int
    serial: str  # 16 hex digits
    control_flag: ControlFlag
    run_state: str  # "online" / "offline"
    config_state: str  # "normal", "initial", "failing", "mismatch", ...
    match_state: str  # "match", "mismatch", "initial"
    description: str
    line_profile_id: int | None = None
    service_profile_id: int | None = None

    @property
    def online(self) -> bool:
        return self.run_state == "online"


@dataclass(frozen=True, slots=True)
class ServicePort:
    index: int
    vlan: int
    fsp: str
    ont_id: int
    gem_port: int
    user_vlan: int | None
    state: str  # "up" / "down"

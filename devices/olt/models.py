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


@dataclass(frozen=True, slots=True)
class OpticalInfo:
    """``display ont optical-info``: what one online ONT's optics report (None: "-")."""

    rx_power_dbm: float | None  # what the ONT receives (downstream): optical acceptance
    tx_power_dbm: float | None  # what the ONT launches (upstream)
    olt_rx_power_dbm: float | None  # what the OLT port receives from this ONT
    temperature_c: int | None
    voltage_v: float | None
    bias_current_ma: float | None

"""The configuration lines of each Huawei SmartAX change, rendered as data (pure).

The driver (huawei.py) sends exactly these, in config mode; a dry run returns them
unsent. ``interface gpon F/S`` and ``quit`` around an ONT command are lines too.
"""

from __future__ import annotations

from collections.abc import Sequence


def in_interface(frame: int, slot: int, command: str) -> tuple[str, str, str]:
    """An ONT command runs inside its board's interface."""
    return (f"interface gpon {frame}/{slot}", command, "quit")


def render_ont_add(frame: int, slot: int, port: int, ont_id: int, serial: str,
                   line_profile_id: int, service_profile_id: int,
                   description: str) -> tuple[str, str, str]:  # fmt: skip
    return in_interface(frame, slot, (
        f"ont add {port} {ont_id} sn-auth {serial} omci ont-lineprofile-id {line_profile_id} "
        f'ont-srvprofile-id {service_profile_id} desc "{description}"'
    ))  # fmt: skip


def render_ont_state(frame: int, slot: int, port: int, ont_id: int,
                     active: bool) -> tuple[str, str, str]:  # fmt: skip
    verb = "activate" if active else "deactivate"
    return in_interface(frame, slot, f"ont {verb} {port} {ont_id}")


def render_ont_delete(frame: int, slot: int, port: int, ont_id: int,
                      service_port_indexes: Sequence[int]) -> tuple[str, ...]:  # fmt: skip
    """Its service-ports first (``undo service-port``), then the ONT."""
    undo = tuple(f"undo service-port {index}" for index in service_port_indexes)
    return undo + in_interface(frame, slot, f"ont delete {port} {ont_id}")


def render_service_port(frame: int, slot: int, port: int, ont_id: int, gem_port: int,
                        vlan: int, index: int | None) -> str:  # fmt: skip
    head = "service-port" if index is None else f"service-port {index}"
    return (
        f"{head} vlan {vlan} gpon {frame}/{slot}/{port} ont {ont_id} gemport {gem_port} "
        f"multi-service user-vlan {vlan} tag-transform translate"
    )

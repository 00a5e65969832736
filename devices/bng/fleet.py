"""A whole BNG in one read: every subscriber sub-interface of its running configuration.

``show running-config`` once per drift check, whatever the number of subscribers; its
interface blocks parse with the ntc-templates template of ``show running-config
interface`` (devices/bng/parsing.py), the one the per-subscriber read uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from fiberflow.devices.bng.models import SubInterface
from fiberflow.devices.bng.parsing import parse_running_interfaces


@dataclass(frozen=True, slots=True)
class BngFleet:
    """The subscriber sub-interfaces of one BNG (``<uplink>.<n>``)."""

    device: str
    uplink: str
    subinterfaces: tuple[SubInterface, ...]

    def by_vlan(self) -> dict[int, SubInterface]:
        """Sub-interfaces by their outer VLAN (those without encapsulation are left out)."""
        return {s.vlan: s for s in self.subinterfaces if s.vlan is not None}


def interface_blocks(config: str) -> str:
    """The ``interface ...`` blocks of a whole running configuration, each closed by
    ``!``: the shape the interface template parses (it rejects the other sections)."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in config.splitlines():
        if line.startswith("interface "):
            current = [line]
            blocks.append(current)
        elif current is not None and line.startswith(" "):
            current.append(line)
        else:
            current = None
    return "".join("\n".join(block) + "\n!\n" for block in blocks)


def parse_subinterfaces(config: str, uplink: str) -> list[SubInterface]:
    """Sub-interfaces of ``uplink`` in a whole ``show running-config``."""
    body = interface_blocks(config)
    if not body:
        return []
    return [s for s in parse_running_interfaces(body) if s.name.startswith(f"{uplink}.")]

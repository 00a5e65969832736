"""A whole OLT in one read: every ONT and every service-port, as typed values.

The fleet drift check (tasks/fleet_drift.py) reads each OLT a fixed number of times per
run, whatever the number of services on it: ``display ont info F all`` once per frame
and ``display service-port all`` once. Both parse with ntc-templates' huawei_smartax
templates, through the same parsing module as the per-port reads (the per-port and
the whole-frame ONT tables share one template).
"""

from __future__ import annotations

from dataclasses import dataclass

from fiberflow.devices.olt.models import OntInfo, ServicePort


@dataclass(frozen=True, slots=True)
class OltFleet:
    """What one OLT holds: its ONTs and its service-ports."""

    device: str
    onts: tuple[OntInfo, ...]
    service_ports: tuple[ServicePort, ...]

    def ont_at(self) -> dict[tuple[str, int], OntInfo]:
        """ONTs by (F/S/P, ONT id)."""
        return {(o.fsp, o.ont_id): o for o in self.onts}

    def ports_of(self) -> dict[tuple[str, int], list[ServicePort]]:
        """Service-ports by the (F/S/P, ONT id) they lead to."""
        by_ont: dict[tuple[str, int], list[ServicePort]] = {}
        for sp in self.service_ports:
            by_ont.setdefault((sp.fsp, sp.ont_id), []).append(sp)
        return by_ont

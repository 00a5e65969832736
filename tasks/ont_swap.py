"""What an ONT replacement changes on the OLT, and how each change is put back.

The old ONT is read before anything changes (``OldOnt``: its id, whether it was
deactivated for a hard suspension, its service-ports with their indexes), so removing
it can be undone exactly: the same serial, id, profiles, description, service-port
indexes and activation. The new ONT goes on the same PON port with the same VLAN and
GEM port, on the old id when that is free. Every helper here is idempotent (it reads
the OLT first), so a retried step or a compensation that runs twice does no harm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fiberflow.devices.olt.errors import OntIdInUse, ServicePortIndexConflict
from fiberflow.devices.olt.models import ServicePort
from fiberflow.devices.olt.protocol import OltDriver
from fiberflow.tasks import devices
from fiberflow.tasks.context import RunContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OldOnt:
    """The ONT being replaced, as the OLT held it before the replacement began."""

    fsp: str
    ont_id: int
    serial: str
    active: bool  # False: deactivated (a hard suspension); the new ONT is left so too
    line_profile_id: int
    service_profile_id: int
    description: str
    service_ports: tuple[ServicePort, ...]


@dataclass(frozen=True, slots=True)
class Swap:
    """One replacement: the service, the ONT going out (None: the OLT had none), the
    serial coming in, and what the new ONT is configured with."""

    service_id: str
    olt: str
    pon_port: str
    old_serial: str
    new_serial: str
    old: OldOnt | None
    ont_id: int | None  # the id to reuse: the old ONT's, else the service's
    vlan: int
    gem_port: int
    line_profile_id: int
    service_profile_id: int
    description: str

    @property
    def keep_deactivated(self) -> bool:
        return self.old is not None and not self.old.active

    @property
    def service_port_index(self) -> int | None:
        """The old ONT's service-port index for this VLAN, reused when it is free."""
        if self.old is None:
            return None
        return next((sp.index for sp in self.old.service_ports if sp.vlan == self.vlan), None)


def read_old(olt: OltDriver, olt_name: str, serial: str, fallback_profiles: tuple[int, int],
             fallback_description: str) -> OldOnt | None:  # fmt: skip
    """The ONT registered with ``serial`` on the OLT and its service-ports, or None."""
    with devices.session(olt, olt_name):  # both reads: one login
        found = olt.find_ont_by_serial(serial)
        if found is None:
            return None
        ports = olt.list_service_ports(found.fsp, found.ont_id)
    line, srv = fallback_profiles
    return OldOnt(
        fsp=found.fsp,
        ont_id=found.ont_id,
        serial=found.serial,
        active=found.control_flag == "active",
        line_profile_id=found.line_profile_id if found.line_profile_id is not None else line,
        service_profile_id=(
            found.service_profile_id if found.service_profile_id is not None else srv
        ),
        description=found.description or fallback_description,
        service_ports=tuple(ports),
    )


def _service_port(olt: OltDriver, fsp: str, ont_id: int, gem: int, vlan: int,
                  index: int | None) -> None:  # fmt: skip
    try:
        olt.add_service_port(fsp, ont_id, gem, vlan, index)
    except ServicePortIndexConflict:
        # The index went to another service-port meanwhile: any index carries the VLAN.
        olt.add_service_port(fsp, ont_id, gem, vlan)


def add_new(olt: OltDriver, swap: Swap) -> tuple[int, bool]:
    """Register the new ONT (the old id when free) with its service-port.
    Returns (ONT id, whether this call added the ONT)."""
    with devices.session(olt, swap.olt):  # the ONT and its service-port: one login
        try:
            added = olt.add_ont(swap.pon_port, swap.ont_id, swap.new_serial,
                                swap.line_profile_id, swap.service_profile_id,
                                swap.description)  # fmt: skip
        except OntIdInUse:  # another ONT took the old id since the old one left
            added = olt.add_ont(swap.pon_port, None, swap.new_serial, swap.line_profile_id,
                                swap.service_profile_id, swap.description)  # fmt: skip
        ont_id = int(str(added.detail["ont_id"]))
        _service_port(olt, swap.pon_port, ont_id, swap.gem_port, swap.vlan,
                      swap.service_port_index)  # fmt: skip
    return ont_id, added.changed


def remove_new(olt: OltDriver, swap: Swap) -> bool:
    """Delete the new ONT (and its service-ports) wherever it is; False if absent.
    Inside a caller's session: that session while alive, else a fresh one."""
    with devices.session(olt, swap.olt):  # the lookup and the delete: one login
        found = olt.find_ont_by_serial(swap.new_serial)
        if found is None:
            return False
        olt.delete_ont(found.fsp, found.ont_id)
    return True


def remove_old(olt: OltDriver, swap: Swap) -> bool:
    """Delete the old ONT and its service-ports; False if it was not there."""
    if swap.old is None:
        return False
    with devices.device_slot(swap.olt):
        return olt.delete_ont(swap.old.fsp, swap.old.ont_id).changed


def put_back_old(ctx: RunContext | None, olt: OltDriver, swap: Swap) -> bool:
    """The old ONT as it was: same id, profiles, service-ports (same indexes when
    free) and activation. False when there was none to put back."""
    old = swap.old
    if old is None:
        return False
    with devices.session(olt, swap.olt):  # the ONT, its service-ports, its state: one login
        olt.add_ont(old.fsp, old.ont_id, old.serial, old.line_profile_id,
                    old.service_profile_id, old.description)  # fmt: skip
        for sp in old.service_ports:
            _service_port(olt, old.fsp, old.ont_id, sp.gem_port, sp.vlan, sp.index)
        if not old.active:
            olt.deactivate_ont(old.fsp, old.ont_id)
    extra = {"device": swap.olt, "fsp": old.fsp, "ont_id": old.ont_id, "serial": old.serial}
    log.info("old ONT put back", extra=ctx.log_extra(**extra) if ctx else extra)
    return True

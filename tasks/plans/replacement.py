"""ONT replacement's dry run: the old ONT's removal, the new ONT and its service-port,
and (a hard-suspended service) the new ONT's deactivation after its test.

The validating step's reads decide it (tasks/ont_replacement.swap_of). The new ONT goes
on the id and service-port index the removal frees: its lines are the driver's render
of an add on a free id, as the OLT will be once the old ONT is gone. A newly added ONT
is active, so the testing step's re-activation sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiberflow.devices.changes import Change
from fiberflow.devices.olt.errors import OntIdInUse
from fiberflow.tasks import service
from fiberflow.tasks.ont_replacement import swap_of
from fiberflow.tasks.plans import readers
from fiberflow.tasks.plans.readers import cli, on


def plan(service_id: str | None, params: Mapping[str, Any]) -> list[Change]:
    assert service_id is not None
    s = swap_of(service.load(service_id), str(params["ont_serial"]), readers.olt)
    olt = readers.olt(s.olt)
    profiles = (s.line_profile_id, s.service_profile_id, s.description)
    changes: list[Change] = []
    if s.old is not None:
        old = s.old
        changes.append(cli(s.olt, on(s.olt, lambda: olt.delete_ont(old.fsp, old.ont_id,
                                                                  dry_run=True))))  # fmt: skip
        ont_id = old.ont_id
        changes.append(Change(s.olt, "cli", olt.render_add_ont(s.pon_port, ont_id, s.new_serial,
                                                               *profiles)))  # fmt: skip
    else:  # nothing is removed first: the OLT is now as the add will find it
        try:
            added = on(s.olt, lambda: olt.add_ont(s.pon_port, s.ont_id, s.new_serial, *profiles,
                                                  dry_run=True))  # fmt: skip
        except OntIdInUse:  # as ont_swap.add_new: another ONT holds the id, take a free one
            added = on(s.olt, lambda: olt.add_ont(s.pon_port, None, s.new_serial, *profiles,
                                                  dry_run=True))  # fmt: skip
        ont_id = int(str(added.detail["ont_id"]))
        changes.append(cli(s.olt, added))
    port = olt.render_add_service_port(s.pon_port, ont_id, s.gem_port, s.vlan,
                                       s.service_port_index)  # fmt: skip
    changes.append(Change(s.olt, "cli", port))
    if s.keep_deactivated:
        changes.append(Change(s.olt, "cli", olt.render_set_active(s.pon_port, ont_id, False)))
    return changes

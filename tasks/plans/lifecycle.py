"""Dry runs of the operations that change an existing service in place: suspension,
resumption, termination and plan change. CoA and Disconnect requests are not listed:
they are packets to the subscriber's live session, not stored state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiberflow.core.ipam import held
from fiberflow.devices.changes import IPAM, Change
from fiberflow.tasks import service, suspension, teardown
from fiberflow.tasks.plan_change import plan_change
from fiberflow.tasks.plans import readers
from fiberflow.tasks.plans.readers import cli, on, rows
from fiberflow.tasks.runtime import runtime


def _suspend_or_resume(service_id: str, suspend: bool, hard: bool) -> list[Change]:
    """The steps' order: RADIUS group, BNG policies, then (hard / resume) the ONT."""
    svc = suspension.ready(service.load(service_id))
    assert svc.radius_username is not None
    bng_name = runtime().inventory.olt(svc.olt).bng
    bng, radius = readers.bng(bng_name), readers.radius()
    group = radius.set_group(svc.radius_username, suspension.group_for(svc, suspend), dry_run=True)
    policies = on(bng_name, lambda: suspension.set_policies(bng, svc, suspend, dry_run=True))
    changes = [rows(group), cli(bng_name, policies)]
    if suspension.touches_ont(svc, suspend, hard):
        olt = readers.olt(svc.olt)
        ont = on(svc.olt, lambda: suspension.set_ont(olt, svc, not suspend, dry_run=True))
        changes.append(cli(svc.olt, ont))
    return changes


def plan_suspension(service_id: str | None, params: Mapping[str, Any]) -> list[Change]:
    assert service_id is not None
    return _suspend_or_resume(service_id, True, bool(params.get("hard", False)))


def plan_resumption(service_id: str | None, params: Mapping[str, Any]) -> list[Change]:
    assert service_id is not None
    return _suspend_or_resume(service_id, False, False)


def plan_termination(service_id: str | None, params: Mapping[str, Any]) -> list[Change]:
    """teardown's order: RADIUS rows, the BNG sub-interface, the ONT, IPAM."""
    assert service_id is not None
    svc = service.load(service_id)
    changes: list[Change] = []
    if svc.radius_username:
        changes.append(rows(readers.radius().remove(svc.radius_username, dry_run=True)))
    if svc.vlan is not None:
        vlan, bng_name = svc.vlan, runtime().inventory.olt(svc.olt).bng
        bng = readers.bng(bng_name)
        gone = on(bng_name, lambda: bng.remove_subscriber(vlan, dry_run=True))
        changes.append(cli(bng_name, gone))
    olt = readers.olt(svc.olt)
    where = teardown.ont_location(olt, svc)
    if where is not None:
        changes.append(cli(svc.olt, on(svc.olt, lambda: olt.delete_ont(*where, dry_run=True))))
    with runtime().sessions() as s:
        ips, vlans = held(s, service_id=svc.id)
    released = [f"release ip {ip}" for ip in ips] + [f"release vlan {v}" for v in vlans]
    return [*changes, Change(IPAM, "allocation", tuple(released))]


def plan_plan_change(service_id: str | None, params: Mapping[str, Any]) -> list[Change]:
    """The RADIUS group, then the BNG policies, of the new plan."""
    assert service_id is not None
    change = plan_change(service.load(service_id), str(params["plan"]))
    new, bng = change.new, readers.bng(change.bng)
    group = readers.radius().set_group(change.username, new.name, dry_run=True)
    policies = on(
        change.bng,
        lambda: bng.restore_plan(change.vlan, new.policy_in, new.policy_out, dry_run=True),
    )
    return [rows(group), cli(change.bng, policies)]

"""Reprovisioning's dry run: the drift check's reads, then the lines and rows the repair
would send for each system that drifted (nothing when the service is in sync)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiberflow.devices.changes import Change
from fiberflow.tasks import reprovisioning as r
from fiberflow.tasks import service
from fiberflow.tasks.plans import readers
from fiberflow.tasks.plans.readers import cli, rows


def plan(service_id: str | None, params: Mapping[str, Any]) -> list[Change]:
    assert service_id is not None
    svc = service.load(service_id)
    want = r.wanted(svc)
    olt, bng, radius = readers.olt(svc.olt), readers.bng(want.bng), readers.radius()
    systems = {d.system for d in r.drift_of(svc, want, olt, bng, radius).drift}
    changes: list[Change] = []
    if "olt" in systems:
        changes += [cli(svc.olt, done) for done in r.repair_olt(olt, svc, want, dry_run=True)]
    if "bng" in systems:
        changes.append(cli(want.bng, r.repair_bng(bng, want, dry_run=True)))
    if "radius" in systems:
        changes.append(rows(r.repair_radius(radius, want, dry_run=True)))
    return changes

"""Reprovisioning: per service, read device + RADIUS state, diff against the database,
re-apply only what drifted. The nightly deployment runs the fleet drift check
(flows/drift_check.py), which reads each device once and starts this flow for the
drifted services only."""

from __future__ import annotations

from prefect import flow

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.tasks.hooks import flow_hooks
from fiberflow.tasks.reprovisioning import (
    check_drift,
    claim_or_refuse,
    complete_reprovisioning,
    repair_drift,
)
from fiberflow.tasks.run import abort_run, begin_run


@flow(name=catalogue.REPROVISIONING.deployment.flow, **flow_hooks())
def reprovision(service_id: str) -> dict[str, str]:
    """``in_sync`` / ``repaired`` with the diff; a failure leaves the service ``failed``.
    A service neither ``active`` nor already ``reprovisioning`` is refused (InvalidTransition)."""
    # The drift check claims the service before calling us; a direct run claims it here.
    claim_or_refuse(service_id)
    ctx = begin_run(service_id, Operation.REPROVISIONING)
    try:
        report = check_drift(service_id)
        outcome = repair_drift(service_id, report)
        complete_reprovisioning(service_id)
    except BaseException as exc:
        abort_run(ctx, exc, clear_resources=False)
        raise
    return {"service_id": service_id, "result": outcome, "diff": report.diff()}

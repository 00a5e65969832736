"""Compensation of a run that crashed: its rollback hooks never ran, so tear down
whatever the interrupted operation may have left, then fail the service. A plan change
instead gets its recorded plan back and stays active (tasks/plan_recovery.py)."""

from __future__ import annotations

import logging

from prefect.cache_policies import NO_CACHE

from fiberflow.core import catalogue, metrics
from fiberflow.core.db.models import TRANSITIONAL, Operation, ServiceStatus
from fiberflow.tasks import service, teardown
from fiberflow.tasks.context import RunContext
from fiberflow.tasks.plan_recovery import recover_plan_change
from fiberflow.tasks.retry import device_task

log = logging.getLogger(__name__)


@device_task(name="compensate-crashed-run", cache_policy=NO_CACHE)
def compensate_crashed_run(service_id: str, reason: str) -> str:
    svc = service.load(service_id)
    if ServiceStatus(svc.status) not in TRANSITIONAL:
        return f"nothing to do: service is {svc.status}"
    run_id = svc.flow_run_id or "reconciler"
    operation = Operation(svc.current_operation or Operation.PROVISIONING.value)
    ctx = RunContext(svc.id, svc.tenant_id, operation, run_id)
    if operation is Operation.PLAN_CHANGE and svc.status == catalogue.PLAN_CHANGE.running:
        # A plan change leaves the service where it was: active, on the old plan.
        return recover_plan_change(ctx, svc, reason)
    provisioning = operation is Operation.PROVISIONING or svc.status == "pending"
    if provisioning:
        # A failed provisioning leaves nothing behind, however far it got.
        teardown.everything(ctx, svc)
    error = f"{reason}; compensated" if provisioning else reason
    if service.mark_failed(service_id, error, clear_resources=provisioning):
        # The dead run's own hooks never ran: count its failure here, once.
        metrics.workflow_ended(run_id, ok=False, labels=lambda: (operation.value, svc.plan))
        last = list(catalogue.of(operation).steps.values())[0]
        ctx.progress(last, "rolled_back", "Compensated the interrupted run")
        ctx.failed(error)
    return "compensated" if provisioning else "failed"

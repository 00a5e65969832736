"""Starting and ending one operation run: context, failure bookkeeping, crash closing."""

from __future__ import annotations

import logging

from prefect.runtime import flow_run

from fiberflow.core.db.models import Operation
from fiberflow.tasks import service
from fiberflow.tasks.context import RunContext, register

log = logging.getLogger(__name__)


def begin_run(service_id: str, operation: Operation) -> RunContext:
    """Register this flow run's context (the hooks find the service through it)."""
    run_id = str(flow_run.id)
    row = service.load(service_id)
    service.record_flow_run(service_id, run_id)
    return register(row.id, row.tenant_id, operation, run_id)


def context_for(
    service_id: str, flow_run_id: str, operation: Operation | None = None
) -> RunContext | None:
    from fiberflow.core.db.models import ServiceInstance
    from fiberflow.tasks.runtime import runtime

    with runtime().sessions() as s:
        row = s.get(ServiceInstance, service_id)
        if row is None:
            return None
        op = operation or (Operation(row.current_operation) if row.current_operation else None)
        if op is None:
            return None
        return register(row.id, row.tenant_id, op, flow_run_id)


def abort_run(ctx: RunContext, exc: BaseException, *, clear_resources: bool) -> None:
    """The flow failed and compensation has run: the row becomes ``failed``, committed
    before the flow's ``on_failure`` hook publishes the failed event."""
    error = ctx.error or str(exc) or type(exc).__name__
    ctx.error = error
    try:
        ctx.failed_here = service.mark_failed(
            ctx.service_id, error, clear_resources=clear_resources
        )
    except Exception:
        log.exception("could not mark the service failed", extra=ctx.log_extra())


def close_abnormal_run(service_id: str, flow_run_id: str, error: str) -> None:
    """A crash or cancellation, seen from the worker (the run's process may be gone):
    hand the service to the ``reconcile`` flow, which compensates, fails it and
    publishes the failed event (tasks/handoff.py).

    The run's own transaction never rolled back, so failing the row here would leave
    its ONT, IP and RADIUS rows behind. If Prefect can't be reached, the service stays
    transitional and the reconciler's next pass hands it over."""
    from fiberflow.tasks.handoff import start_reconcile

    try:
        start_reconcile(service_id, flow_run_id, error)
    except Exception:
        ids = {"service_id": service_id, "flow_run_id": flow_run_id}
        log.exception("could not start the reconcile run", extra=ids)

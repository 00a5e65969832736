"""Resumption: the reverse of suspension (plan group and policies back, CoA, ONT up)."""

from __future__ import annotations

from prefect import flow

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.tasks.compensation import transaction
from fiberflow.tasks.hooks import flow_hooks
from fiberflow.tasks.run import abort_run, begin_run
from fiberflow.tasks.suspension import (
    complete_resumption,
    notify_resumption,
    restore_plan,
    validate_resumption,
)


@flow(name=catalogue.RESUMPTION.deployment.flow, **flow_hooks())
def resume(service_id: str) -> dict[str, object]:
    ctx = begin_run(service_id, Operation.RESUMPTION)
    try:
        with transaction():
            svc = validate_resumption(service_id)
            restore_plan(svc)
            session = notify_resumption(svc)
            complete_resumption(service_id)
    except BaseException as exc:
        abort_run(ctx, exc, clear_resources=False)
        raise
    return {"service_id": service_id, "session": session}

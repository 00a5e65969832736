"""Plan change: RADIUS plan group, BNG service-policies, then the live session (CoA, or
Disconnect when the NAS will not take it). A failure compensates back to the old plan
everywhere and the service stays ``active`` on it."""

from __future__ import annotations

from prefect import flow

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.tasks.compensation import transaction
from fiberflow.tasks.hooks import flow_hooks
from fiberflow.tasks.plan_change import (
    complete_plan_change,
    restore_service,
    update_bng_policy,
    update_radius_plan,
    validate_plan_change,
)
from fiberflow.tasks.plan_session import apply_new_plan
from fiberflow.tasks.run import begin_run


@flow(name=catalogue.PLAN_CHANGE.deployment.flow, **flow_hooks())
def change_plan(service_id: str, plan: str) -> dict[str, object]:
    ctx = begin_run(service_id, Operation.PLAN_CHANGE)
    try:
        with transaction():
            change = validate_plan_change(service_id, plan)
            update_radius_plan(change)
            update_bng_policy(change)
            session = apply_new_plan(change)
            complete_plan_change(change)
    except BaseException as exc:
        restore_service(ctx, exc, plan)
        raise
    return {"service_id": service_id, "plan": plan, "session": session}

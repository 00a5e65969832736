"""A plan change whose run died (worker killed, process crashed): its rollback hooks
never ran, so RADIUS and the BNG may hold the new plan, or half of it, while the row
still names the old one (the row changes plan only in the last step). The reconciler
puts the recorded plan back everywhere and the service is ``active`` on it again, as
after a plan change that failed; nothing is torn down."""

from __future__ import annotations

import logging

from fiberflow.core import catalogue, metrics
from fiberflow.devices.radius.policy import coa_attributes, plan_reply
from fiberflow.tasks import devices
from fiberflow.tasks.context import RunContext
from fiberflow.tasks.plan_change import back_to_active
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceView

log = logging.getLogger(__name__)
STEP = "compensating"


def _restore_devices(ctx: RunContext, svc: ServiceView) -> None:
    """RADIUS group and BNG policies of the row's plan; idempotent (same = no change)."""
    inv = runtime().inventory
    plan = inv.plan(svc.plan)
    if svc.radius_username is not None:
        devices.radius(ctx, STEP).set_group(svc.radius_username, plan.name)
    if svc.vlan is not None:
        bng_name = inv.olt(svc.olt).bng
        with devices.device_slot(bng_name):
            devices.bng(ctx, bng_name, STEP).restore_plan(svc.vlan, plan.policy_in, plan.policy_out)


def _restore_session(ctx: RunContext, svc: ServiceView) -> None:
    """Best effort: the dead run may have sent the new plan by CoA. The old plan's CoA
    is harmless to a session that never got it."""
    if svc.radius_username is None:
        return
    try:
        reply = coa_attributes(plan_reply(runtime().inventory.plan(svc.plan)))
        devices.radius(ctx, STEP).coa(devices.nas_for(svc.olt), svc.radius_username, reply)
    except Exception as exc:  # RADIUS and the BNG are what the next login reads
        log.warning(
            "could not send the old plan to the session: %s", exc, extra=ctx.log_extra(step=STEP)
        )


def recover_plan_change(ctx: RunContext, svc: ServiceView, reason: str) -> str:
    """Compensate the dead run, return the service to ``active`` and publish its
    notice and failed event (once: not if the row had moved on)."""
    _restore_devices(ctx, svc)
    _restore_session(ctx, svc)
    error = f"{reason}; plan {svc.plan} restored"
    if not back_to_active(svc.id, f"plan change failed: {error}"):
        return f"nothing to do: service is no longer {catalogue.PLAN_CHANGE.running.value}"
    # The dead run's own hooks never ran: count its failure here, once.
    metrics.workflow_ended(
        ctx.flow_run_id, ok=False, labels=lambda: (ctx.operation.value, svc.plan)
    )
    first = next(iter(catalogue.PLAN_CHANGE.steps.values()))
    ctx.progress(first, "rolled_back", f"Restored plan {svc.plan} in RADIUS and on the BNG")
    ctx.failed(error)
    return "restored"

"""Plan change: the subscriber's RADIUS group and the BNG sub-interface's service-policies
move to another plan, then the live session is told (tasks/plan_session.py).

IP address, VLAN and RADIUS username never change. Each device step reads what the
device holds first and remembers it: its rollback hook puts exactly that back, so a
failure before the change is complete leaves RADIUS and the BNG on the old plan. The
service row keeps the old plan until the last step, and a failed run returns it to
``active`` (``restore_service``) instead of ``failed``: the subscriber keeps a working
line on the plan they had.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.transactions import Transaction

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceInstance, ServiceStatus
from fiberflow.devices.base import PermanentDeviceError
from fiberflow.devices.inventory import Plan
from fiberflow.tasks import devices, service
from fiberflow.tasks.compensation import remember
from fiberflow.tasks.context import RunContext, lookup
from fiberflow.tasks.hooks import rollback_notice, step_hooks
from fiberflow.tasks.retry import device_task
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceStateError, ServiceView

log = logging.getLogger(__name__)
ENTRY = catalogue.PLAN_CHANGE
S = ENTRY.steps


class PlanRefused(ValueError):
    """The plan asked for cannot be applied (unknown, or the plan the service has).
    Nothing was asked of a device, and a retry would decide the same."""


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What one run changes: the service as it was, and the plans from and to."""

    service: ServiceView
    old: Plan
    new: Plan
    bng: str

    @property
    def username(self) -> str:
        assert self.service.radius_username is not None  # checked by validate_plan_change
        return self.service.radius_username

    @property
    def vlan(self) -> int:
        assert self.service.vlan is not None  # checked by validate_plan_change
        return self.service.vlan


def plan_change(svc: ServiceView, plan: str) -> PlanChange:
    """The change of ``svc`` to ``plan``, or PlanRefused / ServiceStateError."""
    if svc.vlan is None or svc.radius_username is None:
        raise ServiceStateError("service has no VLAN or RADIUS user to change")
    inv = runtime().inventory
    try:
        new = inv.plan(plan)
    except KeyError:
        known = ", ".join(p.name for p in inv.plans)
        raise PlanRefused(f"plan: unknown plan {plan!r} (one of {known})") from None
    if new.name == svc.plan:
        raise PlanRefused(f"plan: the service is already on plan {plan!r}")
    try:
        old = inv.plan(svc.plan)
    except KeyError:
        raise PlanRefused(f"plan: the current plan {svc.plan!r} is not in the inventory") from None
    if new.gem_port != old.gem_port:
        # The OLT's service-port carries the plan's GEM port, and a plan change does not
        # touch the OLT: the drift checks would find the service-port wrong.
        raise PlanRefused(
            f"plan: {new.name!r} uses GEM port {new.gem_port}, the service's plan "
            f"{old.name!r} GEM port {old.gem_port}; a plan change keeps the OLT as it is"
        )
    return PlanChange(service=svc, old=old, new=new, bng=inv.olt(svc.olt).bng)


@task(name="validate-plan-change", cache_policy=NO_CACHE, **step_hooks(S["validating"]))
def validate_plan_change(service_id: str, plan: str) -> PlanChange:
    svc = service.load(service_id)
    if svc.status != ENTRY.running:
        raise ServiceStateError(f"service is {svc.status}, not {ENTRY.running.value}")
    return plan_change(svc, plan)


def _before(have: str | None, new: str, old: str) -> str:
    """What a rollback puts back: what the device held (not what the record says it
    should), unless that is the new plan's already, which only a retry of this step
    finds (its earlier attempt's work): then the old plan's."""
    return have if have is not None and have != new else old


# -- RADIUS --------------------------------------------------------------------------------
def _set_group(ctx: RunContext | None, username: str, group: str, step: str) -> bool:
    return devices.radius(ctx, step).set_group(username, group).changed


@device_task(name="plan-radius", cache_policy=NO_CACHE, **step_hooks(S["updating_radius"]))
def update_radius_plan(change: PlanChange) -> bool:
    """The subscriber's radusergroup row names the new plan's group (its reply rows)."""
    ctx = lookup(flow_run.id)
    radius = devices.radius(ctx, "updating_radius")
    current = radius.get(change.username)
    if current is None:
        raise PermanentDeviceError("radius", f"no RADIUS subscriber {change.username!r}")
    remember(change=change, group=_before(current.group, change.new.name, change.old.name))
    return radius.set_group(change.username, change.new.name).changed


def _undo_radius(txn: Transaction) -> None:
    change: PlanChange = txn.get("change")
    ctx = lookup(flow_run.id)
    _set_group(ctx, change.username, txn.get("group"), "rollback")
    rollback_notice(ctx, S["updating_radius"], f"Restored RADIUS group {txn.get('group')}")


update_radius_plan.on_rollback(_undo_radius)


# -- BNG -----------------------------------------------------------------------------------
def _set_policies(
    ctx: RunContext | None, change: PlanChange, pair: tuple[str, str], step: str
) -> bool:
    bng = devices.bng(ctx, change.bng, step)
    with devices.device_slot(change.bng):
        return bng.restore_plan(change.vlan, *pair).changed


@device_task(name="plan-bng", cache_policy=NO_CACHE, **step_hooks(S["updating_bng"]))
def update_bng_policy(change: PlanChange) -> bool:
    """The sub-interface's service-policy input/output become the new plan's."""
    ctx = lookup(flow_run.id)
    bng = devices.bng(ctx, change.bng, "updating_bng")
    before: tuple[str, str] | None = None
    try:
        with devices.session(bng, change.bng):  # the read and the change: one login
            sub = bng.get_subscriber(change.vlan)
            if sub is None:
                raise PermanentDeviceError(change.bng, f"no sub-interface for VLAN {change.vlan}")
            before = (
                _before(sub.policy_in, change.new.policy_in, change.old.policy_in),
                _before(sub.policy_out, change.new.policy_out, change.old.policy_out),
            )
            remember(change=change, policies=before)
            return bng.restore_plan(change.vlan, change.new.policy_in,
                                    change.new.policy_out).changed  # fmt: skip
    except Exception:
        if before is None:  # the read failed: nothing was changed
            raise
        # A failed step's own rollback hook never runs: undo a half-applied change here
        # (audited as the rollback, in a session of its own once this one is closed).
        try:
            _set_policies(ctx, change, before, "rollback")
        except Exception as undo:  # the first failure is the one to report (and retry)
            log.warning(
                "could not undo a half-applied policy change: %s",
                undo,
                extra={"service_id": change.service.id},
            )
        raise


def _undo_bng(txn: Transaction) -> None:
    change: PlanChange = txn.get("change")
    policies: tuple[str, str] = txn.get("policies")
    ctx = lookup(flow_run.id)
    _set_policies(ctx, change, policies, "rollback")
    rollback_notice(
        ctx,
        S["updating_bng"],
        f"Restored service-policy {policies[0]} / {policies[1]} on {change.bng}",
    )


update_bng_policy.on_rollback(_undo_bng)


# -- the end -------------------------------------------------------------------------------
@task(name="complete-plan-change", cache_policy=NO_CACHE, **step_hooks(S["completed"]))
def complete_plan_change(change: PlanChange) -> None:
    service.finish(change.service.id, Operation.PLAN_CHANGE, plan=change.new.name)


def back_to_active(service_id: str, error: str) -> bool:
    """``changing_plan`` -> ``active`` (the row still names the old plan), with ``error``
    kept for operators (GET shows it; the next operation clears it). False if the row
    had left ``changing_plan`` already."""
    (before,) = ENTRY.starts_from
    with runtime().sessions() as s, s.begin():
        row = s.get(ServiceInstance, service_id)
        if row is None or row.status != ENTRY.running.value:
            return False
        row.status = before.value
        row.error = error[:2000]
        return True


def restore_service(ctx: RunContext, exc: BaseException, plan: str) -> None:
    """The run failed and compensation has run: the service is ``active`` again on its
    old plan, committed before the flow's ``on_failure`` hook publishes the failed event.
    ``ctx.failed_here`` is False when the row had left ``changing_plan`` already (the
    reconciler got there first): that failed event is not ours to publish."""
    error = ctx.error or str(exc) or type(exc).__name__
    ctx.error = error
    try:
        ctx.failed_here = back_to_active(ctx.service_id, f"plan change to {plan} failed: {error}")
    except Exception:
        log.exception("could not return the service to active", extra=ctx.log_extra())
        return
    log.warning(
        "plan change failed; service restored",
        extra=ctx.log_extra(status=ServiceStatus.ACTIVE.value, plan=plan, error=error),
    )

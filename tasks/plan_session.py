"""The applying step of a plan change: tell the subscriber's live session.

A CoA-Request carries the new plan's attributes (the same Cisco-AVPairs the plan's
radgroupreply rows hold). A NAS that refuses it (CoA-NAK) or does not answer gets a
Disconnect-Request instead: the subscriber's CPE reconnects at once and
re-authenticates, and RADIUS already answers with the new plan. Either way the change
is done, so the step completes, and its progress message says which happened. A NAK
with Error-Cause Session-Context-Not-Found means the subscriber is offline: nothing to
change or end, the next login gets the new plan. Every request and its outcome (ACK,
NAK with its Error-Cause, timeout) is a row of the device command audit.
"""

from __future__ import annotations

import logging

from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.transactions import Transaction

from fiberflow.core import catalogue
from fiberflow.devices.inventory import Plan
from fiberflow.devices.radius.policy import coa_attributes, plan_reply
from fiberflow.devices.radius.types import CoaResult, RadiusTimeout
from fiberflow.tasks import devices
from fiberflow.tasks.compensation import remember
from fiberflow.tasks.context import RunContext, lookup
from fiberflow.tasks.hooks import rollback_notice, step_hooks
from fiberflow.tasks.plan_change import PlanChange
from fiberflow.tasks.retry import device_task

log = logging.getLogger(__name__)
STEP = catalogue.PLAN_CHANGE.steps["applying"]
# The progress status of the event that says what the session got (CoA or Disconnect).
APPLIED = "applied"


def _coa(ctx: RunContext | None, change: PlanChange, plan: Plan, step: str) -> CoaResult:
    nas = devices.nas_for(change.service.olt)
    attributes = coa_attributes(plan_reply(plan))
    return devices.radius(ctx, step).coa(nas, change.username, attributes)


def _refusal(result: CoaResult) -> str:
    return f"refused ({result.error_cause or result.error_code or 'NAK'})"


def _disconnect(ctx: RunContext | None, change: PlanChange, why: str) -> str:
    """Disconnect-Request after a CoA that did not take; the outcome as a sentence."""
    try:
        result = devices.radius(ctx, STEP.status).disconnect(
            devices.nas_for(change.service.olt), change.username
        )
    except RadiusTimeout:
        return (
            f"{why}; the NAS did not answer the Disconnect-Request either: the new "
            "plan applies when the session next re-authenticates"
        )
    if result.acked:
        return f"{why}; session disconnected to re-authenticate on the new plan"
    if result.session_not_found:
        return f"{why}; no active session: the new plan applies at the next login"
    return (
        f"{why}; the Disconnect-Request was {_refusal(result)}: the new plan applies "
        "when the session next re-authenticates"
    )


def apply_to_session(ctx: RunContext | None, change: PlanChange) -> tuple[str, bool]:
    """(what happened, whether the session now runs the new plan's attributes by CoA)."""
    try:
        result = _coa(ctx, change, change.new, STEP.status)
    except RadiusTimeout:
        return _disconnect(ctx, change, "CoA-Request unanswered"), False
    if result.acked:
        return "Speed changed on the live session (CoA acknowledged)", True
    if result.session_not_found:
        return "No active session: the new plan applies at the next login", False
    return _disconnect(ctx, change, f"CoA-Request {_refusal(result)}"), False


@device_task(name="plan-coa", cache_policy=NO_CACHE, **step_hooks(STEP))
def apply_new_plan(change: PlanChange) -> str:
    ctx = lookup(flow_run.id)
    # A socket error (TransientDeviceError) fails the attempt: the task retries the step.
    outcome, coa_applied = apply_to_session(ctx, change)
    remember(change=change, coa_applied=coa_applied)
    log.info(
        "plan applied to the session",
        extra=(
            ctx.log_extra(outcome=outcome)
            if ctx
            else {"service_id": change.service.id, "outcome": outcome}
        ),
    )
    if ctx is not None:
        # A status of its own: a second "applying" event of the step would be coalesced.
        ctx.progress(STEP, APPLIED, outcome)
    return outcome


def _undo_session(txn: Transaction) -> None:
    """A later step failed: a session that took the new plan by CoA gets the old one
    back (best effort). A disconnected one re-authenticates on what RADIUS holds: the
    old plan, once the RADIUS step has rolled back."""
    if not txn.get("coa_applied"):
        return
    change: PlanChange = txn.get("change")
    ctx = lookup(flow_run.id)
    try:
        result = _coa(ctx, change, change.old, "rollback")
    except Exception as exc:  # the original failure is what the run reports
        log.warning(
            "could not revert the session: %s", exc, extra={"service_id": change.service.id}
        )
        return
    note = (
        "Sent the old plan to the session (CoA)"
        if result.acked
        else (f"The NAS {_refusal(result)} the old plan's CoA")
    )
    rollback_notice(ctx, STEP, note)


apply_new_plan.on_rollback(_undo_session)

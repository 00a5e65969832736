"""Suspension and resumption: RADIUS group + BNG policy + CoA; the ONT only when hard."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.transactions import Transaction

from fiberflow.core import catalogue
from fiberflow.core.catalogue import Step
from fiberflow.core.db.models import Operation
from fiberflow.devices.base import PermanentDeviceError, Result
from fiberflow.devices.bng.protocol import BngDriver
from fiberflow.devices.olt.protocol import OltDriver
from fiberflow.devices.radius.policy import coa_attributes, plan_reply, walled_garden_reply
from fiberflow.devices.radius.types import SUSPENDED_GROUP, CoaResult
from fiberflow.tasks import devices, service
from fiberflow.tasks.compensation import remember
from fiberflow.tasks.context import RunContext, lookup
from fiberflow.tasks.hooks import rollback_notice, step_hooks
from fiberflow.tasks.retry import device_task
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceStateError, ServiceView

log = logging.getLogger(__name__)
SUSPENSION = catalogue.SUSPENSION.steps
RESUMPTION = catalogue.RESUMPTION.steps


def _steps(suspend: bool) -> Mapping[str, Step]:
    return SUSPENSION if suspend else RESUMPTION


def check(service_id: str, running_status: str) -> ServiceView:
    svc = service.load(service_id)
    if svc.status != running_status:
        raise ServiceStateError(f"service is {svc.status}, not {running_status}")
    return ready(svc)


def ready(svc: ServiceView) -> ServiceView:
    if svc.vlan is None or svc.radius_username is None:
        raise ServiceStateError("service has no VLAN or RADIUS user to change")
    return svc


def group_for(svc: ServiceView, suspend: bool) -> str:
    """The RADIUS group of the wanted state: the walled garden's, or the plan's."""
    return SUSPENDED_GROUP if suspend else runtime().inventory.plan(svc.plan).name


def set_policies(bng: BngDriver, svc: ServiceView, suspend: bool, *, dry_run: bool = False
                 ) -> Result:  # fmt: skip
    """The BNG sub-interface's policies for the wanted state (idempotent)."""
    assert svc.vlan is not None
    if suspend:
        return bng.apply_walled_garden(svc.vlan, dry_run=dry_run)
    plan = runtime().inventory.plan(svc.plan)
    return bng.restore_plan(svc.vlan, plan.policy_in, plan.policy_out, dry_run=dry_run)


def touches_ont(svc: ServiceView, suspend: bool, hard: bool) -> bool:
    """A hard suspension deactivates the ONT; resumption always activates it (a no-op
    unless it was hard-suspended)."""
    return svc.ont_id is not None and (hard or not suspend)


@task(name="validate-suspension", cache_policy=NO_CACHE, **step_hooks(SUSPENSION["validating"]))
def validate_suspension(service_id: str) -> ServiceView:
    return check(service_id, "suspending")


@task(name="validate-resumption", cache_policy=NO_CACHE, **step_hooks(RESUMPTION["validating"]))
def validate_resumption(service_id: str) -> ServiceView:
    return check(service_id, "resuming")


def _apply(svc: ServiceView, suspend: bool, step: str) -> None:
    """RADIUS group and BNG policies for the wanted state (idempotent)."""
    ctx = lookup(flow_run.id)
    bng_name = runtime().inventory.olt(svc.olt).bng
    assert svc.radius_username is not None
    devices.radius(ctx, step).set_group(svc.radius_username, group_for(svc, suspend))
    bng = devices.bng(ctx, bng_name, step)
    with devices.device_slot(bng_name):
        set_policies(bng, svc, suspend)


def _change(svc: ServiceView, suspend: bool) -> None:
    remember(service=svc, suspend=suspend)
    try:
        _apply(svc, suspend, "suspending" if suspend else "resuming")
    except Exception:
        try:  # leave no half-applied change behind (our own rollback hook will not run)
            _apply(svc, not suspend, "rollback")
        except Exception as exc:  # report the first failure, which decides about retries
            log.warning("could not undo a half-applied change: %s", exc,
                        extra={"service_id": svc.id})  # fmt: skip
        raise


def _undo(txn: Transaction) -> None:
    svc, suspend = txn.get("service"), txn.get("suspend")
    _apply(svc, not suspend, "rollback")
    step = _steps(suspend)["suspending" if suspend else "resuming"]
    rollback_notice(lookup(flow_run.id), step, "Restored the previous RADIUS group and policy")


@device_task(name="walled-garden", cache_policy=NO_CACHE, **step_hooks(SUSPENSION["suspending"]))
def enter_walled_garden(svc: ServiceView) -> None:
    _change(svc, suspend=True)


enter_walled_garden.on_rollback(_undo)


@device_task(name="restore-plan", cache_policy=NO_CACHE, **step_hooks(RESUMPTION["resuming"]))
def restore_plan(svc: ServiceView) -> None:
    _change(svc, suspend=False)


restore_plan.on_rollback(_undo)


def _session_reply(svc: ServiceView, suspend: bool) -> dict[str, tuple[str, ...]]:
    inv = runtime().inventory
    reply = walled_garden_reply(inv.walled_garden_policy) if suspend else plan_reply(
        inv.plan(svc.plan))  # fmt: skip
    return coa_attributes(reply)


def _coa(ctx: RunContext | None, svc: ServiceView, suspend: bool, step: str) -> CoaResult:
    assert svc.radius_username is not None
    return devices.radius(ctx, step).coa(devices.nas_for(svc.olt), svc.radius_username,
                                         _session_reply(svc, suspend))  # fmt: skip


def set_ont(olt: OltDriver, svc: ServiceView, active: bool, *, dry_run: bool = False) -> Result:
    assert svc.ont_id is not None
    if active:
        return olt.activate_ont(svc.pon_port, svc.ont_id, dry_run=dry_run)
    return olt.deactivate_ont(svc.pon_port, svc.ont_id, dry_run=dry_run)


def _set_ont(ctx: RunContext | None, svc: ServiceView, active: bool, step: str) -> bool:
    olt = devices.olt(ctx, svc.olt, step)
    with devices.device_slot(svc.olt):
        return set_ont(olt, svc, active).changed


def _revert_session(ctx: RunContext | None, svc: ServiceView, suspend: bool) -> None:
    """Best effort: push the previous attributes back to a live session we changed."""
    try:
        result = _coa(ctx, svc, not suspend, "rollback")
    except Exception as exc:  # the original failure is what the caller reports
        log.warning("could not revert the session: %s", exc, extra={"service_id": svc.id})
        return
    if not result.acked:
        log.warning("NAS refused the reverting CoA: %s", result.error_cause,
                    extra={"service_id": svc.id})  # fmt: skip


def _notify(svc: ServiceView, suspend: bool, hard: bool) -> str:
    """CoA with the new group's attributes; the ONT (de)activated when ``hard``."""
    ctx = lookup(flow_run.id)
    result = _coa(ctx, svc, suspend, "notifying")
    if not result.acked and not result.session_not_found:
        raise PermanentDeviceError("nas", f"CoA refused: {result.error_cause or 'NAK'}")
    remember(service=svc, suspend=suspend, session_changed=result.acked, ont_changed=False)
    note = "session updated" if result.acked else "no active session"
    if not touches_ont(svc, suspend, hard):
        return note
    try:  # resumption always activates: a no-op unless the ONT was hard-suspended
        changed = _set_ont(ctx, svc, not suspend, "notifying")
    except Exception:
        if result.acked:  # our own half-done work: the rollback hook will not run for us
            _revert_session(ctx, svc, suspend)
        raise
    remember(ont_changed=changed)
    return note


def _undo_notify(txn: Transaction) -> None:
    """A later step failed: undo the ONT change, then the session's attributes."""
    svc, suspend = txn.get("service"), txn.get("suspend")
    ctx = lookup(flow_run.id)
    done = []
    try:
        if txn.get("ont_changed"):
            _set_ont(ctx, svc, suspend, "rollback")
            done.append("Activated the ONT again" if suspend else "Deactivated the ONT again")
    finally:  # the session is restored even when the OLT cannot be reached
        if txn.get("session_changed"):
            _revert_session(ctx, svc, suspend)
            done.append("Sent the previous attributes to the session (CoA)")
        if done:
            rollback_notice(ctx, _steps(suspend)["notifying"], "; ".join(done))


@device_task(name="coa-suspend", cache_policy=NO_CACHE, **step_hooks(SUSPENSION["notifying"]))
def notify_suspension(svc: ServiceView, hard: bool) -> str:
    return _notify(svc, True, hard)


notify_suspension.on_rollback(_undo_notify)


@device_task(name="coa-resume", cache_policy=NO_CACHE, **step_hooks(RESUMPTION["notifying"]))
def notify_resumption(svc: ServiceView) -> str:
    return _notify(svc, False, False)


notify_resumption.on_rollback(_undo_notify)


@task(name="complete-suspension", cache_policy=NO_CACHE, **step_hooks(SUSPENSION["completed"]))
def complete_suspension(service_id: str) -> None:
    service.finish(service_id, Operation.SUSPENSION)


@task(name="complete-resumption", cache_policy=NO_CACHE, **step_hooks(RESUMPTION["completed"]))
def complete_resumption(service_id: str) -> None:
    service.finish(service_id, Operation.RESUMPTION)

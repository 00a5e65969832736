"""ONT replacement steps: validate, remove the old ONT, add the new one, test it, complete.

The service row keeps the old serial and ONT id until the last step; IP, VLAN, RADIUS
rows and the BNG are never touched. Each device step registers its compensation, so a
failure (the new ONT never online, too little light) deletes the new ONT and puts the
old one back as it was; ``restore_service`` then returns the row to the status it
started from (active or suspended) instead of ``failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.transactions import Transaction
from sqlalchemy import select

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceInstance, ServiceStatus
from fiberflow.devices import validation
from fiberflow.devices.base import InvalidInput
from fiberflow.devices.olt.protocol import OltDriver
from fiberflow.tasks import devices, ont_acceptance, ont_swap, service
from fiberflow.tasks.compensation import remember
from fiberflow.tasks.context import RunContext, lookup
from fiberflow.tasks.hooks import rollback_notice, step_hooks
from fiberflow.tasks.ont_swap import Swap
from fiberflow.tasks.retry import device_task
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceStateError, ServiceView

log = logging.getLogger(__name__)
ENTRY = catalogue.ONT_REPLACEMENT
S = ENTRY.steps


class SerialRefused(ValueError):
    """The new serial cannot be used: malformed, the service's own, or held by another
    live service or ONT. Nothing was changed, and a retry would decide the same."""


def _held_elsewhere(service_id: str, serial: str) -> str | None:
    """The id of another live service holding ``serial``, or None."""
    with runtime().sessions() as s:
        return s.scalars(
            select(ServiceInstance.id).where(
                ServiceInstance.ont_serial == serial,
                ServiceInstance.id != service_id,
                ServiceInstance.status.not_in(
                    [ServiceStatus.TERMINATED.value, ServiceStatus.FAILED.value]
                ),
            )
        ).first()


@device_task(name="validate-replacement", cache_policy=NO_CACHE, **step_hooks(S["validating"]))
def validate_replacement(service_id: str, ont_serial: str) -> Swap:
    """Read-only: the row, the inventory, and the OLT (the new serial must be unknown to
    it; the old ONT is read as it is, to be put back exactly on a failure)."""
    svc = service.load(service_id)
    if svc.status != ENTRY.running.value:
        raise ServiceStateError(f"service is {svc.status}, not {ENTRY.running.value}")
    ctx = lookup(flow_run.id)
    return swap_of(svc, ont_serial, lambda name: devices.olt(ctx, name, "validating"))


def swap_of(svc: ServiceView, ont_serial: str, olt_of: Callable[[str], OltDriver]) -> Swap:
    """The replacement of ``svc``'s ONT by ``ont_serial`` (SerialRefused /
    ServiceStateError); reads the OLT (``olt_of(name)``'s driver) and changes nothing."""
    if svc.vlan is None or svc.ont_serial is None:
        raise ServiceStateError("service has no VLAN or ONT to replace")
    try:
        new = validation.serial(ont_serial.upper())  # as the API stores serials
    except InvalidInput as exc:
        raise SerialRefused(str(exc)) from None  # "ont_serial: invalid value ..."
    if new == svc.ont_serial:
        raise SerialRefused(f"ont_serial: {new} is already this service's ONT")
    if other := _held_elsewhere(svc.id, new):
        raise SerialRefused(f"ont_serial: {new} belongs to service {other}")
    inv = runtime().inventory
    try:
        olt_conf, plan = inv.olt(svc.olt), inv.plan(svc.plan)
    except KeyError as exc:
        raise ServiceStateError(str(exc.args[0])) from None
    olt = olt_of(olt_conf.name)
    description = validation.description(svc.description or f"ff-{svc.customer_ref}"[:64])
    profiles = (plan.line_profile_id, plan.service_profile_id)
    with devices.session(olt, olt_conf.name):  # the new serial, the old ONT: one login
        registered = olt.find_ont_by_serial(new)
        if registered is not None:
            raise SerialRefused(f"ont_serial: {new} is already registered on "
                                f"{olt_conf.name} as ONT {registered.fsp} "
                                f"{registered.ont_id}")  # fmt: skip
        old = ont_swap.read_old(olt, olt_conf.name, svc.ont_serial, profiles, description)
    return Swap(
        service_id=svc.id,
        olt=olt_conf.name,
        pon_port=old.fsp if old else svc.pon_port,
        old_serial=svc.ont_serial,
        new_serial=new,
        old=old,
        ont_id=old.ont_id if old else svc.ont_id,
        vlan=svc.vlan,
        gem_port=plan.gem_port,
        line_profile_id=plan.line_profile_id,
        service_profile_id=plan.service_profile_id,
        description=description,
    )


@device_task(name="remove-old-ont", cache_policy=NO_CACHE, **step_hooks(S["removing"]))
def remove_old_ont(swap: Swap) -> bool:
    ctx = lookup(flow_run.id)
    olt = devices.olt(ctx, swap.olt, "removing")
    remember(swap=swap)
    try:
        return ont_swap.remove_old(olt, swap)
    except Exception:
        # A half-done delete (service-ports gone, ONT still there): put it back ourselves,
        # a failing task's own rollback hook does not run.
        try:
            ont_swap.put_back_old(ctx, olt, swap)  # one session for its adds
        except Exception as exc:  # the first failure is what decides about retries
            log.warning("could not put the old ONT back: %s", exc,
                        extra={"service_id": swap.service_id})  # fmt: skip
        raise


@remove_old_ont.on_rollback
def _put_back_old(txn: Transaction) -> None:
    swap: Swap = txn.get("swap")
    ctx = lookup(flow_run.id)
    if ont_swap.put_back_old(ctx, devices.olt(ctx, swap.olt, "rollback"), swap):
        assert swap.old is not None
        rollback_notice(ctx, S["removing"], f"Put the old ONT {swap.old_serial} back as "
                        f"{swap.old.fsp} {swap.old.ont_id} on {swap.olt}")  # fmt: skip


@device_task(name="add-new-ont", cache_policy=NO_CACHE, **step_hooks(S["adding"]))
def add_new_ont(swap: Swap) -> int:
    ctx = lookup(flow_run.id)
    olt = devices.olt(ctx, swap.olt, "adding")
    remember(new_swap=swap)
    with devices.session(olt, swap.olt):  # the adds and a cleanup: one login
        try:
            ont_id, _ = ont_swap.add_new(olt, swap)
        except Exception:
            try:  # our own half-done work (ONT without its service-port); the same
                # session while it is alive, a fresh one if the transport failed
                ont_swap.remove_new(olt, swap)
            except Exception as exc:
                log.warning("could not remove the half-added ONT: %s", exc,
                            extra={"service_id": swap.service_id})  # fmt: skip
            raise
    return ont_id


@add_new_ont.on_rollback
def _remove_new(txn: Transaction) -> None:
    swap: Swap = txn.get("new_swap")
    ctx = lookup(flow_run.id)
    if ont_swap.remove_new(devices.olt(ctx, swap.olt, "rollback"), swap):
        rollback_notice(ctx, S["adding"], f"Removed the new ONT {swap.new_serial} "
                        f"from {swap.olt}")  # fmt: skip


@device_task(name="test-new-ont", cache_policy=NO_CACHE, **step_hooks(S["testing"]))
def test_new_ont(swap: Swap, ont_id: int) -> float:
    """Online, then enough light; a hard-suspended service's new ONT is deactivated again
    once measured (a deactivated ONT has no light to measure)."""
    ctx = lookup(flow_run.id)
    olt = devices.olt(ctx, swap.olt, "testing")
    with devices.session(olt, swap.olt):  # activation, polling, optical read: one login
        if swap.keep_deactivated:
            # A retry after the deactivation below: light it again to measure (a no-op else).
            olt.activate_ont(swap.pon_port, ont_id)
        ont_acceptance.wait_online(ctx, S["testing"], olt, swap.olt, swap.pon_port, ont_id)
        rx = ont_acceptance.check_rx_power(ctx, S["testing"], olt, swap.olt, swap.pon_port,
                                           ont_id)  # fmt: skip
        if swap.keep_deactivated:
            olt.deactivate_ont(swap.pon_port, ont_id)
    return rx


@task(name="complete-replacement", cache_policy=NO_CACHE, **step_hooks(S["completed"]))
def complete_replacement(swap: Swap, ont_id: int, rx_power_dbm: float) -> None:
    # The unique index on live serials is the last word: a service that took the new
    # serial meanwhile fails this commit, and the run compensates.
    service.finish(swap.service_id, Operation.ONT_REPLACEMENT, ont_serial=swap.new_serial,
                   pon_port=swap.pon_port, ont_id=ont_id,
                   ont_rx_power_dbm=rx_power_dbm)  # fmt: skip


def restore_service(ctx: RunContext, exc: BaseException) -> None:
    """The run failed and compensation has run: the service returns to the status it
    started from with its old ONT, committed before the flow's ``on_failure`` hook
    publishes the failed event. ``ctx.failed_here`` is False when the row had left
    ``replacing_ont`` already (the reconciler got there first)."""
    error = ctx.error or str(exc) or type(exc).__name__
    ctx.error = error
    try:
        with runtime().sessions() as s, s.begin():
            row = s.get(ServiceInstance, ctx.service_id)
            ctx.failed_here = row is not None and row.status == ENTRY.running.value
            if row is not None and ctx.failed_here:
                row.restore(f"ONT replacement failed: {error}"[:2000])
                status = row.status
    except Exception:
        log.exception("could not return the service to its status", extra=ctx.log_extra())
        return
    if ctx.failed_here:
        log.warning("ONT replacement failed; service restored",
                    extra=ctx.log_extra(status=status, error=error))  # fmt: skip

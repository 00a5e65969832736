"""Termination steps: Disconnect, RADIUS rows, BNG + OLT config, IP/VLAN, done."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.tasks import service, teardown
from fiberflow.tasks.context import lookup
from fiberflow.tasks.hooks import step_hooks
from fiberflow.tasks.retry import device_task
from fiberflow.tasks.service import ServiceStateError, ServiceView

S = catalogue.TERMINATION.steps


@task(name="validate-termination", cache_policy=NO_CACHE, **step_hooks(S["validating"]))
def validate_termination(service_id: str) -> ServiceView:
    svc = service.load(service_id)
    if svc.status != "terminating":
        raise ServiceStateError(f"service is {svc.status}, not terminating")
    return svc


@device_task(name="disconnect", cache_policy=NO_CACHE, **step_hooks(S["disconnecting"]))
def disconnect(svc: ServiceView) -> str:
    return teardown.disconnect(lookup(flow_run.id), svc, "disconnecting")


@device_task(name="remove-radius", cache_policy=NO_CACHE, **step_hooks(S["deactivating"]))
def remove_radius(svc: ServiceView) -> None:
    teardown.remove_radius(lookup(flow_run.id), svc, "deactivating")


@device_task(name="remove-network-config", cache_policy=NO_CACHE, **step_hooks(S["unconfiguring"]))
def remove_network_config(svc: ServiceView) -> None:
    ctx = lookup(flow_run.id)
    teardown.remove_bng(ctx, svc, "unconfiguring")
    teardown.remove_ont(ctx, svc, "unconfiguring")


@task(name="release-resources", cache_policy=NO_CACHE, **step_hooks(S["releasing"]))
def release_resources(svc: ServiceView) -> None:
    teardown.release(svc)
    # The row must not name what IPAM may now hand to another service, even if the last
    # step fails (the ONT and the sub-interface are already gone too).
    teardown.clear_row(svc)


@task(name="complete-termination", cache_policy=NO_CACHE, **step_hooks(S["completed"]))
def complete_termination(service_id: str) -> None:
    # The row keeps its history (serial, plan); the resources it held are gone.
    service.finish(service_id, Operation.TERMINATION, ip_address=None, vlan=None, ont_id=None)

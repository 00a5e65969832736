"""Provisioning steps. Each device-changing task reads state first (drivers are
idempotent), registers its compensation with ``on_rollback``, and cleans its own partial
work when it fails (Prefect does not run a failing task's own rollback hook)."""

from __future__ import annotations

import ipaddress
import logging
import secrets
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.transactions import Transaction

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceInstance
from fiberflow.core.ipam import allocate_ip, allocate_vlan, release_ip, release_vlan
from fiberflow.devices import validation
from fiberflow.devices.base import DeviceAuthError, PermanentDeviceError
from fiberflow.devices.radius.protocol import RadiusRows
from fiberflow.devices.radius.types import AuthStatus
from fiberflow.tasks import devices, ont_acceptance, service
from fiberflow.tasks.compensation import remember
from fiberflow.tasks.context import lookup
from fiberflow.tasks.hooks import rollback_notice, step_hooks
from fiberflow.tasks.retry import device_task
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceView

log = logging.getLogger(__name__)
S = catalogue.PROVISIONING.steps


class OrderInvalid(ValueError):
    """The order no longer fits the inventory or the service's status."""


@dataclass(frozen=True, slots=True)
class Order:
    service_id: str
    olt: str
    bng: str
    pon_port: str
    serial: str
    description: str
    plan: str
    line_profile_id: int
    service_profile_id: int
    gem_port: int
    policy_in: str
    policy_out: str
    radius_username: str
    ip_pool: str
    ip_gateway: str | None
    vlan_first: int
    vlan_last: int

    @property
    def netmask(self) -> str:
        return str(ipaddress.ip_network(self.ip_pool).netmask)


@dataclass(frozen=True, slots=True)
class Allocation:
    ip: str
    netmask: str
    vlan: int


def radius_username(customer_ref: str, service_id: str) -> str:
    return validation.username(f"{customer_ref[:55]}.{service_id[:8]}")


def subscriber_password(radius: RadiusRows, username: str) -> str:
    """The subscriber's RADIUS password: the one it has, else a new one."""
    existing = radius.get(username)
    return existing.password if existing and existing.password else secrets.token_urlsafe(18)


@task(name="validate", cache_policy=NO_CACHE, **step_hooks(S["validating"]))
def validate(service_id: str) -> Order:
    svc = service.load(service_id)
    if svc.status != "provisioning":
        raise OrderInvalid(f"service is {svc.status}, not provisioning")
    username = svc.radius_username or radius_username(svc.customer_ref, svc.id)
    order = order_of(svc, username)
    if svc.radius_username != username:
        service.update(service_id, radius_username=username)
    return order


def order_of(svc: ServiceView, username: str) -> Order:
    """The order of ``svc`` against the inventory (OrderInvalid), RADIUS user ``username``."""
    inv = runtime().inventory
    try:
        olt = inv.olt(svc.olt)
        plan = inv.plan(svc.plan)
        bng = inv.bng(olt.bng)
    except KeyError as exc:
        raise OrderInvalid(str(exc.args[0])) from None
    if not olt.has_port(svc.pon_port):
        raise OrderInvalid(f"pon_port {svc.pon_port} is not a GPON port of {olt.name}")
    validation.serial(svc.ont_serial)
    description = svc.description or f"ff-{svc.customer_ref}"[:64]
    return Order(
        service_id=svc.id,
        olt=olt.name,
        bng=bng.name,
        pon_port=svc.pon_port,
        serial=svc.ont_serial,
        description=validation.description(description),
        plan=plan.name,
        line_profile_id=plan.line_profile_id,
        service_profile_id=plan.service_profile_id,
        gem_port=plan.gem_port,
        policy_in=plan.policy_in,
        policy_out=plan.policy_out,
        radius_username=username,
        ip_pool=bng.ip_pool,
        ip_gateway=bng.ip_gateway,
        vlan_first=olt.vlan_first,
        vlan_last=olt.vlan_last,
    )


@task(name="allocate", cache_policy=NO_CACHE, **step_hooks(S["allocating"]))
def allocate(order: Order) -> Allocation:
    remember(service_id=order.service_id)
    with runtime().sessions() as s, s.begin():
        ip = allocate_ip(
            s,
            pool=order.bng,
            network=order.ip_pool,
            gateway=order.ip_gateway,
            service_id=order.service_id,
        )
        vlan = allocate_vlan(
            s,
            scope=order.bng,
            first=order.vlan_first,
            last=order.vlan_last,
            service_id=order.service_id,
        )
        # Same transaction as the allocations: a failure here cannot leak them (a failing
        # task's own rollback hook does not run).
        row = s.get(ServiceInstance, order.service_id)
        if row is None:
            raise OrderInvalid(f"service {order.service_id} does not exist")
        row.ip_address, row.vlan = ip, vlan
    return Allocation(ip=ip, netmask=order.netmask, vlan=vlan)


@allocate.on_rollback
def _release(txn: Transaction) -> None:
    service_id = txn.get("service_id")
    with runtime().sessions() as s, s.begin():
        release_ip(s, service_id=service_id)
        release_vlan(s, service_id=service_id)
    service.update(service_id, ip_address=None, vlan=None)
    rollback_notice(lookup(flow_run.id), S["allocating"], "Released the IP address and VLAN")


@device_task(
    name="configure-ont",
    cache_policy=NO_CACHE,
    **step_hooks(S["configuring"], "Configuring the ONT and its service-port on the OLT"),
)
def configure_ont(order: Order, alloc: Allocation) -> int:
    ctx = lookup(flow_run.id)
    olt = devices.olt(ctx, order.olt, "configuring")
    # One slot, one login: add_ont and add_service_port (and a cleanup) share a session.
    with devices.session(olt, order.olt):
        added = olt.add_ont(order.pon_port, None, order.serial, order.line_profile_id,
                            order.service_profile_id, order.description)  # fmt: skip
        ont_id = int(str(added.detail["ont_id"]))
        remember(olt=order.olt, pon_port=order.pon_port, ont_id=ont_id,
                 service_id=order.service_id)  # fmt: skip
        try:
            olt.add_service_port(order.pon_port, ont_id, order.gem_port, alloc.vlan)
            service.update(order.service_id, ont_id=ont_id)  # a lost database connection, too
        except Exception:
            if added.changed:  # our own half-done work: the rollback hook will not run for us
                # The same session while it is alive; a fresh one if the transport failed.
                with devices.session(olt, order.olt):
                    olt.delete_ont(order.pon_port, ont_id)
            raise
    return ont_id


@configure_ont.on_rollback
def _remove_ont(txn: Transaction) -> None:
    olt_name, pon_port, ont_id = txn.get("olt"), txn.get("pon_port"), txn.get("ont_id")
    ctx = lookup(flow_run.id)
    olt = devices.olt(ctx, olt_name, "rollback")
    with devices.device_slot(olt_name):
        olt.delete_ont(pon_port, ont_id)  # also removes its service-ports
    service.update(txn.get("service_id"), ont_id=None)
    rollback_notice(ctx, S["configuring"], f"Removed ONT {pon_port} {ont_id} from {olt_name}")


@device_task(
    name="configure-bng",
    cache_policy=NO_CACHE,
    **step_hooks(S["configuring"], "Configuring the subscriber sub-interface on the BNG"),
)
def configure_bng(order: Order, alloc: Allocation) -> None:
    ctx = lookup(flow_run.id)
    bng = devices.bng(ctx, order.bng, "configuring")
    remember(bng=order.bng, vlan=alloc.vlan)
    with devices.session(bng, order.bng):
        try:
            bng.add_subscriber(alloc.vlan, alloc.ip, alloc.netmask, order.policy_in,
                               order.policy_out, order.description)  # fmt: skip
        except DeviceAuthError:
            raise  # no session, nothing applied; a second login would be refused the same way
        except Exception:
            # A half-applied config set: remove it, in the same session while it is
            # alive, in a fresh one if the transport failed.
            with devices.session(bng, order.bng):
                bng.remove_subscriber(alloc.vlan)
            raise


@configure_bng.on_rollback
def _remove_subinterface(txn: Transaction) -> None:
    ctx = lookup(flow_run.id)
    name, vlan = txn.get("bng"), txn.get("vlan")
    with devices.device_slot(name):
        devices.bng(ctx, name, "rollback").remove_subscriber(vlan)
    rollback_notice(ctx, S["configuring"], f"Removed the sub-interface for VLAN {vlan} on {name}")


@device_task(name="activate-radius", cache_policy=NO_CACHE, **step_hooks(S["activating"]))
def activate_radius(order: Order, alloc: Allocation) -> None:
    ctx = lookup(flow_run.id)
    radius = devices.radius(ctx, "activating")
    remember(username=order.radius_username)
    password = subscriber_password(radius, order.radius_username)
    radius.activate(order.radius_username, password, alloc.ip, order.plan, netmask=alloc.netmask)


@activate_radius.on_rollback
def _remove_radius(txn: Transaction) -> None:
    ctx = lookup(flow_run.id)
    devices.radius(ctx, "rollback").remove(txn.get("username"))
    rollback_notice(ctx, S["activating"], "Removed the subscriber from RADIUS")


@device_task(name="test-service", cache_policy=NO_CACHE, **step_hooks(S["testing"]))
def test_service(order: Order, alloc: Allocation, ont_id: int) -> None:
    ctx = lookup(flow_run.id)
    radius = devices.radius(ctx, "testing")
    sub = radius.get(order.radius_username)
    if sub is None or not sub.password:
        raise PermanentDeviceError("radius", f"no RADIUS rows for {order.radius_username}")
    auth = radius.authenticate(order.radius_username, sub.password)
    if auth.status is not AuthStatus.ACCEPT:
        raise PermanentDeviceError("radius", f"Access-Request for {order.radius_username} "
                                   f"was {auth.status.name.lower()}")  # fmt: skip
    if auth.framed_ip != alloc.ip:
        raise PermanentDeviceError("radius", f"Framed-IP-Address {auth.framed_ip} != {alloc.ip}")
    olt = devices.olt(ctx, order.olt, "testing")
    with devices.session(olt, order.olt):  # the polling and the optical read: one login
        ont_acceptance.wait_online(ctx, S["testing"], olt, order.olt, order.pon_port, ont_id)
        try:
            rx = ont_acceptance.check_rx_power(ctx, S["testing"], olt, order.olt,
                                               order.pon_port, ont_id)  # fmt: skip
        except ont_acceptance.RxPowerTooLow as exc:
            # What was measured stays on the failed service, for whoever fixes the fibre.
            service.update(order.service_id, ont_rx_power_dbm=exc.rx_power_dbm)
            raise
    service.update(order.service_id, ont_rx_power_dbm=rx)


@task(name="complete", cache_policy=NO_CACHE, **step_hooks(S["completed"]))
def complete(order: Order) -> None:
    service.finish(order.service_id, Operation.PROVISIONING)

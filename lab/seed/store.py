"""The database side of a seed: what is taken, and every row of the planned services
(service, IP and VLAN allocation, RADIUS) in bulk inserts inside the caller's
transaction, one statement per table rather than one query per service.

The rows are those provisioning leaves: the service ``active`` after ``provisioning``
with its ONT id, VLAN, address and RADIUS username (core/ipam.py's allocation rows for
the VLAN and address), and the subscriber's rlm_sql rows as devices/radius/sql.py's
``activate`` writes them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import (
    IpAllocation,
    IpPool,
    Operation,
    RadCheck,
    RadReply,
    RadUserGroup,
    ServiceInstance,
    ServiceStatus,
    VlanAllocation,
    utcnow,
)
from fiberflow.devices.inventory import Inventory
from fiberflow.devices.radius.sql import IP_ATTR, MASK_ATTR, PASSWORD_ATTR
from fiberflow.lab.seed.plan import Planned, Taken

# Statuses that hold an ONT serial and its place (DESIGN.md): all but these two.
_RELEASED = (ServiceStatus.TERMINATED.value, ServiceStatus.FAILED.value)


def read_taken(s: Session, inv: Inventory, taken: Taken) -> None:
    """Add the database's VLANs, addresses, ONT places and live serials to ``taken``."""
    bngs = [b.name for b in inv.bngs]
    for scope, vlan in s.execute(
        select(VlanAllocation.scope, VlanAllocation.vlan).where(VlanAllocation.scope.in_(bngs))
    ):
        taken.vlans.setdefault(scope, set()).add(vlan)
    for pool, address in s.execute(
        select(IpPool.name, IpAllocation.address)
        .join(IpPool, IpPool.id == IpAllocation.pool_id)
        .where(IpPool.name.in_(bngs))
    ):
        taken.ips.setdefault(pool, set()).add(int(ipaddress.ip_address(address)))
    for olt, fsp, ont_id, serial in s.execute(
        select(
            ServiceInstance.olt,
            ServiceInstance.pon_port,
            ServiceInstance.ont_id,
            ServiceInstance.ont_serial,
        ).where(ServiceInstance.status.not_in(_RELEASED))
    ):
        taken.serials.add(str(serial))
        if ont_id is not None:
            taken.ont_ids.setdefault((olt, fsp), set()).add(ont_id)


def lock_pools(s: Session, inv: Inventory) -> dict[str, int]:
    """Each BNG's pool row (created if missing), locked FOR UPDATE on PostgreSQL as
    core.ipam.allocate_ip locks it: racing allocators queue behind the seed."""
    wanted = {b.name: b for b in inv.bngs}
    have = set(s.scalars(select(IpPool.name).where(IpPool.name.in_(wanted))))
    for name in sorted(wanted.keys() - have):
        bng = wanted[name]
        s.add(IpPool(name=name, network=bng.ip_pool, gateway=bng.ip_gateway))
    s.flush()
    rows = s.execute(
        select(IpPool.name, IpPool.id)
        .where(IpPool.name.in_(wanted))
        .order_by(IpPool.id)
        .with_for_update()
    )
    return {name: pool_id for name, pool_id in rows}


def insert_rows(s: Session, tenant_id: str, services: list[Planned], pools: dict[str, int]) -> None:
    """Every row of ``services``: one bulk INSERT per table, flushed (constraints checked)."""
    now = utcnow()
    s.execute(insert(ServiceInstance), [_service(tenant_id, p, now) for p in services])
    s.execute(
        insert(IpAllocation),
        [{"pool_id": pools[p.bng], "address": p.ip, "service_id": p.id, "allocated_at": now}
         for p in services],
    )  # fmt: skip
    s.execute(
        insert(VlanAllocation),
        [{"scope": p.bng, "vlan": p.vlan, "service_id": p.id, "allocated_at": now}
         for p in services],
    )  # fmt: skip
    # As RadiusStore.activate writes them, in its order.
    s.execute(
        insert(RadCheck),
        [{"username": p.username, "attribute": PASSWORD_ATTR, "op": ":=", "value": p.password}
         for p in services],
    )  # fmt: skip
    replies: list[dict[str, Any]] = []
    for p in services:
        replies.append({"username": p.username, "attribute": IP_ATTR, "op": ":=", "value": p.ip})
        replies.append(
            {"username": p.username, "attribute": MASK_ATTR, "op": ":=", "value": p.netmask}
        )
    s.execute(insert(RadReply), replies)
    s.execute(
        insert(RadUserGroup),
        [{"username": p.username, "groupname": p.plan, "priority": 1} for p in services],
    )
    s.flush()


def _service(tenant_id: str, p: Planned, now: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "tenant_id": tenant_id,
        "customer_ref": p.customer_ref,
        "status": ServiceStatus.ACTIVE.value,
        # What a finished provisioning leaves (ServiceInstance.finish keeps it).
        "current_operation": Operation.PROVISIONING.value,
        "plan": p.plan,
        "olt": p.olt,
        "pon_port": p.pon_port,
        "ont_serial": p.serial,
        "ont_id": p.ont_id,
        # Provisioning's testing step stores the receive power it read off the OLT.
        "ont_rx_power_dbm": p.rx_power_dbm,
        "vlan": p.vlan,
        "ip_address": p.ip,
        "radius_username": p.username,
        "description": None,  # provisioning derives the devices' one without storing it
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }

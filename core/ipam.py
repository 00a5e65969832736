"""IP and VLAN allocation. Uniqueness is enforced by the database, not by this code.

Both functions work inside the caller's transaction: if it rolls back, the address or
VLAN is free again. Two allocators racing for the same value collide on a unique
constraint; the loser retries with the next free value (inside a SAVEPOINT, so the
caller's transaction survives). On PostgreSQL the pool row is also locked FOR UPDATE
so racing allocators queue instead of retrying.

``preview_ip`` / ``preview_vlan`` say what the allocators would hand out now (the same
choice, read-only): a dry run shows them.
"""

from __future__ import annotations

import ipaddress
import logging

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fiberflow.core.db.models import IpAllocation, IpPool, VlanAllocation

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 64


class PoolExhausted(Exception):
    """No free address or VLAN is left."""


def _pool(session: Session, name: str, network: str, gateway: str | None) -> IpPool:
    pool = session.scalars(select(IpPool).where(IpPool.name == name)).one_or_none()
    if pool is None:
        try:
            with session.begin_nested():
                pool = IpPool(name=name, network=network, gateway=gateway)
                session.add(pool)
        except IntegrityError:  # another allocator created it first
            pool = session.scalars(select(IpPool).where(IpPool.name == name)).one()
    return pool


def _lowest_free_ip(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[str], reserved: set[str]
) -> str | None:
    taken = used | reserved
    return next((str(h) for h in net.hosts() if str(h) not in taken), None)


def _lowest_free_vlan(first: int, last: int, used: set[int]) -> int | None:
    return next((v for v in range(first, last + 1) if v not in used), None)


def preview_ip(
    session: Session, *, pool: str, network: str, service_id: str | None, gateway: str | None = None
) -> str:
    """The address ``allocate_ip`` would give ``service_id`` now; writes nothing."""
    net = ipaddress.ip_network(network, strict=True)
    pool_id = session.scalars(select(IpPool.id).where(IpPool.name == pool)).one_or_none()
    used: set[str] = set()
    if pool_id is not None:
        q = select(IpAllocation.address).where(IpAllocation.pool_id == pool_id)
        if service_id and (existing := session.scalars(
                q.where(IpAllocation.service_id == service_id)).first()):  # fmt: skip
            return existing
        used = set(session.scalars(q))
    candidate = _lowest_free_ip(net, used, {gateway} if gateway else set())
    if candidate is None:
        raise PoolExhausted(f"IP pool {pool} ({network}) has no free address")
    return candidate


def preview_vlan(
    session: Session, *, scope: str, first: int, last: int, service_id: str | None
) -> int:
    """The VLAN ``allocate_vlan`` would give ``service_id`` now; writes nothing."""
    q = select(VlanAllocation.vlan).where(VlanAllocation.scope == scope)
    if service_id is not None and (existing := session.scalars(
            q.where(VlanAllocation.service_id == service_id)).first()) is not None:  # fmt: skip
        return existing
    candidate = _lowest_free_vlan(first, last, set(session.scalars(q)))
    if candidate is None:
        raise PoolExhausted(f"VLAN range {first}-{last} on {scope} has no free VLAN")
    return candidate


def allocate_ip(
    session: Session, *, pool: str, network: str, service_id: str, gateway: str | None = None
) -> str:
    """The service's address in ``pool`` (idempotent), allocating the lowest free one."""
    net = ipaddress.ip_network(network, strict=True)
    pool_row = _pool(session, pool, str(net), gateway)
    existing = session.scalars(
        select(IpAllocation.address).where(
            IpAllocation.pool_id == pool_row.id, IpAllocation.service_id == service_id
        )
    ).first()
    if existing:
        return existing
    reserved = {gateway} if gateway else set()
    for _ in range(MAX_ATTEMPTS):
        # Serialises allocators on PostgreSQL; a no-op on SQLite (BEGIN IMMEDIATE already did).
        session.execute(select(IpPool.id).where(IpPool.id == pool_row.id).with_for_update())
        used = set(
            session.scalars(select(IpAllocation.address).where(IpAllocation.pool_id == pool_row.id))
        )
        candidate = _lowest_free_ip(net, used, reserved)
        if candidate is None:
            raise PoolExhausted(f"IP pool {pool} ({network}) has no free address")
        try:
            with session.begin_nested():
                session.add(
                    IpAllocation(pool_id=pool_row.id, address=candidate, service_id=service_id)
                )
            return candidate
        except IntegrityError:
            log.debug("ip %s taken concurrently, retrying", candidate, extra={"pool": pool})
    raise PoolExhausted(f"IP pool {pool}: gave up after {MAX_ATTEMPTS} collisions")


def held(session: Session, *, service_id: str) -> tuple[list[str], list[int]]:
    """The addresses and VLANs the service holds (what the release functions free)."""
    ips = session.scalars(
        select(IpAllocation.address)
        .where(IpAllocation.service_id == service_id)
        .order_by(IpAllocation.address)
    )
    vlans = session.scalars(
        select(VlanAllocation.vlan)
        .where(VlanAllocation.service_id == service_id)
        .order_by(VlanAllocation.vlan)
    )
    return list(ips), list(vlans)


def release_ip(session: Session, *, service_id: str) -> int:
    """Free every address of the service. Returns how many were freed."""
    result = session.execute(delete(IpAllocation).where(IpAllocation.service_id == service_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def allocate_vlan(session: Session, *, scope: str, first: int, last: int, service_id: str) -> int:
    """The service's VLAN in ``scope`` (idempotent), allocating the lowest free one."""
    if not 1 <= first <= last <= 4094:
        raise ValueError(f"VLAN range {first}-{last} is outside 1-4094")
    existing = session.scalars(
        select(VlanAllocation.vlan).where(
            VlanAllocation.scope == scope, VlanAllocation.service_id == service_id
        )
    ).first()
    if existing is not None:
        return existing
    for _ in range(MAX_ATTEMPTS):
        used = set(
            session.scalars(select(VlanAllocation.vlan).where(VlanAllocation.scope == scope))
        )
        candidate = _lowest_free_vlan(first, last, used)
        if candidate is None:
            raise PoolExhausted(f"VLAN range {first}-{last} on {scope} has no free VLAN")
        try:
            with session.begin_nested():
                session.add(VlanAllocation(scope=scope, vlan=candidate, service_id=service_id))
            return candidate
        except IntegrityError:
            log.debug("vlan %s taken concurrently, retrying", candidate, extra={"scope": scope})
    raise PoolExhausted(f"VLAN scope {scope}: gave up after {MAX_ATTEMPTS} collisions")


def release_vlan(session: Session, *, service_id: str) -> int:
    result = session.execute(delete(VlanAllocation).where(VlanAllocation.service_id == service_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import IpAllocation, VlanAllocation
from fiberflow.core.ipam import PoolExhausted, allocate_ip, allocate_vlan, release_ip, release_vlan

POOL = dict(pool="bng-1", network="100.64.0.0/24", gateway="100.64.0.1")


def test_allocates_lowest_free_skipping_gateway(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        a = allocate_ip(s, service_id="svc-a", **POOL)
        b = allocate_ip(s, service_id="svc-b", **POOL)
    assert (a, b) == ("100.64.0.2", "100.64.0.3")


def test_allocation_is_idempotent_per_service(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        first = allocate_ip(s, service_id="svc-a", **POOL)
    with Session(engine) as s, s.begin():
        again = allocate_ip(s, service_id="svc-a", **POOL)
        assert s.scalar(select(func.count()).select_from(IpAllocation)) == 1
    assert first == again


def test_rolled_back_allocation_is_free_again(engine: Engine) -> None:
    with Session(engine) as s:
        s.begin()
        taken = allocate_ip(s, service_id="svc-a", **POOL)
        s.rollback()
    with Session(engine) as s, s.begin():
        assert allocate_ip(s, service_id="svc-b", **POOL) == taken


def test_release_frees_address_and_vlan(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        ip = allocate_ip(s, service_id="svc-a", **POOL)
        vlan = allocate_vlan(s, scope="bng-1", first=100, last=110, service_id="svc-a")
    with Session(engine) as s, s.begin():
        assert release_ip(s, service_id="svc-a") == 1
        assert release_vlan(s, service_id="svc-a") == 1
    with Session(engine) as s, s.begin():
        assert allocate_ip(s, service_id="svc-b", **POOL) == ip
        assert allocate_vlan(s, scope="bng-1", first=100, last=110, service_id="svc-b") == vlan


def test_exhausted_pool_raises(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        # /30 has two hosts, one of which is the gateway.
        allocate_ip(s, pool="tiny", network="10.0.0.0/30", gateway="10.0.0.1", service_id="a")
        with pytest.raises(PoolExhausted, match="tiny"):
            allocate_ip(s, pool="tiny", network="10.0.0.0/30", gateway="10.0.0.1", service_id="b")
        allocate_vlan(s, scope="x", first=5, last=5, service_id="a")
        with pytest.raises(PoolExhausted, match="VLAN"):
            allocate_vlan(s, scope="x", first=5, last=5, service_id="b")


def test_vlan_range_is_validated(engine: Engine) -> None:
    with Session(engine) as s, pytest.raises(ValueError, match="1-4094"):
        allocate_vlan(s, scope="x", first=0, last=5000, service_id="a")


def test_vlans_are_scoped_per_device(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        assert allocate_vlan(s, scope="bng-1", first=100, last=200, service_id="a") == 100
        assert allocate_vlan(s, scope="bng-2", first=100, last=200, service_id="b") == 100


def _concurrent(url: str, n: int, fn) -> list:  # type: ignore[no-untyped-def]
    eng = make_engine(url, pool_size=n, max_overflow=0) if "postgres" in url else make_engine(url)

    def one(i: int):  # type: ignore[no-untyped-def]
        with Session(eng) as s, s.begin():
            return fn(s, i)

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(one, range(n)))
    finally:
        eng.dispose()


def test_fifty_concurrent_allocations_are_distinct(database_url: str, engine: Engine) -> None:
    addresses = _concurrent(
        database_url, 50, lambda s, i: allocate_ip(s, service_id=f"svc-{i}", **POOL)
    )
    assert len(set(addresses)) == 50
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network(POOL["network"]) for a in addresses)
    vlans = _concurrent(
        database_url,
        50,
        lambda s, i: allocate_vlan(s, scope="bng-1", first=100, last=999, service_id=f"svc-{i}"),
    )
    assert len(set(vlans)) == 50
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(IpAllocation)) == 50
        assert s.scalar(select(func.count()).select_from(VlanAllocation)) == 50

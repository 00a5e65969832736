"""IPAM's preview: what the allocators would hand out now, without writing a row."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import IpAllocation, VlanAllocation
from fiberflow.core.ipam import allocate_ip, allocate_vlan, held, preview_ip, preview_vlan

NET, GW = "100.64.0.0/29", "100.64.0.1"


def _count(engine: Engine) -> int:
    with Session(engine) as s:
        return sum(s.scalar(select(func.count()).select_from(m)) or 0
                   for m in (IpAllocation, VlanAllocation))  # fmt: skip


def test_preview_is_the_next_allocation_and_writes_nothing(engine: Engine) -> None:
    with Session(engine) as s:  # no pool row yet
        assert preview_ip(s, pool="bng-1", network=NET, gateway=GW, service_id=None) == "100.64.0.2"
        assert preview_vlan(s, scope="bng-1", first=100, last=102, service_id=None) == 100
    assert _count(engine) == 0
    with Session(engine) as s, s.begin():
        allocate_ip(s, pool="bng-1", network=NET, gateway=GW, service_id="a")
        allocate_vlan(s, scope="bng-1", first=100, last=102, service_id="a")
    with Session(engine) as s:
        ip = preview_ip(s, pool="bng-1", network=NET, gateway=GW, service_id=None)
        vlan = preview_vlan(s, scope="bng-1", first=100, last=102, service_id=None)
        # A service's own allocation is what it would get again (the allocators are idempotent).
        assert preview_ip(s, pool="bng-1", network=NET, gateway=GW, service_id="a") == "100.64.0.2"
        assert preview_vlan(s, scope="bng-1", first=100, last=102, service_id="a") == 100
        assert held(s, service_id="a") == (["100.64.0.2"], [100])
    assert _count(engine) == 2
    with Session(engine) as s, s.begin():
        assert allocate_ip(s, pool="bng-1", network=NET, gateway=GW, service_id="b") == ip
        assert allocate_vlan(s, scope="bng-1", first=100, last=102, service_id="b") == vlan

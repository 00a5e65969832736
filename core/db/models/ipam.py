"""IP pools, IP allocations and VLAN allocations. Uniqueness lives in the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fiberflow.core.db.models.base import Base, utcnow


class IpPool(Base):
    __tablename__ = "ip_pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    network: Mapped[str] = mapped_column(String(49))  # CIDR, e.g. 100.64.0.0/22
    gateway: Mapped[str | None] = mapped_column(String(45))


class IpAllocation(Base):
    __tablename__ = "ip_allocations"
    __table_args__ = (
        UniqueConstraint("pool_id", "address", name="uq_ip_allocations_pool_address"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("ip_pools.id"), index=True)
    address: Mapped[str] = mapped_column(String(45))
    service_id: Mapped[str] = mapped_column(String(36), index=True)
    allocated_at: Mapped[datetime] = mapped_column(default=utcnow)


class VlanAllocation(Base):
    __tablename__ = "vlan_allocations"
    __table_args__ = (UniqueConstraint("scope", "vlan", name="uq_vlan_allocations_scope_vlan"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The device whose VLAN space this is (the BNG: its sub-interfaces must not collide).
    scope: Mapped[str] = mapped_column(String(64))
    vlan: Mapped[int] = mapped_column(Integer)
    service_id: Mapped[str] = mapped_column(String(36), index=True)
    allocated_at: Mapped[datetime] = mapped_column(default=utcnow)

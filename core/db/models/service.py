"""Service instances; the status machine they follow is the catalogue's."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

# The status vocabulary is the catalogue's, re-exported for code that reads it with the models.
from fiberflow.core.catalogue import OPERATIONS, TERMINATES_WITHOUT_DEVICES
from fiberflow.core.catalogue import TRANSITIONAL as TRANSITIONAL
from fiberflow.core.catalogue import Operation as Operation
from fiberflow.core.catalogue import ServiceStatus as ServiceStatus
from fiberflow.core.db.models.base import Base, utcnow

# Statuses in which an ONT serial is held (DESIGN.md: at most one such service per serial).
_SERIAL_HOLDERS = "status NOT IN ('terminated', 'failed')"


class InvalidTransition(Exception):
    def __init__(self, status: str, operation: str) -> None:
        super().__init__(f"a service in status {status!r} cannot start {operation}")
        self.status = status
        self.operation = operation


class ServiceInstance(Base):
    __tablename__ = "service_instances"
    __table_args__ = (
        Index(
            "uq_service_instances_live_ont_serial",
            "ont_serial",
            unique=True,
            sqlite_where=text(_SERIAL_HOLDERS),
            postgresql_where=text(_SERIAL_HOLDERS),
        ),
        Index("ix_service_instances_tenant_created", "tenant_id", "created_at"),
        # Idempotency-Key of the create request: a repeated create returns the same service.
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_service_instances_idem"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_ref: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default=ServiceStatus.PENDING.value)
    current_operation: Mapped[str | None] = mapped_column(String(20))
    # The status the current (or last) operation started from: where an operation that
    # ends in "the status it started from" (an ONT replacement) ends, or returns to when
    # it fails and compensates.
    status_before: Mapped[str | None] = mapped_column(String(20))
    plan: Mapped[str] = mapped_column(String(32))
    olt: Mapped[str] = mapped_column(String(64))
    pon_port: Mapped[str] = mapped_column(String(16))
    # None only for a zero-touch order that binds whichever ONT appears alone on its port.
    ont_serial: Mapped[str | None] = mapped_column(String(16))
    ont_id: Mapped[int | None] = mapped_column(Integer)
    vlan: Mapped[int | None] = mapped_column(Integer)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    radius_username: Mapped[str | None] = mapped_column(String(64))
    # Last measured receive power of the ONT (optical acceptance), dBm.
    ont_rx_power_dbm: Mapped[float | None] = mapped_column(Float)
    # "immediate" or "on_discovery" (zero-touch: provisioning starts when the ONT appears).
    activation: Mapped[str] = mapped_column(
        String(16), default="immediate", server_default="immediate"
    )
    description: Mapped[str | None] = mapped_column(String(64))
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    # "host:pid" of the process running the current operation (the reconciler's
    # fastest way to tell a dead run from a slow one).
    run_process: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    # Optimistic locking: an UPDATE with a stale version raises StaleDataError.
    __mapper_args__ = {"version_id_col": version}

    def __init__(self, **kwargs: object) -> None:
        # Column defaults apply at INSERT; the status machine needs the status before.
        kwargs.setdefault("status", ServiceStatus.PENDING.value)
        super().__init__(**kwargs)

    def begin(self, operation: Operation) -> None:
        """Move into ``operation``'s running status, or raise InvalidTransition."""
        entry = OPERATIONS[operation]
        if self.status not in entry.starts_from:
            raise InvalidTransition(self.status, operation.value)
        self.status_before = self.status
        self.status = entry.running.value
        self.current_operation = operation.value
        self.error = None

    def await_ont(self) -> None:
        """Zero-touch activation: pending -> awaiting_ont (provisioning starts once the
        discovery pass binds its ONT)."""
        if self.status != ServiceStatus.PENDING:
            raise InvalidTransition(self.status, "wait for its ONT")
        self.status = ServiceStatus.AWAITING_ONT.value

    def withdraw(self) -> None:
        """Terminate an order that never reached a device (awaiting_ont -> terminated)."""
        if ServiceStatus(self.status) not in TERMINATES_WITHOUT_DEVICES:
            raise InvalidTransition(self.status, "terminate without a device")
        self.status = ServiceStatus.TERMINATED.value
        self.current_operation = Operation.TERMINATION.value
        self.error = None

    def finish(self, operation: Operation) -> None:
        entry = OPERATIONS[operation]
        if self.status != entry.running.value:
            raise InvalidTransition(self.status, f"complete {operation.value}")
        if entry.ends_in is None and self.status_before is None:
            raise InvalidTransition(self.status, f"complete {operation.value} (no status before)")
        self.status = entry.end_status(self.status_before or entry.running).value

    def restore(self, error: str) -> None:
        """A failed operation whose compensation put everything back: the service returns
        to the status it started from; ``error`` says what failed (the next operation
        clears it)."""
        if ServiceStatus(self.status) not in TRANSITIONAL or self.status_before is None:
            raise InvalidTransition(self.status, "return to the status before")
        self.status = self.status_before
        self.error = error

    def fail(self, error: str) -> None:
        # failed is reachable from every transitional state (DESIGN.md)
        if ServiceStatus(self.status) not in TRANSITIONAL:
            raise InvalidTransition(self.status, "fail")
        self.status = ServiceStatus.FAILED.value
        self.error = error

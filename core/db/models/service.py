"""Service instances and their status machine (DESIGN.md, Lifecycle operations)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from fiberflow.core.db.models.base import Base, utcnow


class ServiceStatus(enum.StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"
    RESUMING = "resuming"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    REPROVISIONING = "reprovisioning"
    FAILED = "failed"


class Operation(enum.StrEnum):
    PROVISIONING = "provisioning"
    SUSPENSION = "suspension"
    RESUMPTION = "resumption"
    TERMINATION = "termination"
    REPROVISIONING = "reprovisioning"


TRANSITIONAL = frozenset(
    {
        ServiceStatus.PENDING,
        ServiceStatus.PROVISIONING,
        ServiceStatus.SUSPENDING,
        ServiceStatus.RESUMING,
        ServiceStatus.TERMINATING,
        ServiceStatus.REPROVISIONING,
    }
)

# operation -> (statuses it may start from, status while running, status when done)
OPERATION_TRANSITIONS: dict[
    Operation, tuple[frozenset[ServiceStatus], ServiceStatus, ServiceStatus]
] = {
    Operation.PROVISIONING: (
        frozenset({ServiceStatus.PENDING}),
        ServiceStatus.PROVISIONING,
        ServiceStatus.ACTIVE,
    ),
    Operation.SUSPENSION: (
        frozenset({ServiceStatus.ACTIVE}),
        ServiceStatus.SUSPENDING,
        ServiceStatus.SUSPENDED,
    ),
    Operation.RESUMPTION: (
        frozenset({ServiceStatus.SUSPENDED}),
        ServiceStatus.RESUMING,
        ServiceStatus.ACTIVE,
    ),
    # Also from failed: a service whose operation failed may still hold an ONT, BNG config,
    # RADIUS rows, an IP and a VLAN; terminating it (idempotent teardown) releases them.
    Operation.TERMINATION: (
        frozenset({ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED, ServiceStatus.FAILED}),
        ServiceStatus.TERMINATING,
        ServiceStatus.TERMINATED,
    ),
    Operation.REPROVISIONING: (
        frozenset({ServiceStatus.ACTIVE}),
        ServiceStatus.REPROVISIONING,
        ServiceStatus.ACTIVE,
    ),
}

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
    plan: Mapped[str] = mapped_column(String(32))
    olt: Mapped[str] = mapped_column(String(64))
    pon_port: Mapped[str] = mapped_column(String(16))
    ont_serial: Mapped[str] = mapped_column(String(16))
    ont_id: Mapped[int | None] = mapped_column(Integer)
    vlan: Mapped[int | None] = mapped_column(Integer)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    radius_username: Mapped[str | None] = mapped_column(String(64))
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
        allowed_from, running, _ = OPERATION_TRANSITIONS[operation]
        if self.status not in allowed_from:
            raise InvalidTransition(self.status, operation.value)
        self.status = running.value
        self.current_operation = operation.value
        self.error = None

    def finish(self, operation: Operation) -> None:
        _, running, done = OPERATION_TRANSITIONS[operation]
        if self.status != running.value:
            raise InvalidTransition(self.status, f"complete {operation.value}")
        self.status = done.value

    def fail(self, error: str) -> None:
        # failed is reachable from every transitional state (DESIGN.md)
        if ServiceStatus(self.status) not in TRANSITIONAL:
            raise InvalidTransition(self.status, "fail")
        self.status = ServiceStatus.FAILED.value
        self.error = error

"""The lifecycle event log (source of truth and outbox) and the device-command audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from fiberflow.core.db.models.base import Base, utcnow

#: The events that end an operation (``service.<operation>.completed`` / ``.failed``).
#: Queries that look for them repeat this clause as it is, so PostgreSQL can prove it
#: and use the partial index below.
TERMINAL_EVENT_SQL = "(event_type LIKE '%.completed' OR event_type LIKE '%.failed')"


class EventLog(Base):
    """Every lifecycle event, in publish order. ``id`` is the SSE ``id:``.

    ``published`` is the outbox flag: False until the event is in Redis.
    """

    __tablename__ = "event_log"
    __table_args__ = (
        Index("ix_event_log_service_id_id", "service_id", "id"),
        Index("ix_event_log_unpublished", "published", "id"),
        Index("ix_event_log_tenant_id", "tenant_id", "id"),  # statistics per tenant
        # Has this operation (run) its terminal event yet? Asked by every terminal
        # publish and by the reconciler for every ended operation: one row per run.
        Index(
            "ix_event_log_terminal",
            "operation_id",
            sqlite_where=text(TERMINAL_EVENT_SQL),
            postgresql_where=text(TERMINAL_EVENT_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(36))
    tenant_id: Mapped[str] = mapped_column(String(36))
    operation: Mapped[str] = mapped_column(String(20))
    operation_id: Mapped[str | None] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published: Mapped[bool] = mapped_column(Boolean, default=False)


class DeviceCommandAudit(Base):
    """One row per command sent to a device (secrets redacted before insert)."""

    __tablename__ = "device_command_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str | None] = mapped_column(String(36), index=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    step: Mapped[str | None] = mapped_column(String(32))
    device: Mapped[str] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text, default="")
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    #: A configuration line a change sent (what its dry run lists), not a read, a mode
    #: change or a RADIUS/packet record.
    config: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

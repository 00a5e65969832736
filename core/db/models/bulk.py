"""Bulk runs: one operation over many services, started by one parent flow run.

``bulk_runs`` holds the batch (who asked, who approved, its status); ``bulk_items`` one
row per service, whose ``state`` the parent run moves ``pending`` -> ``running`` ->
``completed`` / ``failed``, or ``pending`` -> ``skipped`` (a status that forbids the
operation, a cancel, a rejection). Each service ends in exactly one terminal state: an
item leaves ``pending`` only through a conditional UPDATE, so the parent run, a
restarted parent and a cancel never both claim it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fiberflow.core.db.models.base import Base, utcnow


class BulkStatus(enum.StrEnum):
    SCHEDULED = "scheduled"  # created, or held by a blackout window
    AWAITING_APPROVAL = "awaiting_approval"  # four-eyes: a paused parent run
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    FAILED = "failed"


BULK_OPEN = frozenset({BulkStatus.SCHEDULED, BulkStatus.AWAITING_APPROVAL, BulkStatus.RUNNING})


class ItemState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


ITEM_STATES: tuple[str, ...] = tuple(s.value for s in ItemState)
ITEM_TERMINAL = frozenset({ItemState.COMPLETED, ItemState.FAILED, ItemState.SKIPPED})


class BulkRun(Base):
    __tablename__ = "bulk_runs"
    __table_args__ = (Index("ix_bulk_runs_status", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    # The API's name: suspend, resume, terminate, change-plan, reprovision.
    operation: Mapped[str] = mapped_column(String(20))
    # The operation's own fields, e.g. {"plan": "500M"} or {"hard": true}.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=BulkStatus.SCHEDULED.value)
    requested_by: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column()
    rejected_by: Mapped[str | None] = mapped_column(String(64))
    # Set by POST /cancel: the parent run ends the batch ``cancelled`` once the running
    # services finished (the status says ``running`` until then).
    cancel_requested_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # The current parent run (a restarted parent replaces it) and its "host:pid": the
    # reconciler's fastest way to tell a dead parent from a slow one.
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    run_process: Mapped[str | None] = mapped_column(String(128))


class BulkItem(Base):
    __tablename__ = "bulk_items"
    __table_args__ = (Index("ix_bulk_items_bulk_state", "bulk_id", "state"),)

    bulk_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("bulk_runs.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Position in the request: items start in this order.
    position: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(12), default=ItemState.PENDING.value)
    reason: Mapped[str | None] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

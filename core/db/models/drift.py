"""Drift checks: one row per run of the fleet drift check, its report once it ends."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fiberflow.core.db.models.base import Base, utcnow

DRIFT_RUNNING = "running"
DRIFT_COMPLETED = "completed"
DRIFT_FAILED = "failed"


class DriftCheck(Base):
    """A drift check: the whole fleet (``service_id`` None) or one service's devices.

    ``report`` holds what GET /api/v1/drift-checks/{id} shows (devices read, services
    checked, drifted with their diff and outcome, orphans, skipped, unreadable devices);
    it is written once, when the check ends."""

    __tablename__ = "drift_checks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    status: Mapped[str] = mapped_column(String(16), default=DRIFT_RUNNING)
    remove_orphans: Mapped[bool] = mapped_column(Boolean, default=False)
    # One service's check (GET /services/{id}/drift): no repair, no orphans.
    service_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # Who asked: the operator's tenant and sub; None for the nightly schedule.
    tenant_id: Mapped[str | None] = mapped_column(String(36))
    requested_by: Mapped[str | None] = mapped_column(String(64))
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)

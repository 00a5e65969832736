"""A bulk run's parent, its bookkeeping: the bulk row, its items, its events.

Every change goes through core/bulk.py's conditional UPDATEs. Events: ``bulk.progress``
with the items that changed since the previous event, coalesced to at most one per
``PROGRESS_EVERY`` seconds for big batches, always one on a status change, and one
``bulk.completed`` at the end (events/bulk.py stores at most one).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from fiberflow.core import bulk as core_bulk
from fiberflow.core.bulk import Change
from fiberflow.core.db.models import BulkItem, BulkRun, Operation, utcnow
from fiberflow.core.db.models.bulk import BULK_OPEN, BulkStatus, ItemState
from fiberflow.events.bulk import publish_bulk_event
from fiberflow.events.bulk_schema import BULK_COMPLETED, BULK_PROGRESS
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)
PROGRESS_EVERY = 0.25  # seconds between coalesced bulk.progress events
ROW_WAIT_SECONDS = 60.0  # the API commits the row just after it starts the run


@dataclass(frozen=True, slots=True)
class Bulk:
    id: str
    tenant_id: str
    operation: str  # the API's name (suspend, change-plan, ...)
    params: dict[str, Any]
    requested_by: str
    total: int

    @property
    def op(self) -> Operation:
        return core_bulk.OPERATIONS[self.operation]

    def log_extra(self, **more: Any) -> dict[str, Any]:
        return {"bulk_id": self.id, "tenant_id": self.tenant_id,
                "operation": self.operation, **more}  # fmt: skip


def attach(bulk_id: str, flow_run_id: str) -> Bulk | None:
    """The bulk this parent run works on, with the run recorded as its current parent;
    None when it has ended already (or its row never appeared: the request that
    started this run rolled back)."""
    deadline = time.monotonic() + ROW_WAIT_SECONDS
    while True:
        with runtime().sessions() as s, s.begin():
            row = s.get(BulkRun, bulk_id)
            if row is not None:
                if BulkStatus(row.status) not in BULK_OPEN:
                    return None
                row.flow_run_id = flow_run_id
                row.run_process = f"{socket.gethostname()}:{os.getpid()}"
                total = s.scalar(
                    select(func.count()).select_from(BulkItem).where(BulkItem.bulk_id == bulk_id)
                )
                return Bulk(row.id, row.tenant_id, row.operation, dict(row.params or {}),
                            row.requested_by, int(total or 0))  # fmt: skip
        if time.monotonic() > deadline:
            log.warning("bulk run row never appeared", extra={"bulk_id": bulk_id})
            return None
        time.sleep(0.5)


def load(bulk_id: str) -> BulkRun:
    with runtime().sessions() as s:
        row = s.get(BulkRun, bulk_id)
        assert row is not None
        s.expunge(row)
        return row


def last_start(bulk_id: str) -> datetime | None:
    with runtime().sessions() as s:
        at: datetime | None = s.scalar(
            select(func.max(BulkItem.started_at)).where(BulkItem.bulk_id == bulk_id)
        )
        return at


@dataclass
class Reporter:
    """Collects item changes and publishes them as ``bulk.progress`` events."""

    bulk: Bulk
    status: str = BulkStatus.SCHEDULED.value
    pending: list[Change] = field(default_factory=list)
    _last: float = 0.0

    def add(self, changes: list[Change]) -> None:
        self.pending.extend(changes)
        self.flush()

    def flush(self, *, force: bool = False) -> None:
        if not force and (not self.pending or time.monotonic() - self._last < PROGRESS_EVERY):
            return
        items, self.pending = self.pending, []
        self._last = time.monotonic()
        with runtime().sessions() as s:
            counts = core_bulk.counts(s, self.bulk.id)
        data = {"operation": self.bulk.operation, "status": self.status, "counts": counts,
                "total": sum(counts.values()), "items": [c.as_dict() for c in items]}  # fmt: skip
        try:
            publish_bulk_event(runtime().publisher, self.bulk.id, self.bulk.tenant_id,
                               BULK_PROGRESS, data)  # fmt: skip
        except Exception:  # an event never stops the batch; the rows are the truth
            log.exception("could not publish bulk progress", extra=self.bulk.log_extra())

    def to_status(self, status: BulkStatus, *, only_from: frozenset[BulkStatus]) -> bool:
        """Move the bulk to ``status`` (if it is in ``only_from``) and say so at once."""
        with runtime().sessions() as s, s.begin():
            moved = core_bulk.set_status(s, self.bulk.id, status, only_from=only_from)
        if moved or self.status != status.value:
            self.status = status.value
            log.info("bulk run %s", status.value, extra=self.bulk.log_extra(status=status.value))
            self.flush(force=True)
        return moved


def skip_pending(reporter: Reporter, reason: str) -> None:
    with runtime().sessions() as s, s.begin():
        changes = core_bulk.skip_pending(s, reporter.bulk.id, reason)
    reporter.add(changes)


def finish(reporter: Reporter, status: BulkStatus, error: str | None = None) -> None:
    """End the bulk in ``status`` (once) and publish ``bulk.completed``."""
    bulk = reporter.bulk
    with runtime().sessions() as s, s.begin():
        core_bulk.set_status(s, bulk.id, status, only_from=BULK_OPEN)
        if error:
            row = s.get(BulkRun, bulk.id)
            if row is not None:
                row.error = error[:2000]
    reporter.status = status.value
    reporter.flush(force=True)
    with runtime().sessions() as s:
        row = s.get(BulkRun, bulk.id)
        counts = core_bulk.counts(s, bulk.id)
        ended = row.status if row is not None else status.value
        at = row.finished_at if row is not None and row.finished_at else utcnow()
    data = {"status": ended, "counts": counts, "total": sum(counts.values()), "completed_at": at}
    try:
        publish_bulk_event(runtime().publisher, bulk.id, bulk.tenant_id, BULK_COMPLETED, data)
    except Exception:
        log.exception("could not publish bulk.completed", extra=bulk.log_extra())
    log.info("bulk run ended", extra=bulk.log_extra(status=ended, **counts))


def item_rows(bulk_id: str, state: ItemState) -> list[tuple[str, str | None]]:
    """(service_id, flow_run_id) of the items in ``state``, in request order."""
    with runtime().sessions() as s:
        rows = s.execute(
            select(BulkItem.service_id, BulkItem.flow_run_id)
            .where(BulkItem.bulk_id == bulk_id, BulkItem.state == state.value)
            .order_by(BulkItem.position)
        ).tuples()
        return list(rows)


def cancel_requested(bulk_id: str) -> bool:
    with runtime().sessions() as s:
        return (
            s.scalar(select(BulkRun.cancel_requested_at).where(BulkRun.id == bulk_id)) is not None
        )

"""Bulk run bookkeeping shared by the API, the parent flow's tasks and the reconciler.

Every item state change is a conditional UPDATE (``WHERE state = <expected>``): the
parent run, a restarted parent and a cancel request race on the database, and each item
leaves ``pending`` exactly once and reaches exactly one terminal state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fiberflow.core import catalogue
from fiberflow.core.db.models import BulkItem, BulkRun, Operation, ServiceStatus, utcnow
from fiberflow.core.db.models.bulk import ITEM_STATES, BulkStatus, ItemState

# The API's operation names (POST /api/v1/bulk/{operation}).
OPERATIONS: Mapping[str, Operation] = MappingProxyType(
    {
        "suspend": Operation.SUSPENSION,
        "resume": Operation.RESUMPTION,
        "terminate": Operation.TERMINATION,
        "change-plan": Operation.PLAN_CHANGE,
        "reprovision": Operation.REPROVISIONING,
    }
)
# Four-eyes: these need another operator's approval whatever the count.
ALWAYS_APPROVED = frozenset({"terminate"})
CANCELLED = "cancelled"
REJECTED = "rejected"


def needs_approval(operation: str, total: int, threshold: int) -> bool:
    return operation in ALWAYS_APPROVED or total > threshold


def refusal(
    operation: Operation,
    params: Mapping[str, Any],
    status: str | None,
    plan: str | None,
    gem_ports: Mapping[str, int],
) -> str | None:
    """Why a service (its ``status`` and ``plan``; None: gone) is skipped by a bulk run of
    ``operation``, None when it may start: the checks a single request makes before its
    transition. ``gem_ports``: each plan's GEM port. The parent run and a bulk dry run
    both ask this, so a dry run skips exactly what the run would."""
    entry = catalogue.of(operation)
    if status is None:
        return "the service no longer exists"
    if ServiceStatus(status) not in entry.starts_from:
        return f"status {status} forbids {entry.operation.value}"
    wanted = params.get("plan")
    if wanted is not None:
        if plan == wanted:
            return f"the service is already on plan {wanted!r}"
        old, new = gem_ports.get(plan or ""), gem_ports.get(str(wanted))
        if old is not None and new is not None and new != old:
            return (f"plan {str(wanted)!r} uses GEM port {new}, the service's plan "
                    f"{plan!r} GEM port {old}")  # fmt: skip
    return None


@dataclass(frozen=True, slots=True)
class Change:
    """One item whose state changed (a ``bulk.progress`` event's ``items`` entry)."""

    service_id: str
    state: str
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"service_id": self.service_id, "state": self.state, "reason": self.reason}


def counts(session: Session, bulk_id: str) -> dict[str, int]:
    found = dict(
        session.execute(
            select(BulkItem.state, func.count())
            .where(BulkItem.bulk_id == bulk_id)
            .group_by(BulkItem.state)
        )
        .tuples()
        .all()
    )
    return {state: int(found.get(state, 0)) for state in ITEM_STATES}


def view(session: Session, bulk: BulkRun) -> dict[str, Any]:
    """What GET /api/v1/bulk/{id} answers."""
    c = counts(session, bulk.id)
    return {
        "id": bulk.id,
        "operation": bulk.operation,
        "status": bulk.status,
        "counts": c,
        "total": sum(c.values()),
        "requested_by": bulk.requested_by,
        "approved_by": bulk.approved_by,
        "rejected_by": bulk.rejected_by,
        "params": bulk.params,
        "created_at": bulk.created_at,
        "started_at": bulk.started_at,
        "finished_at": bulk.finished_at,
        "flow_run_id": bulk.flow_run_id,
        "error": bulk.error,
    }


def move(
    session: Session,
    bulk_id: str,
    service_id: str,
    *,
    expected: ItemState,
    to: ItemState,
    **fields: Any,
) -> bool:
    """``expected`` -> ``to`` for one item, if it still is ``expected``. Not committed."""
    values: dict[str, Any] = {"state": to.value, **fields}
    if to in (ItemState.COMPLETED, ItemState.FAILED, ItemState.SKIPPED):
        values.setdefault("finished_at", utcnow())
    result = session.execute(
        update(BulkItem)
        .where(BulkItem.bulk_id == bulk_id, BulkItem.service_id == service_id)
        .where(BulkItem.state == expected.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def skip_pending(session: Session, bulk_id: str, reason: str) -> list[Change]:
    """Every item still ``pending`` becomes ``skipped`` with ``reason``. Not committed."""
    skipped = session.scalars(
        update(BulkItem)
        .where(BulkItem.bulk_id == bulk_id, BulkItem.state == ItemState.PENDING.value)
        .values(state=ItemState.SKIPPED.value, reason=reason, finished_at=utcnow())
        .returning(BulkItem.service_id)
        .execution_options(synchronize_session=False)
    ).all()
    return [Change(sid, ItemState.SKIPPED.value, reason) for sid in skipped]


def set_status(
    session: Session, bulk_id: str, status: BulkStatus, *, only_from: Iterable[BulkStatus]
) -> bool:
    """Move the bulk to ``status`` if it is in one of ``only_from``. Not committed."""
    values: dict[str, Any] = {"status": status.value}
    now: datetime = utcnow()
    if status is BulkStatus.RUNNING:
        values["started_at"] = func.coalesce(BulkRun.started_at, now)
    if status in (
        BulkStatus.COMPLETED,
        BulkStatus.CANCELLED,
        BulkStatus.REJECTED,
        BulkStatus.FAILED,
    ):
        values["finished_at"] = now
    result = session.execute(
        update(BulkRun)
        .where(BulkRun.id == bulk_id, BulkRun.status.in_([s.value for s in only_from]))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))

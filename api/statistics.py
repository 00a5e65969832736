"""Lifecycle statistics of one tenant, computed from the service table and event log."""

from __future__ import annotations

from datetime import datetime
from statistics import quantiles
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import TRANSITIONAL, EventLog, ServiceInstance


def _percentile(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(quantiles(values, n=100, method="inclusive")[pct - 1], 3)


def _first(outcome: str) -> Any:
    """The time of a run's first ``service.<operation>.<outcome>`` event (NULL if none)."""
    return func.min(case((EventLog.event_type.like(f"%.{outcome}"), EventLog.created_at)))


def _runs(
    session: Session, tenant_id: str
) -> list[tuple[str, datetime, datetime | None, datetime | None]]:
    """(operation, first event, first completed, first failed) per run, aggregated in SQL.

    One run = one operation_id (grouped per service too, should a row lack an id).
    """
    q = (
        select(EventLog.operation, func.min(EventLog.created_at),
               _first("completed"), _first("failed"))
        .where(EventLog.tenant_id == tenant_id)
        # Service operations only: a bulk run's events share the log (events/bulk.py).
        .where(EventLog.event_type.like("service.%"))
        .group_by(EventLog.service_id, EventLog.operation, EventLog.operation_id)
    )  # fmt: skip
    return [(op, start, done, failed) for op, start, done, failed in session.execute(q).all()]


def tenant_statistics(session: Session, tenant_id: str) -> dict[str, Any]:
    by_status = dict(
        session.execute(
            select(ServiceInstance.status, func.count())
            .where(ServiceInstance.tenant_id == tenant_id)
            .group_by(ServiceInstance.status)
        ).all()
    )
    in_flight = dict(
        session.execute(
            select(ServiceInstance.current_operation, func.count())
            .where(
                ServiceInstance.tenant_id == tenant_id,
                ServiceInstance.status.in_([s.value for s in TRANSITIONAL]),
                ServiceInstance.current_operation.is_not(None),
            )
            .group_by(ServiceInstance.current_operation)
        ).all()
    )
    per_op: dict[str, dict[str, Any]] = {}
    for operation, start, completed_at, failed_at in _runs(session, tenant_id):
        stats = per_op.setdefault(operation, {"completed": 0, "failed": 0, "durations": []})
        candidates = ((completed_at, "completed"), (failed_at, "failed"))
        ends = [(at, outcome) for at, outcome in candidates if at is not None]
        if not ends:
            continue  # still running
        end, outcome = min(ends, key=lambda e: e[0])
        stats[outcome] += 1
        stats["durations"].append((end - start).total_seconds())
    operations = {}
    for op, stats in per_op.items():
        done = stats["completed"] + stats["failed"]
        operations[op] = {
            "completed": stats["completed"],
            "failed": stats["failed"],
            "success_rate": round(stats["completed"] / done, 4) if done else None,
            "duration_p50_seconds": _percentile(stats["durations"], 50),
            "duration_p95_seconds": _percentile(stats["durations"], 95),
        }
    return {
        "services_by_status": by_status,
        "total_services": sum(by_status.values()),
        "in_flight": in_flight,
        "operations": operations,
    }

"""Lifecycle statistics of one tenant, computed from the service table and event log."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from statistics import quantiles
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import TRANSITIONAL, EventLog, ServiceInstance


def _percentile(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(quantiles(values, n=100, method="inclusive")[pct - 1], 3)


def tenant_statistics(session: Session, tenant_id: str) -> dict[str, Any]:
    by_status = dict(
        session.execute(
            select(ServiceInstance.status, func.count())
            .where(ServiceInstance.tenant_id == tenant_id)
            .group_by(ServiceInstance.status)
        ).all()
    )
    in_flight = {
        op: n
        for op, st, n in session.execute(
            select(ServiceInstance.current_operation, ServiceInstance.status, func.count())
            .where(ServiceInstance.tenant_id == tenant_id)
            .group_by(ServiceInstance.current_operation, ServiceInstance.status)
        ).all()
        if st in {s.value for s in TRANSITIONAL} and op
    }
    # One run = one operation_id: first event -> its terminal event.
    spans: dict[str, dict[str, Any]] = defaultdict(dict)
    rows = session.execute(
        select(
            EventLog.operation_id, EventLog.operation, EventLog.event_type, EventLog.created_at
        )  # fmt: skip
        .where(EventLog.tenant_id == tenant_id)
        .order_by(EventLog.id)
    ).all()
    for op_id, operation, event_type, at in rows:
        span = spans[op_id or ""]
        span.setdefault("operation", operation)
        span.setdefault("start", at)
        if event_type.endswith((".completed", ".failed")):
            span["end"], span["outcome"] = at, event_type.rsplit(".", 1)[1]
    per_op: dict[str, dict[str, Any]] = {}
    for span in spans.values():
        stats = per_op.setdefault(span["operation"], {"completed": 0, "failed": 0, "durations": []})
        if "outcome" in span:
            stats[span["outcome"]] += 1
            start: datetime = span["start"]
            stats["durations"].append((span["end"] - start).total_seconds())
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

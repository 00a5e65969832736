"""What one bulk reprovisioning run did per service, read back from the event log and
the device-command audit, and the run's figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fiberflow.core.db.engine import make_engine
from fiberflow.core.db.models import (
    DeviceCommandAudit,
    EventLog,
    ServiceInstance,
)


@dataclass
class Outcome:
    """One service in one run, from its events and the audit log."""

    service_id: str
    result: str  # in_sync | repaired | failed | not run
    started: float | None = None  # first reprovisioning event's timestamp
    ended: float | None = None  # completed_at / failed_at
    device_s: float = 0.0
    commands: int = 0
    flow_run_id: str | None = None
    error: str | None = None
    #: (status, event timestamp) of each progress event, in order
    steps: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class RunFigures:
    label: str
    latency: float
    services: int
    flow_run_id: str
    state: str
    triggered: float
    finished: float
    prefect_start: float | None
    prefect_end: float | None
    outcomes: list[Outcome]
    lab: dict[str, dict[str, int]]
    run_pid: int | None
    run_cpu_s: float | None
    run_rss_mb: float | None
    run_threads: int | None
    stack_cpu_s: dict[str, float]
    load: str
    bad_after: dict[str, list[str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        c = Counter(o.result for o in self.outcomes)
        return {k: c.get(k, 0) for k in ("in_sync", "repaired", "failed", "not run")}


def iso_ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def high_water(database_url: str) -> tuple[int, int]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            ev = s.scalar(select(func.max(EventLog.id))) or 0
            au = s.scalar(select(func.max(DeviceCommandAudit.id))) or 0
    finally:
        engine.dispose()
    return ev, au


def outcomes_since(
    database_url: str, marks: tuple[int, int], service_ids: list[str]
) -> tuple[list[Outcome], set[int]]:
    """Each service's reprovisioning events and audited commands after ``marks``, and
    the pids of the flow-run processes that ran them (each records host:pid on its row)."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            events = s.execute(
                select(EventLog.service_id, EventLog.event_type, EventLog.data)
                .where(EventLog.id > marks[0], EventLog.operation == "reprovisioning")
                .order_by(EventLog.id)
            ).all()
            audits = s.execute(
                select(DeviceCommandAudit.service_id, DeviceCommandAudit.step,
                       DeviceCommandAudit.duration_ms, DeviceCommandAudit.ok)
                .where(DeviceCommandAudit.id > marks[1])
            ).all()  # fmt: skip
            run_pids = dict(
                s.execute(
                    select(ServiceInstance.id, ServiceInstance.run_process).where(
                        ServiceInstance.id.in_(service_ids)
                    )
                ).all()
            )
    finally:
        engine.dispose()
    out = {sid: Outcome(sid, "not run") for sid in service_ids}
    repairing: set[str] = set()
    for sid, step, ms, _ok in audits:
        o = out.get(str(sid))
        if o is None:
            continue
        o.device_s += float(ms or 0) / 1000
        o.commands += 1
        if step == "repairing":
            repairing.add(o.service_id)
    for sid, kind, data in events:
        o = out.get(str(sid))
        if o is None:
            continue
        o.flow_run_id = data.get("flow_run_id") or o.flow_run_id
        if kind.endswith(".progress"):
            o.steps.append((str(data["status"]), iso_ts(data["timestamp"])))
            o.started = o.steps[0][1]
        elif kind.endswith(".completed"):
            o.ended, o.result = iso_ts(data["completed_at"]), "completed"
        elif kind.endswith(".failed"):
            o.ended, o.result, o.error = iso_ts(data["failed_at"]), "failed", data.get("error")
    for o in out.values():
        if o.result == "completed":
            o.result = "repaired" if o.service_id in repairing else "in_sync"
    result = list(out.values())
    result.sort(key=lambda o: o.ended or float("inf"))
    pids = {int(str(p).rsplit(":", 1)[-1]) for p in run_pids.values() if p}
    return result, pids

"""A drift check's row and report: started, finished (report, table artifact, metrics),
or failed. Short transactions, never held across device I/O."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from prefect import Flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun, State
from sqlalchemy import select

from fiberflow.core import metrics
from fiberflow.core.db.models import DriftCheck, utcnow
from fiberflow.core.db.models.drift import DRIFT_COMPLETED, DRIFT_FAILED, DRIFT_RUNNING
from fiberflow.tasks.fleet_compare import Comparison, Orphan
from fiberflow.tasks.runtime import runtime
from fiberflow.tasks.service import ServiceView

log = logging.getLogger(__name__)
# Rows of the Prefect UI table at most: a first run on a neglected fleet may find
# thousands of orphans; GET /api/v1/drift-checks/{id} has them all.
ARTIFACT_ROWS = 1000


@dataclass
class Outcome:
    """What happened after the comparison: per drifted service, and to the orphans."""

    repairs: dict[str, str] = field(default_factory=dict)  # service -> repaired|failed|...
    errors: dict[str, str] = field(default_factory=dict)  # service -> why its repair failed
    removed: list[Orphan] = field(default_factory=list)


@task(name="start-drift-check", cache_policy=NO_CACHE)
def start(check_id: str | None, *, remove_orphans: bool, service_id: str | None,
          flow_run_id: str) -> str:  # fmt: skip
    """Mark the row the API created as running under this flow run, or create one (the
    nightly schedule). Returns the check's id."""
    with runtime().sessions() as s, s.begin():
        row = s.get(DriftCheck, check_id) if check_id else None
        if row is None:
            row = DriftCheck(id=check_id, remove_orphans=remove_orphans, service_id=service_id)
            s.add(row)
        row.status = DRIFT_RUNNING
        row.flow_run_id = flow_run_id
        s.flush()
        return row.id


def build(comparison: Comparison, outcome: Outcome, services: list[ServiceView],
          devices_read: list[str], errors: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """The stored report. Service entries carry their tenant so the API shows an operator
    only their own tenant's services."""
    tenant = {s.id: s.tenant_id for s in services}
    drifted = [
        {
            "service_id": sid,
            "tenant_id": tenant.get(sid),
            "diff": "\n".join(d.line() for d in drift),
            "outcome": outcome.repairs.get(sid, "not_repaired"),
            **({"error": outcome.errors[sid]} if sid in outcome.errors else {}),
        }
        for sid, drift in comparison.drifted.items()
    ]
    return {
        "devices_read": sorted(devices_read),
        "unreadable": [
            {
                "device": device,
                "error": errors.get(device, ""),
                "services": [{"service_id": sid, "tenant_id": tenant.get(sid)} for sid in sids],
            }
            for device, sids in sorted(comparison.unreadable.items())
        ],
        "services_checked": len(comparison.checked),
        "in_sync": len(comparison.in_sync),
        "drifted": drifted,
        "repaired": sum(1 for v in outcome.repairs.values() if v == "repaired"),
        "failed": sum(1 for v in outcome.repairs.values() if v == "failed"),
        "skipped": [
            {"service_id": sid, "tenant_id": tenant.get(sid), "status": status}
            for sid, status in comparison.skipped.items()
        ],
        "orphans": [o.public() for o in comparison.orphans],
        "orphans_removed": [o.public() for o in outcome.removed],
    }


@task(name="finish-drift-check", cache_policy=NO_CACHE)
def finish(check_id: str, report: dict[str, Any], duration: float) -> None:
    with runtime().sessions() as s, s.begin():
        row = s.get(DriftCheck, check_id)
        assert row is not None
        row.status = DRIFT_COMPLETED
        row.finished_at = utcnow()
        row.report = {**report, "duration_s": round(duration, 3)}
    _observe(report, duration)
    _artifact(check_id, report)
    log.info("drift check completed", extra={
        "check_id": check_id, "services_checked": report["services_checked"],
        "drifted": len(report["drifted"]), "repaired": report["repaired"],
        "orphans": len(report["orphans"]), "duration_s": round(duration, 1),
    })  # fmt: skip


def fail(check_id: str, error: str) -> None:
    """The check itself failed (not a device: those are in the report)."""
    try:
        with runtime().sessions() as s, s.begin():
            row = s.get(DriftCheck, check_id)
            if row is not None and row.status == DRIFT_RUNNING:
                row.status = DRIFT_FAILED
                row.finished_at = utcnow()
                row.error = error[:2000]
    except Exception:
        log.exception("could not mark the drift check failed", extra={"check_id": check_id})


def abandoned(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """The flow's ``on_crashed`` / ``on_cancellation`` hook (run by the worker when the
    run's process is gone): its check ends ``failed`` instead of ``running`` forever."""
    run_id = str(flow_run.id)
    try:
        with runtime().sessions() as s, s.begin():
            rows = s.scalars(select(DriftCheck).where(DriftCheck.flow_run_id == run_id))
            for row in rows:
                if row.status == DRIFT_RUNNING:
                    row.status = DRIFT_FAILED
                    row.finished_at = utcnow()
                    row.error = f"the run ended {state.name or 'abnormally'}"
    except Exception:  # a hook must not raise into the worker
        log.exception("could not close an abandoned drift check", extra={"flow_run_id": run_id})


def _observe(report: dict[str, Any], duration: float) -> None:
    counts = {
        "checked": report["services_checked"],
        "in_sync": report["in_sync"],
        "drifted": len(report["drifted"]),
        "repaired": report["repaired"],
        "failed": report["failed"],
        "skipped": len(report["skipped"]),
        "unreadable": sum(len(u["services"]) for u in report["unreadable"]),
    }
    kinds: dict[str, int] = {}
    for orphan in report["orphans"]:
        kinds[orphan["kind"]] = kinds.get(orphan["kind"], 0) + 1
    try:
        metrics.drift_check_finished(counts, kinds, duration)
    except Exception:  # metrics never break the check
        log.exception("drift check metrics failed")


def _artifact(check_id: str, report: dict[str, Any]) -> None:
    """The drifted services and the orphans as one table in the Prefect UI."""
    rows: list[dict[str, str]] = [
        {"what": "drifted", "device_or_service": d["service_id"], "kind": d["outcome"],
         "detail": d["diff"]}
        for d in report["drifted"]
    ] + [
        {"what": "orphan", "device_or_service": o["device"], "kind": o["kind"], "detail": o["ref"]}
        for o in report["orphans"]
    ]  # fmt: skip
    shown = rows[:ARTIFACT_ROWS]  # the full lists are in the stored report
    try:
        create_table_artifact(
            key=f"drift-check-{check_id[:8]}",
            table=shown,
            description=(
                f"Drift check {check_id}: {report['services_checked']} services checked, "
                f"{len(report['drifted'])} drifted, {report['repaired']} repaired, "
                f"{len(report['orphans'])} orphans"
                + (f" (first {ARTIFACT_ROWS} rows shown)" if len(rows) > ARTIFACT_ROWS else "")
            ),
        )
    except Exception:  # the report is in the database; the UI table is a convenience
        log.exception("drift check artifact failed", extra={"check_id": check_id})

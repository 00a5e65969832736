"""``GET /api/v1/services/lifecycle/statistics``: counts per status, in-flight operations,
success rate and p50/p95 durations from the event log, per tenant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from fiberflow.core.db.models import EventLog, ServiceStatus
from tests.fixtures.api_app import TENANT_A, TENANT_B, ApiApp

STATS = "/api/v1/services/lifecycle/statistics"
T0 = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)


def _run(app: ApiApp, service_id: str, operation: str, start: datetime, seconds: float | None,
         outcome: str = "completed", tenant: str = TENANT_A,
         with_id: bool = True) -> None:  # fmt: skip
    """One operation run in the event log: progress events, then (unless in flight) its end."""
    op_id = str(uuid.uuid4()) if with_id else None
    times = [(start, "progress"), (start + timedelta(seconds=1), "progress")]
    if seconds is not None:
        times.append((start + timedelta(seconds=seconds), outcome))
    with Session(app.engine) as s, s.begin():
        for at, kind in times:
            s.add(EventLog(service_id=service_id, tenant_id=tenant, operation=operation,
                           operation_id=op_id, event_type=f"service.{operation}.{kind}",
                           data={"service_instance_id": service_id}, created_at=at,
                           published=True))  # fmt: skip


def test_counts_in_flight_success_rate_and_percentiles(api_app: ApiApp) -> None:
    app = api_app
    s1, s2 = app.insert_service(), app.insert_service()
    s3 = app.insert_service(status=ServiceStatus.SUSPENDED)
    s4 = app.insert_service(status=ServiceStatus.FAILED)
    s5 = app.insert_service(status=ServiceStatus.PROVISIONING)
    app.set_status(s5, ServiceStatus.PROVISIONING, "provisioning")
    s6 = app.insert_service(status=ServiceStatus.ACTIVE)
    app.set_status(s6, ServiceStatus.SUSPENDING, "suspension")
    app.insert_service(status=ServiceStatus.PENDING)
    b1 = app.insert_service(tenant=TENANT_B)

    # Provisioning: 10 s, 20 s, 30 s completed, 40 s failed, one still running.
    _run(app, s1, "provisioning", T0, 10)
    _run(app, s2, "provisioning", T0 + timedelta(seconds=2), 20)  # overlaps s1's run
    _run(app, s3, "provisioning", T0 + timedelta(minutes=5), 30)
    _run(app, s4, "provisioning", T0 + timedelta(minutes=6), 40, outcome="failed")
    _run(app, s5, "provisioning", T0 + timedelta(minutes=7), None)
    # Suspension of s3: 5 s; s6's is running.
    _run(app, s3, "suspension", T0 + timedelta(minutes=8), 5)
    _run(app, s6, "suspension", T0 + timedelta(minutes=9), None)
    # Tenant B's runs must not count for tenant A.
    _run(app, b1, "provisioning", T0, 1000, tenant=TENANT_B)
    _run(app, b1, "termination", T0 + timedelta(hours=1), 3, outcome="failed", tenant=TENANT_B)

    r = app.client.get(STATS, headers=app.auth())
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["services_by_status"] == {
        "active": 2, "suspended": 1, "failed": 1, "provisioning": 1, "suspending": 1, "pending": 1,
    }  # fmt: skip
    assert stats["total_services"] == 7
    assert stats["in_flight"] == {"provisioning": 1, "suspension": 1}
    ops = stats["operations"]
    assert set(ops) == {"provisioning", "suspension"}
    prov = ops["provisioning"]
    assert (prov["completed"], prov["failed"], prov["success_rate"]) == (3, 1, 0.75)
    # Linear interpolation between the closest ranks over [10, 20, 30, 40].
    assert prov["duration_p50_seconds"] == 25.0
    assert prov["duration_p95_seconds"] == 38.5
    susp = ops["suspension"]
    assert (susp["completed"], susp["failed"], susp["success_rate"]) == (1, 0, 1.0)
    assert susp["duration_p50_seconds"] == susp["duration_p95_seconds"] == 5.0

    theirs = app.client.get(STATS, headers=app.auth(tenant=TENANT_B)).json()
    assert theirs["services_by_status"] == {"active": 1} and theirs["total_services"] == 1
    assert theirs["in_flight"] == {}
    assert theirs["operations"]["provisioning"]["duration_p95_seconds"] == 1000.0
    assert theirs["operations"]["termination"]["success_rate"] == 0.0


def test_a_tenant_with_nothing_gets_zeros(api_app: ApiApp) -> None:
    r = api_app.client.get(STATS, headers=api_app.auth(tenant=str(uuid.uuid4())))
    assert r.status_code == 200
    assert r.json() == {"services_by_status": {}, "total_services": 0, "in_flight": {},
                        "operations": {}}  # fmt: skip


def test_only_running_operations_are_in_flight_and_in_flight_runs_have_no_rate(
    api_app: ApiApp,
) -> None:
    app = api_app
    # A failed provisioning keeps current_operation: it is not in flight any more.
    failed = app.insert_service()
    app.set_status(failed, ServiceStatus.FAILED, "provisioning")
    running = app.insert_service()
    app.set_status(running, ServiceStatus.RESUMING, "resumption")
    _run(app, running, "resumption", T0, None)
    stats = app.client.get(STATS, headers=app.auth()).json()
    assert stats["in_flight"] == {"resumption": 1}
    assert stats["operations"] == {"resumption": {
        "completed": 0, "failed": 0, "success_rate": None,
        "duration_p50_seconds": None, "duration_p95_seconds": None}}  # fmt: skip


def test_runs_without_an_operation_id_still_count_per_service(api_app: ApiApp) -> None:
    app = api_app
    a, b = app.insert_service(), app.insert_service()
    _run(app, a, "reprovisioning", T0, 4, with_id=False)
    _run(app, b, "reprovisioning", T0 + timedelta(seconds=2), 8, with_id=False)
    ops = app.client.get(STATS, headers=app.auth()).json()["operations"]
    assert ops["reprovisioning"]["completed"] == 2
    assert ops["reprovisioning"]["duration_p50_seconds"] == 6.0

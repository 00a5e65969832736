"""Drift-check routes on a real database and Prefect server (no worker): 202 and a run of
the right deployment with the right parameters; the report as stored; every refusal is a
4xx naming the problem, and a refused request starts nothing and writes nothing."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import DriftCheck, ServiceStatus
from tests.fixtures.api_app import TENANT_A, TENANT_B, ApiApp

CHECKS = "/api/v1/drift-checks"
SERVICES = "/api/v1/services"


def _checks(app: ApiApp) -> int:
    with Session(app.engine) as s:
        return int(s.scalar(select(func.count()).select_from(DriftCheck)) or 0)


def _insert_check(app: ApiApp, tenant: str | None, report: dict[str, Any]) -> str:
    with Session(app.engine) as s, s.begin():
        row = DriftCheck(status="completed", tenant_id=tenant, report=report)
        s.add(row)
        s.flush()
        return row.id


def test_start_a_fleet_check_is_202_and_runs_the_drift_check_deployment(api_app: ApiApp) -> None:
    for body, remove in ((None, False), ({}, False), ({"remove_orphans": True}, True)):
        r = api_app.client.post(CHECKS, json=body, headers=api_app.auth())
        assert r.status_code == 202, r.text
        answer = r.json()
        assert set(answer) == {"id", "flow_run_id"}
        run = api_app.flow_run(answer["flow_run_id"])
        assert run["deployment_name"] == "drift-check"
        assert run["parameters"] == {"check_id": answer["id"], "remove_orphans": remove,
                                     "service_id": None}  # fmt: skip
        got = api_app.client.get(f"{CHECKS}/{answer['id']}", headers=api_app.auth())
        assert got.status_code == 200, got.text
        report = got.json()
        assert (report["id"], report["status"], report["remove_orphans"]) == (
            answer["id"], "running", remove)  # fmt: skip
        assert report["flow_run_id"] == answer["flow_run_id"] and report["finished_at"] is None
        assert (report["drifted"], report["orphans"], report["services_checked"]) == ([], [], 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"remove_orphans": "yes"}, "remove_orphans"),
        ({"remove_orphans": 1}, "remove_orphans"),
        ({"remove_orphans": None}, "remove_orphans"),
        ({"remove_orphans": True, "olt": "olt-1; reload"}, "olt"),
        ([True], "body"),
        ("true", "body"),
    ],
)
def test_a_malformed_body_is_422_naming_it_and_starts_nothing(
    api_app_sqlite: ApiApp, body: Any, field: str
) -> None:
    r = api_app_sqlite.client.post(CHECKS, json=body, headers=api_app_sqlite.auth())
    assert r.status_code == 422, r.text
    assert field in r.text
    assert _checks(api_app_sqlite) == 0


def test_invalid_json_is_422_and_starts_nothing(api_app_sqlite: ApiApp) -> None:
    r = api_app_sqlite.client.post(CHECKS, content=b'{"remove_orphans": tru',
                                   headers={**api_app_sqlite.auth(),
                                            "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 422 and "invalid JSON" in r.text
    assert _checks(api_app_sqlite) == 0


def test_customers_are_403_on_every_drift_route(api_app_sqlite: ApiApp) -> None:
    app = api_app_sqlite
    sid = app.insert_service(customer="cust-1")
    cid = _insert_check(app, TENANT_A, {})
    customer = app.auth("customer", sub="cust-1")
    for method, path, body in (("POST", CHECKS, {"remove_orphans": True}),
                               ("GET", f"{CHECKS}/{cid}", None),
                               ("GET", f"{SERVICES}/{sid}/drift", None),
                               ("POST", f"{SERVICES}/{sid}/reprovision", None)):  # fmt: skip
        r = app.client.request(method, path, json=body, headers=customer)
        assert r.status_code == 403 and "operator" in r.json()["detail"], (path, r.text)
    assert _checks(app) == 1 and app.service(sid).status == "active"


def test_unknown_malformed_and_other_tenants_checks_are_404(api_app_sqlite: ApiApp) -> None:
    app = api_app_sqlite
    theirs = _insert_check(app, TENANT_B, {})
    for guess in (str(uuid.uuid4()), "abc", "' OR '1'='1", theirs, "%00", "a" * 300):
        r = app.client.get(f"{CHECKS}/{guess}", headers=app.auth())
        assert r.status_code == 404 and "not found" in r.json()["detail"], (guess, r.text)
    assert (
        app.client.get(f"{CHECKS}/{theirs}", headers=app.auth(tenant=TENANT_B)).status_code == 200
    )


def test_a_report_shows_an_operator_only_their_tenants_services(api_app_sqlite: ApiApp) -> None:
    app = api_app_sqlite
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    report = {
        "devices_read": ["bng-1", "olt-1", "radius"], "services_checked": 5, "in_sync": 3,
        "drifted": [
            {"service_id": a, "tenant_id": TENANT_A, "diff": "bng.vlan: expected 101, found 4000",
             "outcome": "repaired"},
            {"service_id": b, "tenant_id": TENANT_B, "diff": "radius.subscriber",
             "outcome": "failed", "error": "boom"},
        ],
        "repaired": 1, "failed": 1,
        "skipped": [{"service_id": b, "tenant_id": TENANT_B, "status": "suspending"}],
        "unreadable": [{"device": "olt-2", "error": "authentication failed",
                        "services": [{"service_id": a, "tenant_id": TENANT_A},
                                     {"service_id": b, "tenant_id": TENANT_B}]}],
        "orphans": [{"device": "olt-1", "kind": "ont", "ref": "0/1/3 7"}],
        "orphans_removed": [],
    }  # fmt: skip
    nightly = _insert_check(app, None, report)
    seen = app.client.get(f"{CHECKS}/{nightly}", headers=app.auth()).json()
    assert seen["drifted"] == [{"service_id": a, "diff": "bng.vlan: expected 101, found 4000",
                                "outcome": "repaired", "error": None}]  # fmt: skip
    assert seen["skipped"] == [] and seen["unreadable"][0]["services"] == [a]
    assert (seen["services_checked"], seen["in_sync"], seen["repaired"], seen["failed"]) == (
        5, 3, 1, 1)  # fmt: skip
    assert seen["orphans"] == [{"device": "olt-1", "kind": "ont", "ref": "0/1/3 7"}]
    other = app.client.get(f"{CHECKS}/{nightly}", headers=app.auth(tenant=TENANT_B)).json()
    assert [d["service_id"] for d in other["drifted"]] == [b]
    assert other["skipped"] == [{"service_id": b, "status": "suspending"}]


def test_service_drift_without_a_worker_is_202_with_the_check(api_app: ApiApp) -> None:
    sid = api_app.insert_service(status=ServiceStatus.ACTIVE)
    r = api_app.client.get(f"{SERVICES}/{sid}/drift?wait=0", headers=api_app.auth())
    assert r.status_code == 202, r.text
    run = api_app.flow_run(r.json()["flow_run_id"])
    assert run["deployment_name"] == "drift-check"
    assert run["parameters"] == {"check_id": r.json()["id"], "remove_orphans": False,
                                 "service_id": sid}  # fmt: skip
    assert api_app.service(sid).status == "active"


def test_service_drift_answers_the_report_once_the_check_ends(api_app: ApiApp) -> None:
    sid = api_app.insert_service(status=ServiceStatus.ACTIVE)
    diff = "bng.policy_out: expected PLAN-100M-OUT, found None"

    def worker() -> None:
        # What the flow run does when it ends: the report, then completed.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with Session(api_app.engine) as s, s.begin():
                row = s.scalars(select(DriftCheck).where(DriftCheck.service_id == sid)).first()
                if row is not None:
                    row.report = {"services_checked": 1, "in_sync": 0, "drifted": [
                        {"service_id": sid, "tenant_id": TENANT_A, "diff": diff,
                         "outcome": "not_repaired"}], "skipped": [], "unreadable": []}  # fmt: skip
                    row.status = "completed"
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        r = api_app.client.get(f"{SERVICES}/{sid}/drift?wait=30", headers=api_app.auth())
    finally:
        thread.join()
    assert r.status_code == 200, r.text
    assert r.json()["in_sync"] is False and r.json()["diff"] == diff


@pytest.mark.parametrize("status", [ServiceStatus.PENDING, ServiceStatus.SUSPENDED,
                                    ServiceStatus.REPROVISIONING, ServiceStatus.TERMINATED,
                                    ServiceStatus.FAILED])  # fmt: skip
def test_drift_and_reprovision_of_a_service_not_active_are_409(
    api_app: ApiApp, status: ServiceStatus
) -> None:
    sid = api_app.insert_service(status=status)
    for method, path in (("GET", f"{SERVICES}/{sid}/drift?wait=0"),
                         ("POST", f"{SERVICES}/{sid}/reprovision")):  # fmt: skip
        r = api_app.client.request(method, path, headers=api_app.auth())
        assert r.status_code == 409 and status.value in r.json()["detail"], r.text
    row = api_app.service(sid)
    assert (row.status, row.flow_run_id) == (status.value, None)
    assert _checks(api_app) == 0


@pytest.mark.parametrize("wait", ["31", "-1", "soon", "nan", "1e9"])
def test_service_drift_with_a_bad_wait_is_422(api_app_sqlite: ApiApp, wait: str) -> None:
    sid = api_app_sqlite.insert_service(status=ServiceStatus.ACTIVE)
    r = api_app_sqlite.client.get(f"{SERVICES}/{sid}/drift?wait={wait}",
                                  headers=api_app_sqlite.auth())  # fmt: skip
    assert r.status_code == 422 and "wait" in r.text, r.text
    assert _checks(api_app_sqlite) == 0


def test_unknown_and_other_tenants_services_are_404(api_app_sqlite: ApiApp) -> None:
    app = api_app_sqlite
    theirs = app.insert_service(tenant=TENANT_B, status=ServiceStatus.ACTIVE)
    for sid in (theirs, str(uuid.uuid4()), "not-a-uuid", "' OR 1=1 --"):
        for method, path in (("GET", f"{SERVICES}/{sid}/drift?wait=0"),
                             ("POST", f"{SERVICES}/{sid}/reprovision")):  # fmt: skip
            r = app.client.request(method, path, headers=app.auth())
            assert r.status_code == 404 and "not found" in r.json()["detail"], (sid, r.text)
    assert app.service(theirs).status == "active" and _checks(app) == 0


def test_reprovision_is_202_and_starts_the_reprovision_deployment(api_app: ApiApp) -> None:
    sid = api_app.insert_service(status=ServiceStatus.ACTIVE)
    r = api_app.client.post(f"{SERVICES}/{sid}/reprovision", headers=api_app.auth())
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["id"], body["status"]) == (sid, "reprovisioning")
    run = api_app.flow_run(body["flow_run_id"])
    assert run["deployment_name"] == "reprovision"
    assert run["parameters"] == {"service_id": sid}
    assert api_app.service(sid).flow_run_id == body["flow_run_id"]
    again = api_app.client.post(f"{SERVICES}/{sid}/reprovision", headers=api_app.auth())
    assert again.status_code == 409 and "reprovisioning" in again.json()["detail"]

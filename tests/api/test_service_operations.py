"""``/api/v1/services/{id}/suspend`` · ``/resume`` · ``/terminate``: 409 when the state
forbids, else 202 and a flow run of the right deployment with the right parameters (a
real Prefect server with no worker), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from fiberflow.core.db.models import Operation, ServiceInstance, ServiceStatus
from tests.fixtures.api_app import ApiApp

SERVICES = "/api/v1/services"

# -- suspend / resume / terminate -------------------------------------------------------------

FORBIDDEN = [
    (ServiceStatus.PENDING, "suspend"),
    (ServiceStatus.PENDING, "resume"),
    (ServiceStatus.PENDING, "terminate"),
    (ServiceStatus.PROVISIONING, "terminate"),
    (ServiceStatus.ACTIVE, "resume"),
    (ServiceStatus.SUSPENDED, "suspend"),
    (ServiceStatus.SUSPENDING, "suspend"),
    (ServiceStatus.SUSPENDING, "terminate"),
    (ServiceStatus.TERMINATED, "suspend"),
    (ServiceStatus.TERMINATED, "resume"),
    (ServiceStatus.TERMINATED, "terminate"),
    (ServiceStatus.FAILED, "suspend"),
    (ServiceStatus.FAILED, "resume"),
]


def test_operations_the_state_forbids_are_409_and_change_nothing(api_app: ApiApp) -> None:
    failures = []
    for status, action in FORBIDDEN:
        sid = api_app.insert_service(status=status)
        r = api_app.client.post(f"{SERVICES}/{sid}/{action}", headers=api_app.auth())
        row = api_app.service(sid)
        if r.status_code != 409 or status.value not in r.json().get("detail", ""):
            failures.append(f"{action} from {status}: {r.status_code} {r.text[:150]}")
        if row.status != status.value or row.flow_run_id is not None:
            failures.append(f"{action} from {status}: row changed to {row.status}")
    assert not failures, "\n".join(failures)


ALLOWED = [
    (ServiceStatus.ACTIVE, "suspend", {"hard": True}, "suspending", "suspend", {"hard": True}),
    (ServiceStatus.ACTIVE, "suspend", None, "suspending", "suspend", {"hard": False}),
    (ServiceStatus.ACTIVE, "suspend", {}, "suspending", "suspend", {"hard": False}),
    (ServiceStatus.SUSPENDED, "resume", None, "resuming", "resume", {}),
    (ServiceStatus.ACTIVE, "terminate", None, "terminating", "terminate", {}),
    (ServiceStatus.SUSPENDED, "terminate", None, "terminating", "terminate", {}),
    # Beyond DESIGN.md: a failed service can be terminated to release what it still holds.
    (ServiceStatus.FAILED, "terminate", None, "terminating", "terminate", {}),
]


@pytest.mark.parametrize(("start", "action", "payload", "running", "deployment", "params"),
                         ALLOWED, ids=[f"{a[1]}-from-{a[0].value}-{json.dumps(a[2])}"
                                       for a in ALLOWED])  # fmt: skip
def test_allowed_operations_are_202_and_start_the_right_deployment(
    api_app: ApiApp, start: ServiceStatus, action: str, payload: dict[str, Any] | None,
    running: str, deployment: str, params: dict[str, Any],
) -> None:  # fmt: skip
    sid = api_app.insert_service(status=start)
    kwargs: dict[str, Any] = {"json": payload} if payload is not None else {}
    r = api_app.client.post(f"{SERVICES}/{sid}/{action}", headers=api_app.auth(), **kwargs)
    assert r.status_code == 202, r.text
    assert r.json()["id"] == sid and r.json()["status"] == running
    run = api_app.flow_run(r.json()["flow_run_id"])
    assert run["deployment_name"] == deployment
    assert run["parameters"] == {"service_id": sid, **params}
    row = api_app.service(sid)
    assert row.status == running and row.flow_run_id == r.json()["flow_run_id"]
    # The same operation again is now refused: the service is busy.
    again = api_app.client.post(f"{SERVICES}/{sid}/{action}", headers=api_app.auth(), **kwargs)
    assert again.status_code == 409


def test_bad_suspend_bodies_are_422_and_change_nothing(api_app: ApiApp) -> None:
    sid = api_app.insert_service()
    for payload, field in (({"hard": "maybe"}, "hard"), ({"hard": True, "now": 1}, "now"),
                           ([True], "body")):  # fmt: skip
        r = api_app.client.post(f"{SERVICES}/{sid}/suspend", json=payload, headers=api_app.auth())
        assert r.status_code == 422, (payload, r.text)
        assert field in r.json()["detail"]
    assert api_app.service(sid).status == "active"


# PostgreSQL only: SQLite's BEGIN IMMEDIATE (core.db.engine) keeps the other writer out.
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_operations_raced_on_one_service_one_wins_the_other_is_409(api_app: ApiApp) -> None:
    """A terminate (another request) commits between this suspend's read and its UPDATE:
    the version check refuses the stale suspend, and no suspend run is launched."""
    sid = api_app.insert_service(status=ServiceStatus.ACTIVE)
    raced: list[bool] = []

    def race(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if raced or not statement.lstrip().upper().startswith("UPDATE SERVICE_INSTANCES"):
            return
        raced.append(True)
        with Session(api_app.engine) as s, s.begin():  # a separate connection, committed
            row = s.get(ServiceInstance, sid)
            assert row is not None
            row.begin(Operation.TERMINATION)

    app_engine = api_app.app.state.fiberflow.engine
    event.listen(app_engine, "before_cursor_execute", race)
    try:
        r = api_app.client.post(f"{SERVICES}/{sid}/suspend", headers=api_app.auth())
    finally:
        event.remove(app_engine, "before_cursor_execute", race)
    assert raced, "the competing update did not happen"
    assert r.status_code == 409, r.text
    assert "another request" in r.json()["detail"]
    row = api_app.service(sid)
    assert (row.status, row.current_operation, row.flow_run_id) == ("terminating", "termination",
                                                                    None)  # fmt: skip

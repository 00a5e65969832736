"""The API announces step 1 of a run it starts (``queued``) before the run exists, under
the run's own operation once it does; a run that cannot be created ends the announced
operation with its failed event."""

from __future__ import annotations

from typing import Any

from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import EventLog, ServiceStatus
from fiberflow.events.history import events_for
from tests.fixtures.api_app import ApiApp, new_serial

SERVICES = "/api/v1/services"
DEAD_PREFECT = {PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}


def _order() -> dict[str, Any]:
    return {"customer_ref": "cust-q", "plan": "100M", "olt": "olt-1", "pon_port": "0/1/3",
            "ont_serial": new_serial()}  # fmt: skip


def _events(app: ApiApp, sid: str) -> list[dict[str, Any]]:
    got = app.client.get(f"{SERVICES}/{sid}/events", headers=app.auth())
    assert got.status_code == 200, got.text
    return list(got.json())


def _operation_ids(app: ApiApp, sid: str) -> list[str | None]:
    with Session(app.engine) as s:
        q = select(EventLog.operation_id).where(EventLog.service_id == sid).order_by(EventLog.id)
        return list(s.scalars(q))


def test_a_create_announces_step_1_under_its_run(api_app: ApiApp) -> None:
    accepted = api_app.client.post(SERVICES, json=_order(), headers=api_app.auth())
    assert accepted.status_code == 202, accepted.text
    sid, run = accepted.json()["id"], accepted.json()["flow_run_id"]

    # No worker runs it: the announcement is all there is, and it is the run's.
    [event] = _events(api_app, sid)
    assert event["event_type"] == "service.provisioning.progress"
    data = event["data"]
    assert (data["step"], data["total_steps"], data["status"]) == (1, 6, "queued")
    assert data["message"] and data["service_instance_id"] == sid
    assert _operation_ids(api_app, sid) == [run]
    # A client connecting now catches up on it (the latest operation's events).
    with Session(api_app.engine) as s:
        assert [e.id for e in events_for(s, sid, None)] == [event["id"]]


def test_an_operation_on_a_service_is_announced_with_its_own_noun(api_app: ApiApp) -> None:
    sid = api_app.insert_service(status=ServiceStatus.ACTIVE)
    accepted = api_app.client.post(f"{SERVICES}/{sid}/suspend", headers=api_app.auth())
    assert accepted.status_code == 202, accepted.text
    [event] = _events(api_app, sid)
    assert event["event_type"] == "service.suspension.progress"
    assert (event["data"]["step"], event["data"]["status"]) == (1, "queued")
    assert event["data"]["total_steps"] > 1
    assert _operation_ids(api_app, sid) == [accepted.json()["flow_run_id"]]


def test_a_run_that_cannot_be_created_ends_its_announcement_failed(api_app: ApiApp) -> None:
    with temporary_settings(updates=DEAD_PREFECT):
        down = api_app.client.post(SERVICES, json=_order(), headers=api_app.auth())
    assert down.status_code == 503 and "not reachable" in down.json()["detail"]
    [row] = api_app.client.get(SERVICES, headers=api_app.auth()).json()["items"]
    assert row["status"] == "failed"
    queued, failed = _events(api_app, row["id"])
    assert queued["data"]["status"] == "queued"
    assert failed["event_type"] == "service.provisioning.failed"
    assert "not reachable" in failed["data"]["error"] and failed["data"]["step"] == 1
    # One operation, both events: the portal shows the failure after step 1.
    first, second = _operation_ids(api_app, row["id"])
    assert first == second and first is not None


def test_a_refused_operation_announces_nothing(api_app: ApiApp) -> None:
    sid = api_app.insert_service(status=ServiceStatus.SUSPENDED)
    refused = api_app.client.post(f"{SERVICES}/{sid}/suspend", headers=api_app.auth())
    assert refused.status_code == 409
    assert _events(api_app, sid) == []

"""``POST /api/v1/services/{id}/replace-ont``: 202 and a run of ``replace-ont`` from
active or suspended; bad input answers a 4xx naming the problem and changes nothing (no
row change, no flow run). A real Prefect server with no worker, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from fiberflow.core.db.models import ServiceStatus
from tests.fixtures.api_app import TENANT_B, ApiApp, new_serial

SERVICES = "/api/v1/services"
NEW = "48575443AABBCC01"


def _replace(api: ApiApp, sid: str, body: Any, **auth: str) -> Any:
    return api.client.post(f"{SERVICES}/{sid}/replace-ont", json=body, headers=api.auth(**auth))


def _unchanged(api: ApiApp, sid: str, status: ServiceStatus, serial: str) -> None:
    row = api.service(sid)
    assert (row.status, row.ont_serial, row.flow_run_id) == (status.value, serial, None)


@pytest.mark.parametrize("start", [ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED])
def test_202_starts_replace_ont_with_the_new_serial(api_app: ApiApp, start: ServiceStatus) -> None:
    sid = api_app.insert_service(status=start)
    r = _replace(api_app, sid, {"ont_serial": NEW.lower()})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "replacing_ont"
    run = api_app.flow_run(r.json()["flow_run_id"])
    assert run["deployment_name"] == "replace-ont"
    assert run["parameters"] == {"service_id": sid, "ont_serial": NEW}  # stored upper-case
    row = api_app.service(sid)
    assert (row.status, row.status_before, row.current_operation) == (
        "replacing_ont",
        start.value,
        "ont_replacement",
    )
    # Busy now: a second replacement (or any operation) is refused.
    assert _replace(api_app, sid, {"ont_serial": new_serial()}).status_code == 409
    got = api_app.client.get(f"{SERVICES}/{sid}", headers=api_app.auth()).json()
    assert "ont_rx_power_dbm" in got and got["ont_rx_power_dbm"] is None


@pytest.mark.parametrize(
    "start",
    [ServiceStatus.PENDING, ServiceStatus.PROVISIONING, ServiceStatus.TERMINATED,
     ServiceStatus.FAILED, ServiceStatus.SUSPENDING],
)  # fmt: skip
def test_other_statuses_are_409(api_app: ApiApp, start: ServiceStatus) -> None:
    serial = new_serial()
    sid = api_app.insert_service(status=start, serial=serial)
    r = _replace(api_app, sid, {"ont_serial": NEW})
    assert r.status_code == 409 and start.value in r.json()["detail"]
    _unchanged(api_app, sid, start, serial)


BAD_BODIES: list[Any] = [
    {"ont_serial": "485754431A2B3C4"},  # 15 digits
    {"ont_serial": "485754431A2B3C4D0"},
    {"ont_serial": "G85754431A2B3C4D"},
    {"ont_serial": "485754431A2B3C4D\nreboot"},
    {"ont_serial": "4857;4431A2B3C4D"},
    {"ont_serial": 4857544310203040},
    {"ont_serial": None},
    {},
    {"ont_serial": NEW, "pon_port": "0/1/4"},  # nothing else may change
    None,
    [NEW],
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=[repr(b)[:30] for b in BAD_BODIES])
def test_malformed_or_missing_serial_is_422(api_app: ApiApp, body: Any) -> None:
    serial = new_serial()
    sid = api_app.insert_service(serial=serial)
    r = _replace(api_app, sid, body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"] + str(r.json().get("errors"))
    assert "ont_serial" in detail or "pon_port" in detail or "body" in detail
    _unchanged(api_app, sid, ServiceStatus.ACTIVE, serial)


def test_the_same_serial_is_409(api_app: ApiApp) -> None:
    sid = api_app.insert_service(serial=NEW)
    r = _replace(api_app, sid, {"ont_serial": NEW.lower()})
    assert r.status_code == 409 and "already this service's ONT" in r.json()["detail"]
    _unchanged(api_app, sid, ServiceStatus.ACTIVE, NEW)


@pytest.mark.parametrize("tenant_kwargs", [{}, {"tenant": TENANT_B}])
def test_a_serial_of_another_live_service_is_409(api_app: ApiApp, tenant_kwargs: Any) -> None:
    api_app.insert_service(serial=NEW, status=ServiceStatus.SUSPENDED, **tenant_kwargs)
    serial = new_serial()
    sid = api_app.insert_service(serial=serial)
    r = _replace(api_app, sid, {"ont_serial": NEW})
    assert r.status_code == 409 and "already belongs to a service" in r.json()["detail"]
    assert TENANT_B not in r.json()["detail"]  # another tenant's service is not named
    _unchanged(api_app, sid, ServiceStatus.ACTIVE, serial)


@pytest.mark.parametrize("status", [ServiceStatus.TERMINATED, ServiceStatus.FAILED])
def test_a_released_serial_may_be_reused(api_app: ApiApp, status: ServiceStatus) -> None:
    api_app.insert_service(serial=NEW, status=status)
    sid = api_app.insert_service()
    assert _replace(api_app, sid, {"ont_serial": NEW}).status_code == 202


def test_unknown_other_tenant_and_customer(api_app: ApiApp) -> None:
    serial = new_serial()
    sid = api_app.insert_service(serial=serial, customer="cust-1")
    for sid_, auth, code in [
        ("6f1c0a52-8a1e-4f3e-9d0b-2b8f5c7e1a90", {}, 404),
        ("not-a-uuid", {}, 404),
        (sid, {"tenant": TENANT_B}, 404),
        (sid, {"role": "customer", "sub": "cust-1"}, 403),  # even for their own
    ]:
        r = _replace(api_app, sid_, {"ont_serial": NEW}, **auth)
        assert r.status_code == code, (sid_, auth, r.text)
    # 403 comes before 422: a customer's malformed request is still 403.
    bad = _replace(api_app, sid, {"ont_serial": "x"}, role="customer", sub="cust-1")
    assert bad.status_code == 403
    # Without a body, another tenant still gets 404 (the body is checked after the lookup).
    hidden = api_app.client.post(
        f"{SERVICES}/{sid}/replace-ont", headers=api_app.auth(tenant=TENANT_B)
    )
    assert hidden.status_code == 404
    mine = api_app.client.post(f"{SERVICES}/{sid}/replace-ont", headers=api_app.auth())
    assert mine.status_code == 422 and "ont_serial: required" in mine.json()["detail"]
    no_token = api_app.client.post(f"{SERVICES}/{sid}/replace-ont", json={"ont_serial": NEW})
    assert no_token.status_code == 401
    _unchanged(api_app, sid, ServiceStatus.ACTIVE, serial)


def test_an_unreachable_orchestrator_leaves_the_service_as_it_was(api_app: ApiApp) -> None:
    serial = new_serial()
    sid = api_app.insert_service(serial=serial, status=ServiceStatus.SUSPENDED)
    dead = {PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}
    with temporary_settings(updates=dead):
        r = _replace(api_app, sid, {"ont_serial": NEW})
    assert r.status_code == 503 and "try again" in r.json()["detail"]
    row = api_app.service(sid)
    assert (row.status, row.ont_serial, row.flow_run_id) == ("suspended", serial, None)
    assert "could not start" in (row.error or "")
    assert _replace(api_app, sid, {"ont_serial": NEW}).status_code == 202

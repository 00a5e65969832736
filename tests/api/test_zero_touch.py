"""Zero-touch orders over HTTP: created waiting (no run), the waiting event, bad input,
the serial given later (PATCH), terminated while waiting (no run, no device), and
``GET /api/v1/discovery`` over sightings a pass stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from fiberflow.core.db.models import (
    IpAllocation,
    OntSighting,
    ServiceInstance,
    ServiceStatus,
    VlanAllocation,
)
from tests.fixtures.api_app import TENANT_B, ApiApp, new_serial

SERVICES = "/api/v1/services"


def order(**overrides: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"customer_ref": "cust-1", "plan": "100M", "olt": "olt-1",
                         "pon_port": "0/1/3", "activation": "on_discovery"}  # fmt: skip
    b.update(overrides)
    return {k: v for k, v in b.items() if v is not None}


def runs_of(app: ApiApp, service_id: str) -> list[dict[str, Any]]:
    assert app.prefect_url is not None
    found: list[dict[str, Any]] = httpx.post(
        f"{app.prefect_url}/flow_runs/filter",
        json={"flow_runs": {"tags": {"all_": [f"service:{service_id}"]}}},
    ).json()
    return found


def create_waiting(app: ApiApp, **overrides: Any) -> str:
    r = app.client.post(SERVICES, json=order(**overrides), headers=app.auth())
    assert r.status_code == 202, r.text
    sid: str = r.json()["id"]
    return sid


def test_an_on_discovery_order_waits_without_a_run_and_says_so(api_app: ApiApp) -> None:
    r = api_app.client.post(SERVICES, json=order(), headers=api_app.auth())
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "awaiting_ont" and accepted["flow_run_id"] is None
    sid = accepted["id"]
    got = api_app.client.get(f"{SERVICES}/{sid}", headers=api_app.auth()).json()
    assert (got["status"], got["activation"], got["ont_serial"]) == (
        "awaiting_ont", "on_discovery", None)  # fmt: skip
    assert (got["ip_address"], got["vlan"], got["ont_id"]) == (None, None, None)
    assert runs_of(api_app, sid) == []
    assert api_app.count(IpAllocation) == 0 and api_app.count(VlanAllocation) == 0

    events = api_app.client.get(f"{SERVICES}/{sid}/events", headers=api_app.auth()).json()
    assert [e["event_type"] for e in events] == ["service.provisioning.progress"]
    data = events[0]["data"]
    assert (data["step"], data["total_steps"], data["status"]) == (1, 6, "waiting")
    assert data["message"] == "Waiting for your fibre box to be connected"

    # With a serial it waits too; an immediate order with a serial starts at once.
    sn = new_serial()
    with_serial = create_waiting(api_app, ont_serial=sn.lower())
    assert api_app.service(with_serial).ont_serial == sn
    assert runs_of(api_app, with_serial) == []


def test_bad_zero_touch_input_is_422_naming_the_field_and_writes_nothing(
    api_app: ApiApp,
) -> None:
    cases = [
        (order(activation="later"), "activation"),
        (order(activation=5), "activation"),
        (order(activation="on_discovery; rm -rf"), "activation"),
        (order(activation="immediate"), "ont_serial"),  # immediate needs the serial
        ({k: v for k, v in order().items() if k != "activation"}, "ont_serial"),
        (order(ont_serial="485754431A2B3C4\n"), "ont_serial"),
        (order(pon_port="0/9/0"), "pon_port"),
    ]
    for b, field in cases:
        r = api_app.client.post(SERVICES, json=b, headers=api_app.auth())
        assert r.status_code == 422 and field in r.json()["detail"], (b, r.text)
    r = api_app.client.post(SERVICES, json=order(), headers=api_app.auth("customer"))
    assert r.status_code == 403
    assert api_app.count() == 0


def test_the_serial_can_be_given_while_waiting_and_only_then(api_app: ApiApp) -> None:
    sid = create_waiting(api_app)
    path, auth = f"{SERVICES}/{sid}", api_app.auth()
    sn = new_serial()
    r = api_app.client.patch(path, json={"ont_serial": sn.lower()}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["ont_serial"] == sn and r.json()["status"] == "awaiting_ont"
    # The same again is a no-op; another serial replaces it while it still waits.
    assert api_app.client.patch(path, json={"ont_serial": sn}, headers=auth).status_code == 200
    held = new_serial()
    api_app.insert_service(serial=held, status=ServiceStatus.ACTIVE)
    bad: list[tuple[Any, int, str]] = [
        ({"ont_serial": "XYZ"}, 422, "ont_serial"),
        ({"ont_serial": sn + "\nquit"}, 422, "ont_serial"),
        ({}, 422, "ont_serial"),
        ({"ont_serial": new_serial(), "plan": "1G"}, 422, "plan"),
        ({"ont_serial": held}, 409, held),
    ]
    for b, code, word in bad:
        r = api_app.client.patch(path, json=b, headers=auth)
        assert r.status_code == code and word in r.json()["detail"], (b, r.text)
    assert api_app.client.patch(path, json={"ont_serial": new_serial()},
                                headers=api_app.auth("customer")).status_code == 403  # fmt: skip
    other = api_app.auth(tenant=TENANT_B)
    assert api_app.client.patch(path, json={"ont_serial": new_serial()},
                                headers=other).status_code == 404  # fmt: skip
    assert api_app.service(sid).ont_serial == sn

    active = api_app.insert_service(status=ServiceStatus.ACTIVE)
    r = api_app.client.patch(f"{SERVICES}/{active}", json={"ont_serial": new_serial()},
                             headers=auth)  # fmt: skip
    assert r.status_code == 409 and "awaits its ONT" in r.json()["detail"]


def test_terminating_a_waiting_order_starts_no_run(api_app: ApiApp) -> None:
    sn = new_serial()
    sid = create_waiting(api_app, ont_serial=sn)
    r = api_app.client.post(f"{SERVICES}/{sid}/terminate", headers=api_app.auth())
    assert r.status_code == 202, r.text
    assert r.json() == {"id": sid, "status": "terminated", "flow_run_id": None}
    assert runs_of(api_app, sid) == []
    events = api_app.client.get(f"{SERVICES}/{sid}/events", headers=api_app.auth()).json()
    assert [e["event_type"] for e in events][-2:] == [
        "service.termination.progress", "service.termination.completed"]  # fmt: skip
    again = api_app.client.post(f"{SERVICES}/{sid}/terminate", headers=api_app.auth())
    assert again.status_code == 409
    r = api_app.client.patch(f"{SERVICES}/{sid}", json={"ont_serial": new_serial()},
                             headers=api_app.auth())  # fmt: skip
    assert r.status_code == 409
    # Its serial is free again.
    assert create_waiting(api_app, ont_serial=sn) != sid


def test_discovery_lists_sightings_and_why_orders_wait(api_app: ApiApp) -> None:
    exact_sn, lone_sn, stray_sn, held_sn = (new_serial() for _ in range(4))
    exact = create_waiting(api_app, ont_serial=exact_sn, pon_port="0/1/1")
    lone = create_waiting(api_app, pon_port="0/1/2")
    twin_a = create_waiting(api_app, pon_port="0/1/3")
    twin_b = create_waiting(api_app, pon_port="0/1/3")
    active = api_app.insert_service(serial=held_sn, status=ServiceStatus.PROVISIONING)
    other_tenant = api_app.insert_service(tenant=TENANT_B, pon_port="0/2/0")
    with Session(api_app.engine) as s, s.begin():
        s.get_one(ServiceInstance, other_tenant).status = ServiceStatus.AWAITING_ONT.value
        now = datetime.now(UTC)
        s.add_all([
            OntSighting(olt="olt-1", pon_port="0/1/1", serial=exact_sn, seen_at=now),
            OntSighting(olt="olt-1", pon_port="0/1/3", serial=stray_sn, seen_at=now),
            OntSighting(olt="olt-1", pon_port="0/1/4", serial=held_sn, seen_at=now),
        ])  # fmt: skip

    r = api_app.client.get("/api/v1/discovery", headers=api_app.auth())
    assert r.status_code == 200, r.text
    doc = r.json()
    seen = {x["serial"]: x for x in doc["sightings"]}
    assert (seen[exact_sn]["matched"], seen[exact_sn]["service_id"]) == (True, exact)
    assert (seen[stray_sn]["matched"], seen[stray_sn]["service_id"]) == (False, None)
    assert (seen[held_sn]["matched"], seen[held_sn]["service_id"]) == (True, active)
    assert seen[exact_sn]["pon_port"] == "0/1/1" and seen[exact_sn]["seen_at"].endswith("Z")
    why = {w["service_id"]: w["reason"] for w in doc["waiting"]}
    assert set(why) == {exact, lone, twin_a, twin_b}  # not the other tenant's
    assert "next discovery pass binds it" in why[exact]
    assert "no unknown ONT has appeared on olt-1 0/1/2" in why[lone]
    assert why[twin_a] == why[twin_b] and "2 orders wait on olt-1 0/1/3" in why[twin_a]

    assert api_app.client.get("/api/v1/discovery",
                              headers=api_app.auth("customer")).status_code == 403  # fmt: skip
    assert api_app.client.get("/api/v1/discovery").status_code == 401

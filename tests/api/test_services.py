"""``/api/v1/services``: create, get and list, on SQLite and PostgreSQL, launching into a
real Prefect server with no worker (runs stay Scheduled). The lifecycle operations are
in test_service_operations.py."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from fiberflow.api.schemas import ServiceCreate
from fiberflow.core.db.models import ServiceInstance, ServiceStatus
from tests.fixtures.api_app import TENANT_A, TENANT_B, ApiApp, new_serial

SERVICES = "/api/v1/services"
DESIGN_FIELDS = {"id", "tenant_id", "customer_ref", "status", "plan", "olt", "pon_port",
                 "ont_serial", "ont_id", "vlan", "ip_address", "radius_username",
                 "flow_run_id"}  # fmt: skip


def body(**overrides: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"customer_ref": "cust-1", "plan": "100M", "olt": "olt-1",
                         "pon_port": "0/1/3", "ont_serial": new_serial()}  # fmt: skip
    b.update(overrides)
    return {k: v for k, v in b.items() if v is not None}


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


# -- create ---------------------------------------------------------------------------------


def test_create_starts_a_provision_run_and_get_shows_the_design_fields(api_app: ApiApp) -> None:
    b = body(ont_serial="485754431a2b3c4d", pon_port="0/01/003", description="flat-3.left")
    r = api_app.client.post(SERVICES, json=b, headers=api_app.auth())
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert set(accepted) == {"id", "status", "flow_run_id"}
    assert accepted["status"] == "provisioning"

    run = api_app.flow_run(accepted["flow_run_id"])
    assert run["deployment_name"] == "provision"
    assert run["parameters"] == {"service_id": accepted["id"]}
    assert run["state_type"] == "SCHEDULED"  # no worker: it waits

    got = api_app.client.get(f"{SERVICES}/{accepted['id']}", headers=api_app.auth())
    assert got.status_code == 200
    svc = got.json()
    assert set(svc) >= DESIGN_FIELDS
    assert svc["id"] == accepted["id"] and svc["tenant_id"] == TENANT_A
    assert svc["flow_run_id"] == accepted["flow_run_id"]
    assert svc["ont_serial"] == "485754431A2B3C4D"  # one spelling: upper case
    assert svc["pon_port"] == "0/1/3"  # one spelling: no leading zeros
    assert (svc["customer_ref"], svc["plan"], svc["olt"], svc["pon_port"]) == (
        "cust-1", "100M", "olt-1", "0/1/3")  # fmt: skip
    upper = api_app.client.get(f"{SERVICES}/{accepted['id'].upper()}", headers=api_app.auth())
    assert upper.status_code == 200 and upper.json()["id"] == accepted["id"]  # UUIDs ignore case
    assert svc["vlan"] is None and svc["ont_id"] is None and svc["ip_address"] is None
    for stamp in (svc["created_at"], svc["updated_at"]):  # ISO-8601 UTC on every backend
        assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).utcoffset() == timedelta(0)
    assert not [k for k in _keys(svc) if "password" in k.lower() or "secret" in k.lower()]

    # Once provisioning has allocated them, vlan and ont_id are integers.
    with Session(api_app.engine) as s, s.begin():
        s.execute(update(ServiceInstance).where(ServiceInstance.id == accepted["id"])
                  .values(vlan=123, ont_id=4, ip_address="100.64.0.9"))  # fmt: skip
    svc = api_app.client.get(f"{SERVICES}/{accepted['id']}", headers=api_app.auth()).json()
    assert svc["vlan"] == 123 and isinstance(svc["vlan"], int) and svc["ont_id"] == 4


def test_idempotency_key_replays_the_same_service_and_refuses_a_different_body(
    api_app: ApiApp,
) -> None:
    b = body()
    key = {"Idempotency-Key": "order-7781"}
    first = api_app.client.post(SERVICES, json=b, headers={**api_app.auth(), **key})
    again = api_app.client.post(SERVICES, json=b, headers={**api_app.auth(), **key})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert api_app.count() == 1

    other = api_app.client.post(SERVICES, json=body(), headers={**api_app.auth(), **key})
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]
    assert api_app.count() == 1

    # Keys are per tenant: tenant B's identical key is a different order.
    b_hdr = {**api_app.auth(tenant=TENANT_B), **key}
    theirs = api_app.client.post(SERVICES, json=body(), headers=b_hdr)
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    assert api_app.count() == 2


def test_a_create_the_orchestrator_refused_can_be_retried_with_the_same_key(
    api_app: ApiApp,
) -> None:
    b, key = body(), {"Idempotency-Key": "order-retry"}
    dead = {PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}
    with temporary_settings(updates=dead):  # the Prefect server "down" for this request
        down = api_app.client.post(SERVICES, json=b, headers={**api_app.auth(), **key})
    assert down.status_code == 503 and "try again" in down.json()["detail"]
    [failed] = api_app.client.get(SERVICES, headers=api_app.auth()).json()["items"]
    assert failed["status"] == "failed" and failed["flow_run_id"] is None

    retry = api_app.client.post(SERVICES, json=b, headers={**api_app.auth(), **key})
    assert retry.status_code == 202, retry.text
    assert retry.json()["status"] == "provisioning" and retry.json()["flow_run_id"]
    assert retry.json()["id"] != failed["id"]
    assert api_app.flow_run(retry.json()["flow_run_id"])["deployment_name"] == "provision"
    again = api_app.client.post(SERVICES, json=b, headers={**api_app.auth(), **key})
    assert again.json() == retry.json()


# PostgreSQL only: on SQLite the lookup and the INSERT share one BEGIN IMMEDIATE
# transaction (core.db.engine), so no other writer can come between them.
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_concurrent_create_with_the_same_key_replays_instead_of_409(api_app: ApiApp) -> None:
    """Another request (another API process) inserts the same order between this request's
    Idempotency-Key lookup and its INSERT: the loser answers the winner's service."""
    b, key = body(), "order-race"
    winner: list[str] = []

    def race(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if winner or not statement.lstrip().upper().startswith("INSERT INTO SERVICE_INSTANCES"):
            return
        other = ServiceInstance(tenant_id=TENANT_A, idempotency_key=key, request_hash=_digest(b),
                                **ServiceCreate(**b).model_dump())  # fmt: skip
        with Session(api_app.engine) as s, s.begin():  # a separate connection, committed
            s.add(other)
            s.flush()
            winner.append(other.id)

    app_engine = api_app.app.state.fiberflow.engine
    event.listen(app_engine, "before_cursor_execute", race)
    try:
        r = api_app.client.post(
            SERVICES, json=b, headers={**api_app.auth(), "Idempotency-Key": key}
        )
    finally:
        event.remove(app_engine, "before_cursor_execute", race)
    assert winner, "the competing insert did not happen"
    assert r.status_code == 202, r.text
    assert r.json()["id"] == winner[0]
    assert api_app.count() == 1


def _digest(b: dict[str, Any]) -> str:
    return hashlib.sha256(ServiceCreate(**b).model_dump_json().encode()).hexdigest()


def test_second_create_with_a_held_ont_serial_is_409(api_app: ApiApp) -> None:
    serial = new_serial()
    first = api_app.client.post(SERVICES, json=body(ont_serial=serial), headers=api_app.auth())
    assert first.status_code == 202
    for s in (serial, serial.lower()):
        dup = api_app.client.post(SERVICES, json=body(ont_serial=s, customer_ref="cust-2"),
                                  headers=api_app.auth())  # fmt: skip
        assert dup.status_code == 409, dup.text
        assert "ont_serial" in dup.json()["detail"]
    assert api_app.count() == 1
    # A terminated service no longer holds its serial.
    api_app.set_status(first.json()["id"], ServiceStatus.TERMINATED)
    again = api_app.client.post(SERVICES, json=body(ont_serial=serial), headers=api_app.auth())
    assert again.status_code == 202
    assert api_app.count() == 2


LONG = "c" * 65
BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown plan", body(plan="10G"), "plan"),
    ("unknown olt", body(olt="olt-9"), "olt"),
    ("port not on the OLT", body(pon_port="0/3/0"), "pon_port"),
    ("port beyond the board", body(pon_port="0/1/16"), "pon_port"),
    ("port with newline", body(pon_port="0/1/3\n"), "pon_port"),
    ("port with unicode digits", body(pon_port="\u0660/1/3"), "pon_port"),
    ("port with command", body(pon_port="0/1/3;quit"), "pon_port"),
    ("serial 15 hex", body(ont_serial="485754431A2B3C4"), "ont_serial"),
    ("serial 17 hex", body(ont_serial="485754431A2B3C4D0"), "ont_serial"),
    ("serial not hex", body(ont_serial="485754431A2B3C4G"), "ont_serial"),
    ("serial with newline", body(ont_serial="485754431A2B3C4D\n"), "ont_serial"),
    ("customer_ref newline", body(customer_ref="cust-1\nquit"), "customer_ref"),
    ("customer_ref semicolon", body(customer_ref="cust;reboot"), "customer_ref"),
    ("customer_ref double quote", body(customer_ref='cust"1'), "customer_ref"),
    ("customer_ref single quote", body(customer_ref="cust'1"), "customer_ref"),
    ("customer_ref 65 chars", body(customer_ref=LONG), "customer_ref"),
    ("customer_ref empty", body(customer_ref=""), "customer_ref"),
    ("customer_ref not a string", body(customer_ref=7), "customer_ref"),
    ("description with space", body(description="flat 3"), "description"),
    ("description with newline", body(description="a\nundo ont"), "description"),
    ("description 65 chars", body(description=LONG), "description"),
    ("plan with newline", body(plan="100M\n"), "plan"),
    ("olt oversized", body(olt="o" * 10_000), "olt"),
    ("extra field", body(vlan=100), "vlan"),
    ("missing customer_ref", body(customer_ref=None), "customer_ref"),
    ("missing plan", body(plan=None), "plan"),
    ("missing olt", body(olt=None), "olt"),
    ("missing pon_port", body(pon_port=None), "pon_port"),
    ("missing ont_serial", body(ont_serial=None), "ont_serial"),
]


def test_bad_create_bodies_are_422_naming_the_field_and_write_nothing(api_app: ApiApp) -> None:
    failures = []
    for name, b, field in BAD_BODIES:
        r = api_app.client.post(SERVICES, json=b, headers=api_app.auth())
        detail = (
            r.json().get("detail")
            if r.headers["content-type"].startswith("application/json")
            else None
        )  # noqa: E501
        if r.status_code != 422 or not isinstance(detail, str) or field not in detail:
            failures.append(f"{name}: {r.status_code} {r.text[:200]}")
    raw_cases = [
        ("malformed JSON", b'{"customer_ref": "cust-1",', "body"),
        ("JSON array", b"[1, 2]", "body"),
        ("empty body", b"", "body"),
        ("JSON null", b"null", "body"),
    ]
    for name, raw, field in raw_cases:
        r = api_app.client.post(SERVICES, content=raw, headers={
            **api_app.auth(), "Content-Type": "application/json"})  # fmt: skip
        if r.status_code != 422 or field not in r.json().get("detail", ""):
            failures.append(f"{name}: {r.status_code} {r.text[:200]}")
    for key in ("has space", "x" * 129, "semi;colon"):
        r = api_app.client.post(SERVICES, json=body(),
                                headers={**api_app.auth(), "Idempotency-Key": key})  # fmt: skip
        if r.status_code != 422 or "Idempotency-Key" not in r.json().get("detail", ""):
            failures.append(f"Idempotency-Key {key[:10]!r}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)
    assert api_app.count() == 0


# -- list -----------------------------------------------------------------------------------


def _pages(app: ApiApp, headers: dict[str, str], limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = app.client.get(SERVICES, params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next"}
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next"]
        if cursor is None:
            return pages
        assert len(pages) < 10, "paging does not end"


def test_list_pages_with_a_cursor_without_duplicates_or_gaps(api_app: ApiApp) -> None:
    ids = [api_app.insert_service(customer=f"cust-{i}") for i in range(5)]
    api_app.insert_service(tenant=TENANT_B)
    # Two rows with the very same created_at: the id breaks the tie.
    same = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with Session(api_app.engine) as s, s.begin():
        s.execute(update(ServiceInstance).where(ServiceInstance.id.in_(ids[1:3]))
                  .values(created_at=same))  # fmt: skip

    pages = _pages(api_app, api_app.auth(), limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)) == 5
    assert set(flat) == set(ids)
    # Newest first: the two future-dated rows lead, larger id first on the tie.
    assert flat[:2] == sorted(ids[1:3], reverse=True)
    assert _pages(api_app, api_app.auth(), limit=200) == [flat]


def test_list_refuses_a_bad_cursor(api_app: ApiApp) -> None:
    api_app.insert_service()
    bad = ["garbage!", "x", base64.urlsafe_b64encode(b"not-a-date|abc").decode(),
           base64.urlsafe_b64encode(b"\xff\xfe").decode(), "=" * 8]  # fmt: skip
    for cursor in bad:
        r = api_app.client.get(SERVICES, params={"cursor": cursor}, headers=api_app.auth())
        assert r.status_code == 422, (cursor, r.text)
        assert "cursor" in r.json()["detail"]
    r = api_app.client.get(SERVICES, params={"limit": 0}, headers=api_app.auth())
    assert r.status_code == 422 and "limit" in r.json()["detail"]


def test_a_cursor_with_any_utc_offset_pages_the_same(api_app: ApiApp) -> None:
    ids = [api_app.insert_service(customer=f"cust-{i}") for i in range(3)]
    first = api_app.client.get(SERVICES, params={"limit": 1}, headers=api_app.auth()).json()
    stamp, _, sid = base64.urlsafe_b64decode(first["next"]).decode().partition("|")
    at = datetime.fromisoformat(stamp)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    # The same instant written with another offset, and written without one (UTC).
    for variant in (at.astimezone(datetime.fromisoformat("2000-01-01T00:00+05:30").tzinfo),
                    at.astimezone(UTC).replace(tzinfo=None)):  # fmt: skip
        cursor = base64.urlsafe_b64encode(f"{variant.isoformat()}|{sid}".encode()).decode()
        r = api_app.client.get(SERVICES, params={"cursor": cursor}, headers=api_app.auth())
        assert r.status_code == 200, r.text
        rest = [i["id"] for i in r.json()["items"]]
        assert sorted([first["items"][0]["id"], *rest]) == sorted(ids), variant


def test_a_customer_lists_only_their_own_services(api_app: ApiApp) -> None:
    mine = {api_app.insert_service(customer="cust-1") for _ in range(2)}
    api_app.insert_service(customer="cust-2")
    api_app.insert_service(tenant=TENANT_B, customer="cust-1")  # same ref, other tenant
    r = api_app.client.get(SERVICES, headers=api_app.auth("customer", sub="cust-1"))
    assert r.status_code == 200
    assert {i["id"] for i in r.json()["items"]} == mine
    everything = api_app.client.get(SERVICES, headers=api_app.auth()).json()["items"]
    assert len(everything) == 3  # the operator sees the whole tenant, not tenant B

    active = api_app.client.get(SERVICES, params={"status": "active"}, headers=api_app.auth())
    assert len(active.json()["items"]) == 3
    none = api_app.client.get(SERVICES, params={"status": "failed"}, headers=api_app.auth())
    assert none.json()["items"] == []
    bad = api_app.client.get(SERVICES, params={"status": "bogus"}, headers=api_app.auth())
    assert bad.status_code == 422 and "status" in bad.json()["detail"]

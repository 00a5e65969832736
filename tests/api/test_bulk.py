"""``/api/v1/bulk``: bad input is a 4xx naming the problem with nothing written; a good
request writes the bulk, its items and one parent run of ``bulk-run`` (no worker here:
the run stays Scheduled); four-eyes rules on approve/reject; cancel skips what has not
started."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from fiberflow.core.db.models import BulkItem, BulkRun, ServiceStatus
from tests.fixtures.api_app import TENANT_B, ApiApp


def _post(app: ApiApp, operation: str, body: Any, sub: str = "op-1") -> Any:
    return app.client.post(f"/api/v1/bulk/{operation}", json=body, headers=app.auth(sub=sub))


def _nothing_written(app: ApiApp) -> None:
    assert app.count(BulkRun) == 0 and app.count(BulkItem) == 0


@pytest.mark.parametrize(
    ("operation", "body", "code", "needle"),
    [
        ("explode", {"olt": "olt-1"}, 404, "explode"),
        ("provision", {"olt": "olt-1"}, 404, "provision"),
        ("suspend", {"service_ids": []}, 422, "service_ids"),
        ("suspend", {}, 422, "exactly one"),
        ("suspend", {"service_ids": [str(uuid.uuid4())], "olt": "olt-1"}, 422, "exactly one"),
        ("suspend", {"service_ids": ["not-a-uuid"]}, 422, "item 0"),
        ("suspend", {"service_ids": [str(uuid.uuid4()), 7]}, 422, "service_ids"),
        ("suspend", {"olt": "olt-9"}, 422, "olt-9"),
        ("change-plan", {"olt": "olt-1"}, 422, "plan: required"),
        ("change-plan", {"olt": "olt-1", "plan": "9T"}, 422, "unknown plan '9T'"),
        ("resume", {"olt": "olt-1", "plan": "500M"}, 422, "plan: not a field"),
        ("resume", {"olt": "olt-1", "hard": True}, 422, "hard: not a field"),
        ("suspend", {"olt": "olt-1", "speed": 1}, 422, "speed"),
    ],
)
def test_bad_requests_name_the_problem_and_write_nothing(
    api_app: ApiApp, operation: str, body: Any, code: int, needle: str
) -> None:
    api_app.insert_service()
    r = _post(api_app, operation, body)
    assert r.status_code == code, r.text
    assert needle in r.text
    _nothing_written(api_app)


def test_more_than_100000_ids_is_422(api_app: ApiApp) -> None:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(100_001)]
    r = _post(api_app, "suspend", {"service_ids": ids})
    assert r.status_code == 422 and "service_ids" in r.text
    _nothing_written(api_app)


def test_unknown_or_another_tenants_ids_are_404_naming_none(api_app: ApiApp) -> None:
    mine = api_app.insert_service()
    theirs = api_app.insert_service(tenant=TENANT_B)
    unknown = str(uuid.uuid4())
    for ids in ([mine, theirs], [mine, unknown]):
        r = _post(api_app, "suspend", {"service_ids": ids})
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == "some services were not found"
        assert theirs not in r.text and unknown not in r.text and mine not in r.text
    _nothing_written(api_app)


def test_customers_may_not_start_or_read_a_bulk(api_app: ApiApp) -> None:
    sid = api_app.insert_service()
    headers = api_app.auth(role="customer", sub="cust-1")
    r = api_app.client.post("/api/v1/bulk/suspend", json={"service_ids": [sid]}, headers=headers)
    assert r.status_code == 403
    _nothing_written(api_app)


def test_a_bulk_is_202_with_deduplicated_items_and_one_parent_run(api_app: ApiApp) -> None:
    a, b = api_app.insert_service(), api_app.insert_service()
    r = _post(api_app, "suspend", {"service_ids": [a, b, a.upper()], "hard": True})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["count"] == 2
    run = api_app.flow_run(body["flow_run_id"])
    assert run["deployment_name"] == "bulk-run"
    assert run["parameters"] == {"bulk_id": body["id"]}
    got = api_app.client.get(f"/api/v1/bulk/{body['id']}", headers=api_app.auth()).json()
    assert got["status"] == "scheduled" and got["operation"] == "suspend"
    assert got["counts"] == {"pending": 2, "running": 0, "completed": 0, "failed": 0,
                             "skipped": 0}  # fmt: skip
    assert (got["total"], got["requested_by"], got["approved_by"]) == (2, "op-1", None)
    assert got["params"] == {"hard": True}
    items = api_app.client.get(f"/api/v1/bulk/{body['id']}/items", headers=api_app.auth())
    assert [i["service_id"] for i in items.json()["items"]] == [a, b]
    # Another tenant sees no such bulk.
    other = api_app.client.get(f"/api/v1/bulk/{body['id']}", headers=api_app.auth(tenant=TENANT_B))
    assert other.status_code == 404


def test_by_olt_takes_the_tenants_live_services_on_it(api_app: ApiApp) -> None:
    on = api_app.insert_service(olt="olt-1")
    api_app.insert_service(olt="olt-2")
    api_app.insert_service(olt="olt-1", status=ServiceStatus.TERMINATED)
    api_app.insert_service(olt="olt-1", tenant=TENANT_B)
    r = _post(api_app, "change-plan", {"olt": "olt-1", "plan": "500M"})
    assert r.status_code == 202, r.text
    items = api_app.client.get(f"/api/v1/bulk/{r.json()['id']}/items", headers=api_app.auth())
    assert [i["service_id"] for i in items.json()["items"]] == [on]


def test_items_page_and_filter_by_state(api_app: ApiApp) -> None:
    ids = [api_app.insert_service() for _ in range(5)]
    bulk_id = _post(api_app, "resume", {"service_ids": ids}).json()["id"]
    with Session(api_app.engine) as s, s.begin():
        s.execute(update(BulkItem).where(BulkItem.service_id.in_(ids[1:3]))
                  .values(state="failed", reason="boom"))  # fmt: skip
    url = f"/api/v1/bulk/{bulk_id}/items"
    failed = api_app.client.get(url, params={"state": "failed"}, headers=api_app.auth()).json()
    assert [(i["service_id"], i["reason"]) for i in failed["items"]] == [
        (ids[1], "boom"), (ids[2], "boom")]  # fmt: skip
    first = api_app.client.get(url, params={"limit": 3}, headers=api_app.auth()).json()
    rest = api_app.client.get(url, params={"limit": 3, "cursor": first["next"]},
                              headers=api_app.auth()).json()  # fmt: skip
    assert [i["service_id"] for i in first["items"] + rest["items"]] == ids
    assert rest["next"] is None


def _awaiting(app: ApiApp) -> str:
    ids = [app.insert_service() for _ in range(2)]
    r = _post(app, "terminate", {"service_ids": ids}, sub="alice")
    assert r.status_code == 202, r.text
    bulk_id: str = r.json()["id"]
    # What the parent records before it pauses (no worker runs it here).
    with Session(app.engine) as s, s.begin():
        s.execute(update(BulkRun).where(BulkRun.id == bulk_id).values(status="awaiting_approval"))
    return bulk_id


def test_the_requester_cannot_approve_or_reject_their_own_bulk(api_app: ApiApp) -> None:
    bulk_id = _awaiting(api_app)
    for action in ("approve", "reject"):
        r = api_app.client.post(f"/api/v1/bulk/{bulk_id}/{action}",
                                headers=api_app.auth(sub="alice"))  # fmt: skip
        assert r.status_code == 403, r.text
        assert r.json()["detail"] == "the requester cannot approve their own bulk run"
    got = api_app.client.get(f"/api/v1/bulk/{bulk_id}", headers=api_app.auth()).json()
    assert got["approved_by"] is None and got["rejected_by"] is None


def test_another_operator_approves_once(api_app: ApiApp) -> None:
    bulk_id = _awaiting(api_app)
    r = api_app.client.post(f"/api/v1/bulk/{bulk_id}/approve", headers=api_app.auth(sub="bob"))
    assert r.status_code == 200, r.text
    assert r.json()["approved_by"] == "bob"
    again = api_app.client.post(f"/api/v1/bulk/{bulk_id}/reject", headers=api_app.auth(sub="carol"))
    assert again.status_code == 409


def test_approve_is_409_unless_awaiting_approval(api_app: ApiApp) -> None:
    sid = api_app.insert_service()
    bulk_id = _post(api_app, "suspend", {"service_ids": [sid]}, sub="alice").json()["id"]
    r = api_app.client.post(f"/api/v1/bulk/{bulk_id}/approve", headers=api_app.auth(sub="bob"))
    assert r.status_code == 409 and "awaiting_approval" in r.text


def test_cancel_skips_what_has_not_started(api_app: ApiApp) -> None:
    ids = [api_app.insert_service() for _ in range(3)]
    bulk_id = _post(api_app, "reprovision", {"service_ids": ids}).json()["id"]
    with Session(api_app.engine) as s, s.begin():
        s.execute(update(BulkItem).where(BulkItem.service_id == ids[0]).values(state="running"))
    r = api_app.client.post(f"/api/v1/bulk/{bulk_id}/cancel", headers=api_app.auth())
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["skipped"] == 2 and r.json()["counts"]["running"] == 1
    skipped = api_app.client.get(f"/api/v1/bulk/{bulk_id}/items", params={"state": "skipped"},
                                 headers=api_app.auth()).json()["items"]  # fmt: skip
    assert {i["reason"] for i in skipped} == {"cancelled"}
    with Session(api_app.engine) as s:
        row = s.get(BulkRun, bulk_id)
        assert row is not None and row.cancel_requested_at is not None

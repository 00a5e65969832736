"""Tenant and customer isolation on every route, from one table over the app's routes.

Every route under /api/v1 and /portal must have an entry in ROUTES; a new route
without one fails this test, so it cannot ship without an isolation check.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from fiberflow.core.db.models import ServiceStatus
from fiberflow.core.db.models.bulk import BulkItem, BulkRun, BulkStatus, ItemState
from tests.fixtures.api_app import TENANT_A, TENANT_B, ApiApp, app_routes, new_serial

S = "/api/v1/services"


@dataclass(frozen=True)
class Entry:
    """How one route is checked.

    kind:
      service    takes {service_id}: others get 404 (403 where their role is refused first)
      collection lists services: others' lists never hold tenant A's service
      tenant     per-tenant aggregate: tenant B's figures never count tenant A
      create     makes a service: another tenant's same Idempotency-Key is another order
      bulk       takes {bulk_id} (tenant A's bulk run over its service): others get 404
                 (403 where their role is refused first)
      bulk-create  starts a bulk run over service ids: tenant A's ids are 404 to tenant B
                 and the answer names none of them
      shared     no tenant data (inventory, portal sign-in/out, static assets)
    operator_only: a customer is refused (403) before any lookup.
    owner: what tenant A's operator gets for A's *pending* service (proves the lookup
      works, so a 404 for others means something).
    """

    kind: str
    operator_only: bool = False
    owner: int = 200


ROUTES: dict[tuple[str, str], Entry] = {
    ("POST", S): Entry("create", operator_only=True),
    ("GET", S): Entry("collection"),
    ("GET", S + "/{service_id}"): Entry("service"),
    ("POST", S + "/{service_id}/suspend"): Entry("service", operator_only=True, owner=409),
    ("POST", S + "/{service_id}/resume"): Entry("service", operator_only=True, owner=409),
    ("POST", S + "/{service_id}/terminate"): Entry("service", operator_only=True, owner=409),
    ("GET", S + "/{service_id}/events"): Entry("service"),
    # No body: 422 for the owner (checked after the lookup), 404 for others.
    ("POST", S + "/{service_id}/replace-ont"): Entry("service", operator_only=True, owner=422),
    # No body: 422 for the owner (checked after the lookup), 404 for others.
    ("POST", S + "/{service_id}/change-plan"): Entry("service", operator_only=True, owner=422),
    # Drift checks: a pending service has no plan state to compare or repair (409).
    ("POST", S + "/{service_id}/reprovision"): Entry("service", operator_only=True, owner=409),
    ("GET", S + "/{service_id}/drift"): Entry("service", operator_only=True, owner=409),
    # Fleet-wide (the devices are shared); another tenant's check and the service entries
    # of other tenants in a report: tests/api/test_drift_checks.py.
    ("POST", "/api/v1/drift-checks"): Entry("shared", operator_only=True),
    ("GET", "/api/v1/drift-checks/{check_id}"): Entry("shared", operator_only=True),
    # Zero-touch activation. PATCH without a body: 422 for the owner, 404 for others.
    ("PATCH", S + "/{service_id}"): Entry("service", operator_only=True, owner=422),
    # Device sightings are shared; its waiting orders are the caller's tenant's only
    # (tests/api/test_zero_touch.py checks another tenant's order is not listed).
    ("GET", "/api/v1/discovery"): Entry("shared", operator_only=True),
    ("GET", S + "/lifecycle/statistics"): Entry("tenant", operator_only=True),
    ("GET", "/api/v1/inventory"): Entry("shared", operator_only=True),
    ("GET", "/api/v1/realtime/service-lifecycle/{service_id}"): Entry("service"),
    ("GET", "/portal"): Entry("shared"),
    ("GET", "/portal/login"): Entry("shared"),
    ("POST", "/portal/logout"): Entry("shared"),
    ("GET", "/portal/services"): Entry("collection"),
    ("GET", "/portal/services/{service_id}"): Entry("service"),
    ("GET", "/portal/static/{name}"): Entry("shared"),
    # Bulk runs (operators only). Tenant A's bulk is completed: cancel, approve and
    # reject are 409 for its owner (checked after the lookup).
    ("POST", "/api/v1/bulk/{operation}"): Entry("bulk-create", operator_only=True),
    ("GET", "/api/v1/bulk/{bulk_id}"): Entry("bulk", operator_only=True),
    ("GET", "/api/v1/bulk/{bulk_id}/items"): Entry("bulk", operator_only=True),
    ("POST", "/api/v1/bulk/{bulk_id}/cancel"): Entry("bulk", operator_only=True, owner=409),
    ("POST", "/api/v1/bulk/{bulk_id}/approve"): Entry("bulk", operator_only=True, owner=409),
    ("POST", "/api/v1/bulk/{bulk_id}/reject"): Entry("bulk", operator_only=True, owner=409),
    ("GET", "/api/v1/realtime/bulk/{bulk_id}"): Entry("bulk", operator_only=True),
    ("GET", "/portal/bulk/{bulk_id}"): Entry("bulk", operator_only=True),
}

GUESSES = ["1", "0", "abc", "lifecycle", "' OR '1'='1", "%2e%2e", "a" * 1000,
           "00000000-0000-0000-0000-000000000000", "5f0c2a9e1d7b4c559a3e0c6d2b7f1a11",
           "{5f0c2a9e-1d7b-4c55-9a3e-0c6d2b7f1a11}", "%00", "null", "-1"]  # fmt: skip


def _served(app: ApiApp) -> set[tuple[str, str]]:
    return {
        (method, path)
        for method, path, route in app_routes(app.app)
        if (isinstance(route, APIRoute) and path.startswith("/api/v1"))
        or path.startswith("/portal")
    }


@dataclass
class Answer:
    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def _call(app: ApiApp, method: str, path: str, sid: str, headers: dict[str, str]) -> Answer:
    # At the ASGI level: an event stream that wrongly opened would never end in TestClient.
    url = path.replace("{service_id}", quote(sid, safe="%"))
    url = url.replace("{bulk_id}", quote(sid, safe="%"))
    return Answer(*app.first_response(method, url, headers))


def _insert_bulk(app: ApiApp, sid: str) -> str:
    """Tenant A's finished bulk suspension over its service ``sid``."""
    with Session(app.engine) as s, s.begin():
        bulk = BulkRun(tenant_id=TENANT_A, operation="suspend", params={},
                       status=BulkStatus.COMPLETED.value, requested_by="op-a")  # fmt: skip
        s.add(bulk)
        s.flush()
        reason = "status pending forbids suspension"
        s.add(BulkItem(bulk_id=bulk.id, service_id=sid, position=0,
                       state=ItemState.SKIPPED.value, reason=reason))  # fmt: skip
        return bulk.id


def test_every_route_isolates_tenants_and_customers(api_app: ApiApp) -> None:
    app = api_app
    served = _served(app)
    assert served == set(ROUTES), (
        "routes without an isolation entry (add them to ROUTES): "
        f"{sorted(served - set(ROUTES))}; entries for routes that are gone: "
        f"{sorted(set(ROUTES) - served)}"
    )

    # Tenant A: a pending service of cust-1 (every operation answers 409: nothing launches).
    a_serial = new_serial()
    sid = app.insert_service(customer="cust-1", status=ServiceStatus.PENDING, serial=a_serial,
                             idempotency_key="order-1")  # fmt: skip
    owner_op = app.auth("operator", TENANT_A, "op-a")
    owner_cust = app.auth("customer", TENANT_A, "cust-1")
    others = {
        "tenant B operator": (app.auth("operator", TENANT_B, "op-b"), False),
        "tenant B customer with the same ref": (app.auth("customer", TENANT_B, "cust-1"), True),
        "tenant A, another customer": (app.auth("customer", TENANT_A, "cust-2"), True),
    }
    failures: list[str] = []
    bulk_id = _insert_bulk(app, sid)

    def expect(what: str, r: Any, codes: set[int]) -> None:
        if r.status_code not in codes:
            failures.append(f"{what}: {r.status_code} (expected {sorted(codes)}) {r.text[:120]!r}")
        elif a_serial in r.text or (r.status_code < 400 and sid in r.text):
            # (an error may echo the id the caller sent; never the service's data)
            failures.append(f"{what}: tenant A's service leaks into the answer")

    for (method, path), entry in sorted(ROUTES.items()):
        where = f"{method} {path}"
        if entry.kind == "service":
            r = _call(app, method, path, sid, owner_op)
            if r.status_code != entry.owner:
                failures.append(f"{where} owner operator: {r.status_code}, not {entry.owner}")
            if not entry.operator_only:
                r = _call(app, method, path, sid, owner_cust)
                if r.status_code != entry.owner:
                    failures.append(f"{where} owning customer: {r.status_code}")
            for who, (headers, is_customer) in others.items():
                refused = 403 if entry.operator_only and is_customer else 404
                expect(f"{where} as {who}", _call(app, method, path, sid, headers), {refused})
                expect(f"{where} upper-case id as {who}",
                       _call(app, method, path, sid.upper(), headers), {refused})  # fmt: skip
            for guess in [str(uuid.uuid4()), *GUESSES]:
                r = _call(app, method, path, guess, owner_op)
                expect(f"{where} guessed {guess[:40]!r}", r, {404, 422})
            r = _call(app, method, path, str(uuid.uuid4()), owner_op)
            expect(f"{where} random UUID", r, {404})
        elif entry.kind == "collection":
            r = _call(app, method, path, sid, owner_op)
            if r.status_code != 200 or sid not in r.text:
                failures.append(f"{where} owner operator does not see the service")
            for who, (headers, _) in others.items():
                expect(f"{where} as {who}", _call(app, method, path, sid, headers), {200})
        elif entry.kind == "tenant":
            mine = _call(app, method, path, sid, owner_op).json()
            theirs = _call(app, method, path, sid, others["tenant B operator"][0])
            expect(f"{where} as tenant B operator", theirs, {200})
            if mine.get("total_services") != 1 or theirs.json().get("total_services") != 0:
                failures.append(f"{where}: totals A={mine} B={theirs.text[:200]}")
        elif entry.kind == "bulk":
            for who, code in (("owner operator", entry.owner),):
                r = _call(app, method, path, bulk_id, owner_op)
                if r.status_code != code:
                    failures.append(f"{where} {who}: {r.status_code}, not {code} {r.text[:120]!r}")
            for who, (headers, is_customer) in [
                *others.items(),
                ("tenant A customer", (owner_cust, True)),
            ]:
                refused = 403 if is_customer else 404
                expect(f"{where} as {who}", _call(app, method, path, bulk_id, headers), {refused})
            for guess in [str(uuid.uuid4()), *GUESSES]:
                r = _call(app, method, path, guess, owner_op)
                expect(f"{where} guessed {guess[:40]!r}", r, {404, 422})
        elif entry.kind == "bulk-create":
            url = path.replace("{operation}", "suspend")
            r = app.client.post(url, json={"service_ids": [sid]},
                                headers=others["tenant B operator"][0])  # fmt: skip
            expect(f"{where} tenant B naming A's service", r, {404})
            if sid in r.text:
                failures.append(f"{where}: the 404 names tenant A's service")
            r = app.client.post(url, json={"service_ids": [sid]}, headers=owner_cust)
            expect(f"{where} as tenant A customer", r, {403})
        elif entry.kind == "create":
            body = {"customer_ref": "cust-1", "plan": "100M", "olt": "olt-1",
                    "pon_port": "0/1/4", "ont_serial": new_serial()}  # fmt: skip
            headers = {**others["tenant B operator"][0], "Idempotency-Key": "order-1"}
            r = app.client.post(path, json=body, headers=headers)
            expect(f"{where} tenant B reusing A's Idempotency-Key", r, {202})
        elif entry.kind != "shared":
            failures.append(f"{where}: unknown kind {entry.kind}")
    assert not failures, f"{len(failures)} isolation failures:\n" + "\n".join(failures[:50])
    assert app.service(sid).status == "pending"

"""The operator's bulk run page ``/portal/bulk/{id}``: over HTTP (who may open it, the
CSRF token that lets the cookie approve), and in headless Chromium against a real API
process (filled from the replay, live updates, the four-eyes buttons).

A bulk run is a row inserted directly and events published with events/bulk.py, as
the parent flow would publish them (no Prefect: the row has no parent run to resume).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from fiberflow.api.csrf import CSRF_HEADER
from fiberflow.core.db.models import BulkRun
from tests.fixtures.browser import PortalStack, shoot
from tests.fixtures.bulk_page import SimulatedBulk, insert_bulk

WAIT_MS = 20_000  # how long expect() waits for the page to get there (not a speed bound)


@contextmanager
def signed_in(stack: PortalStack, sub: str, role: str = "operator") -> Iterator[httpx.Client]:
    """A client that went through the sign-in link: it holds the session cookie only."""
    with httpx.Client(base_url=stack.url, timeout=15) as c:
        r = c.get("/portal/login", params={"token": stack.token(role, sub)})
        assert r.status_code == 303, r.text
        yield c


def _csrf(html: str) -> str:
    found = re.search(r'data-csrf="([0-9a-f]*)"', html)
    assert found is not None, "no data-csrf on the page"
    return found.group(1)


def _row(stack: PortalStack, bulk_id: str) -> BulkRun:
    with Session(stack.engine) as s:
        row = s.get(BulkRun, bulk_id)
        assert row is not None
        return row


# -- over HTTP ---------------------------------------------------------------------------


def test_who_may_open_the_page(portal_stack: PortalStack) -> None:
    bulk = insert_bulk(portal_stack.engine, portal_stack.tenant_id)
    path = f"/portal/bulk/{bulk.id}"
    with httpx.Client(base_url=portal_stack.url, timeout=15) as anonymous:
        r = anonymous.get(path)
        assert r.status_code == 401 and "sign-in link" in r.text
    with signed_in(portal_stack, "alice", role="customer") as customer:
        r = customer.get(path)
        assert r.status_code == 403 and "Operators only" in r.text
    with signed_in(portal_stack, "ops-2") as operator:
        r = operator.get(path)
        assert r.status_code == 200 and 'data-testid="bulk-status"' in r.text
        assert r.headers["cache-control"] == "no-store"  # the page carries a CSRF token
        for missing in (str(uuid.uuid4()), "not-a-uuid"):
            r = operator.get(f"/portal/bulk/{missing}")
            assert r.status_code == 404 and "Bulk run not found" in r.text
    other = insert_bulk(portal_stack.engine, str(uuid.uuid4()))
    with signed_in(portal_stack, "ops-2") as operator:
        assert operator.get(f"/portal/bulk/{other.id}").status_code == 404


def test_buttons_rendered_for_another_operator_only(portal_stack: PortalStack) -> None:
    bulk = insert_bulk(portal_stack.engine, portal_stack.tenant_id, requested_by="ops-1",
                       status="awaiting_approval")  # fmt: skip
    with signed_in(portal_stack, "ops-1") as requester:
        assert 'data-testid="bulk-approve"' not in requester.get(f"/portal/bulk/{bulk.id}").text
    with signed_in(portal_stack, "ops-2") as other:
        html = other.get(f"/portal/bulk/{bulk.id}").text
    assert 'data-testid="bulk-approve"' in html and 'data-testid="bulk-reject"' in html
    assert 'data-testid="bulk-decision" hidden' not in html  # shown: awaiting approval
    running = insert_bulk(portal_stack.engine, portal_stack.tenant_id, requested_by="ops-1")
    with signed_in(portal_stack, "ops-2") as other:
        # Rendered (it may come to await approval live) but hidden while running.
        assert 'data-testid="bulk-decision" hidden' in other.get(f"/portal/bulk/{running.id}").text


def test_the_cookie_approves_only_with_the_pages_csrf_token(portal_stack: PortalStack) -> None:
    bulk = insert_bulk(portal_stack.engine, portal_stack.tenant_id, requested_by="ops-1",
                       status="awaiting_approval")  # fmt: skip
    approve = f"/api/v1/bulk/{bulk.id}/approve"
    with signed_in(portal_stack, "ops-2") as c:
        token = _csrf(c.get(f"/portal/bulk/{bulk.id}").text)
        assert token
        # The cookie alone (what another site could make the browser send): refused.
        name = CSRF_HEADER.encode()
        bad: list[dict[bytes, bytes]] = [{}, {name: b"0" * 64}, {name: "é".encode("latin-1")}]
        for headers in bad:
            r = c.post(approve, headers=headers)
            assert r.status_code == 401, (headers, r.text)
        assert _row(portal_stack, bulk.id).approved_by is None
        r = c.post(approve, headers={CSRF_HEADER: token})
        assert r.status_code == 200, r.text
        assert r.json()["approved_by"] == "ops-2"
    # Another session's token is no good for this one.
    with signed_in(portal_stack, "ops-3") as c:
        c.get(f"/portal/bulk/{bulk.id}")
        r = c.post(f"/api/v1/bulk/{bulk.id}/reject", headers={CSRF_HEADER: token})
        assert r.status_code == 401
    assert _row(portal_stack, bulk.id).rejected_by is None


# -- in Chromium -------------------------------------------------------------------------


@pytest.fixture
def browser_context(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="UTC"
    )
    context.set_default_timeout(WAIT_MS)
    try:
        yield context
    finally:
        context.close()


def _expect() -> Any:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    return expect


def open_bulk(context: Any, stack: PortalStack, bulk_id: str, sub: str) -> Any:
    page = context.new_page()
    response = page.goto(stack.login_url(sub, role="operator"))
    assert response is not None and response.ok
    response = page.goto(f"{stack.url}/portal/bulk/{bulk_id}")
    assert response is not None and response.status == 200
    return page


def _bar(page: Any) -> Any:
    return page.get_by_role("progressbar")


def _listed(page: Any, testid: str) -> list[tuple[str, str]]:
    items = page.get_by_test_id(testid).locator("li")
    return [
        (items.nth(i).get_attribute("data-service-id") or "",
         items.nth(i).locator(".item-reason").inner_text())
        for i in range(items.count())
    ]  # fmt: skip


@pytest.mark.browser
@pytest.mark.slow
def test_page_fills_from_the_replay_then_follows_live(
    portal_stack: PortalStack, browser_context: Any
) -> None:
    stack, expect = portal_stack, _expect()
    bulk: SimulatedBulk = insert_bulk(stack.engine, stack.tenant_id, services=4)
    a, b, c, d = bulk.service_ids
    pub = stack.publisher
    bulk.progress(pub, status="running")
    bulk.progress(pub, {a: ("running", None), b: ("running", None)})
    failed, skipped = "olt-1: ONT 0/1/3 0 did not answer", "service is suspended"
    bulk.progress(pub, {a: ("failed", failed), b: ("completed", None), c: ("skipped", skipped)})

    page = open_bulk(browser_context, stack, bulk.id, "ops-2")
    expect(page.get_by_test_id("connection")).to_have_text("Live updates on.")
    expect(page.get_by_test_id("bulk-status")).to_have_text("Running…")
    expect(_bar(page)).to_have_attribute("aria-valuenow", "75")  # 3 of 4 finished
    expect(page.get_by_test_id("count-failed")).to_have_text("1")
    expect(page.get_by_test_id("bulk-failed").locator("li")).to_have_count(1)
    assert _listed(page, "bulk-failed") == [(a, failed)]
    assert _listed(page, "bulk-skipped") == [(c, skipped)]
    expect(page.get_by_test_id("bulk-approve")).to_be_hidden()  # not awaiting approval
    shoot(page, "bulk-page-running")

    # Live: the last service, then the end of the run.
    bulk.progress(pub, {d: ("running", None)})
    expect(page.get_by_test_id("count-running")).to_have_text("1")
    bulk.progress(pub, {d: ("skipped", "cancelled")})
    bulk.completed(pub, "cancelled")
    expect(page.get_by_test_id("bulk-status")).to_have_text("Cancelled")
    expect(_bar(page)).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_test_id("percent")).to_have_text("100 %")
    expect(page.get_by_test_id("bulk-skipped").locator("li")).to_have_count(2)
    assert _listed(page, "bulk-skipped") == [(c, skipped), (d, "cancelled")]
    shoot(page, "bulk-page-cancelled")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_four_eyes_buttons(portal_stack: PortalStack, browser_context: Any, action: str) -> None:
    stack, expect = portal_stack, _expect()
    bulk = insert_bulk(stack.engine, stack.tenant_id, requested_by="ops-1", status="scheduled",
                       operation="terminate")  # fmt: skip
    bulk.progress(stack.publisher)  # scheduled: no buttons yet

    requester = open_bulk(browser_context, stack, bulk.id, "ops-1")
    other = open_bulk(browser_context, stack, bulk.id, "ops-2")
    for page in (requester, other):
        expect(page.get_by_test_id("connection")).to_have_text("Live updates on.")
    expect(other.get_by_test_id("bulk-approve")).to_be_hidden()

    # The run comes to wait for approval (as the parent flow pauses): live.
    with Session(stack.engine) as s, s.begin():
        row = s.get(BulkRun, bulk.id)
        assert row is not None
        row.status = "awaiting_approval"
    bulk.progress(stack.publisher, status="awaiting_approval")
    expect(other.get_by_test_id("bulk-status")).to_have_text("Awaiting approval")
    expect(other.get_by_test_id("bulk-approve")).to_be_visible()
    expect(other.get_by_test_id("bulk-reject")).to_be_visible()
    expect(requester.get_by_test_id("bulk-status")).to_have_text("Awaiting approval")
    expect(requester.get_by_test_id("bulk-approve")).to_have_count(0)
    expect(requester.get_by_test_id("bulk-reject")).to_have_count(0)
    shoot(other, f"bulk-page-awaiting-approval-{action}")

    with other.expect_response(f"**/api/v1/bulk/{bulk.id}/{action}") as answer:
        other.get_by_test_id(f"bulk-{action}").click()
    request = answer.value.request
    assert request.method == "POST" and request.headers.get("x-csrf-token")
    assert answer.value.status == 200, answer.value.text()
    decided = "Approved" if action == "approve" else "Rejected"
    expect(other.get_by_test_id("bulk-decision-message")).to_contain_text(decided)
    expect(other.get_by_test_id("bulk-approve")).to_be_hidden()
    row = _row(stack, bulk.id)
    assert (row.approved_by, row.rejected_by) == (
        ("ops-2", None) if action == "approve" else (None, "ops-2")
    )

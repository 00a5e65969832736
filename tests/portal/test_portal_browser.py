"""The progress page in headless Chromium against a real API process.

A lifecycle run is simulated by publishing the events a worker's state hooks
publish (DB event log + Redis) with the real step names; the page follows them
over SSE, or by polling when SSE is blocked, across an API restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fiberflow.core.db.models import Operation
from tests.fixtures.browser import PortalStack, SimulatedRun, shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
WAIT_MS = 20_000  # how long expect() waits for the page to get there (not a speed bound)
POLLING_TEXT = "Live updates unavailable — checking every few seconds"


@pytest.fixture
def browser_context(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(WAIT_MS)
    try:
        yield context
    finally:
        context.close()


def _expect() -> Any:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    return expect


def open_progress(
    context: Any, stack: PortalStack, service_id: str, customer: str, list_shot: str = ""
) -> Any:
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.requests = requests  # what the page asked for, to check it does not poll
    response = page.goto(stack.login_url(customer))
    assert response is not None and response.ok
    assert page.url.endswith("/portal/services")
    if list_shot:
        shoot(page, list_shot)
    page.get_by_role("link", name="Fibre 500M").first.click()
    page.wait_for_url(f"**/portal/services/{service_id}")
    return page


def bar(page: Any) -> Any:
    return page.get_by_role("progressbar")


def expect_step(page: Any, n: int, total: int) -> None:
    expect = _expect()
    expect(page.get_by_test_id("phase")).to_have_text(f"Step {n} of {total}")
    # Steps finished so far; the last step ("completed") is the whole way.
    percent = 100 if n == total else round((n - 1) / total * 100)
    expect(bar(page)).to_have_attribute("aria-valuenow", str(percent))


def expect_active_at_100(page: Any, total: int = 6) -> None:
    expect = _expect()
    expect(page.get_by_test_id("service-status")).to_have_text("Active")
    expect(bar(page)).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_test_id("percent")).to_have_text("100 %")
    done = page.locator('[data-testid="steps"] li[data-state="done"]')
    expect(done).to_have_count(total)
    for i in range(total):
        assert done.nth(i).get_attribute("data-duration"), f"step {i + 1} has no duration"


def events_polls(page: Any) -> list[str]:
    return [u for u in page.requests if "/events" in u and "/realtime/" not in u]


def test_provisioning_live_step_by_step_to_active(
    portal_stack: PortalStack, browser_context: Any
) -> None:
    expect = _expect()
    sid = portal_stack.new_service("alice")
    run = portal_stack.begin(sid, Operation.PROVISIONING)
    page = open_progress(browser_context, portal_stack, sid, "alice")
    expect(page.get_by_test_id("phase")).to_have_text("Waiting for provisioning to start…")
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_attribute("id", "main")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_test_id("service-status")).to_have_text("Provisioning…")
    expect(bar(page)).to_have_attribute("aria-valuemin", "0")
    expect(bar(page)).to_have_attribute("aria-valuemax", "100")
    for n in range(1, run.total + 1):
        run.step(n)
        expect_step(page, n, run.total)
        expect(page.get_by_test_id("step-message")).to_have_text(run.steps[n - 1].message)
        expect(page.locator("#announcer")).to_contain_text(f"Step {n} of {run.total}")
        if n == 3:
            shoot(page, "portal-desktop-step3")
    run.complete()
    expect_active_at_100(page, run.total)
    expect(page.get_by_test_id("phase")).to_have_text("Provisioning complete")
    expect(page.locator("#ip-address")).to_have_text("192.0.2.10")  # re-read when done
    expect(page.get_by_test_id("connection")).to_have_attribute("data-mode", "live")
    expect(page.get_by_test_id("last-updated")).not_to_have_text("")
    shoot(page, "portal-desktop-active")
    assert events_polls(page) == [], "the page polled although SSE worked"

    # A later operation shows the same way, and the bar stays at 100 when done.
    suspension = portal_stack.begin(sid, Operation.SUSPENSION)
    suspension.step(1)
    expect(page.get_by_test_id("phase")).to_have_text("Step 1 of 4")
    expect(page.get_by_test_id("service-status")).to_have_text("Suspending…")
    for n in range(2, suspension.total + 1):
        suspension.step(n)
    suspension.complete()
    expect(page.get_by_test_id("service-status")).to_have_text("Suspended")
    expect(bar(page)).to_have_attribute("aria-valuenow", "100")
    page.reload()  # a fresh load replays the latest operation from the relay
    expect(page.get_by_test_id("service-status")).to_have_text("Suspended")
    expect(page.get_by_test_id("phase")).to_have_text("Suspension complete")
    expect(bar(page)).to_have_attribute("aria-valuenow", "100")


def test_failed_run_shows_failed_with_the_error_at_360px(
    portal_stack: PortalStack, chromium: Any
) -> None:
    expect = _expect()
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        sid = portal_stack.new_service("carol")
        run = portal_stack.begin(sid, Operation.PROVISIONING)
        page = open_progress(context, portal_stack, sid, "carol", "portal-360-services")
        for n in (1, 2, 3):
            run.step(n)
        expect_step(page, 3, run.total)
        error = "OLT olt-1 refused the ONT: port 0/1/3 is full"
        run.step(3, "failed", error)
        run.step(2, "rolled_back", "Released the IP address and VLAN")
        run.fail(3, error)
        status = page.get_by_test_id("service-status")
        expect(status).to_contain_text("Failed")
        expect(status).to_contain_text(error)
        expect(page.get_by_test_id("phase")).to_have_text("Provisioning failed at step 3 of 6")
        expect(bar(page)).to_have_attribute("aria-valuenow", "33")  # where it stopped
        expect(page.locator('[data-testid="steps"] li[data-step="3"]')).to_have_attribute(
            "data-state", "failed"
        )
        expect(page.locator("#announcer")).to_contain_text("failed")
        # Nothing is wider than the phone's screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(page, "portal-360-failed")
    finally:
        context.close()


def test_opened_mid_run_shows_the_steps_already_done(
    portal_stack: PortalStack, browser_context: Any
) -> None:
    expect = _expect()
    sid = portal_stack.new_service("dave")
    run = portal_stack.begin(sid, Operation.PROVISIONING)
    for n in (1, 2, 3, 4):
        run.step(n)
    page = open_progress(browser_context, portal_stack, sid, "dave")
    expect_step(page, 4, run.total)
    steps = page.locator('[data-testid="steps"] li')
    expect(steps.locator('xpath=self::*[@data-state="done"]')).to_have_count(3)
    expect(page.locator('[data-testid="steps"] li[data-step="4"]')).to_have_attribute(
        "data-state", "running"
    )
    expect(page.locator('[data-testid="steps"] li[data-step="5"]')).to_have_attribute(
        "data-state", "pending"
    )
    for n in (5, 6):
        run.step(n)
    run.complete()
    expect_active_at_100(page, run.total)


def test_sse_blocked_the_page_finishes_by_polling_and_switches_back(
    portal_stack: PortalStack, browser_context: Any
) -> None:
    expect = _expect()
    sid = portal_stack.new_service("erin")
    run = portal_stack.begin(sid, Operation.PROVISIONING)
    # A proxy that refuses event streams.
    browser_context.route("**/api/v1/realtime/**", lambda route: route.abort())
    page = open_progress(browser_context, portal_stack, sid, "erin")
    connection = page.get_by_test_id("connection")
    expect(connection).to_contain_text(POLLING_TEXT)
    expect(connection).to_have_attribute("data-mode", "polling")
    for n in (1, 2, 3):
        run.step(n)
    expect_step(page, 3, run.total)
    shoot(page, "portal-desktop-polling")
    assert events_polls(page), "the page never polled the events history"

    # The proxy lets streams through again: the page goes back to SSE.
    browser_context.unroute("**/api/v1/realtime/**")
    expect(connection).to_have_attribute("data-mode", "live")
    polls = len(events_polls(page))
    for n in (4, 5, 6):
        run.step(n)
    run.complete()
    expect_active_at_100(page, run.total)
    assert len(events_polls(page)) <= polls + 1, "the page kept polling once SSE was back"


def test_api_restarted_mid_run_the_page_recovers_and_finishes(
    portal_stack: PortalStack, browser_context: Any
) -> None:
    expect = _expect()
    sid = portal_stack.new_service("frank")
    run = portal_stack.begin(sid, Operation.PROVISIONING)
    page = open_progress(browser_context, portal_stack, sid, "frank")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-mode", "live")
    run.step(1)
    run.step(2)
    expect_step(page, 2, run.total)

    portal_stack.api.stop()
    expect(page.get_by_test_id("connection")).not_to_have_attribute("data-mode", "live")
    # The worker goes on while the API is down: events land in the log and Redis.
    run.step(3)
    run.step(4)
    portal_stack.api.start()  # same port

    expect_step(page, 4, run.total)
    run.step(5)
    run.step(6)
    run.complete()
    expect_active_at_100(page, run.total)
    _check_no_duplicate_steps(run, page)


def _check_no_duplicate_steps(run: SimulatedRun, page: Any) -> None:
    numbers = page.locator('[data-testid="steps"] li').evaluate_all(
        "items => items.map(li => li.dataset.step)"
    )
    assert numbers == [str(n) for n in range(1, run.total + 1)]

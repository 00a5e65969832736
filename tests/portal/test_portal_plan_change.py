"""A plan change on the progress page in headless Chromium: the page learns the
operation from the server's catalogue (it is in no table of the page's script), shows
"Step 3 of 5" with "Updating your speed on the BNG", the outcome of the applying step,
and a failed change as what it is: the service still active on its old plan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from fiberflow.api.portal.render import _operations_json
from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceInstance
from fiberflow.events import schema
from tests.fixtures.browser import PortalStack, SimulatedRun, shoot

WAIT_MS = 20_000  # how long expect() waits for the page to get there (not a speed bound)
APPLIED = "Speed changed on the live session (CoA acknowledged)"


def test_the_page_gets_every_operation_of_the_catalogue() -> None:
    data = json.loads(_operations_json())
    assert list(data["operations"]) == [op.value for op in catalogue.OPERATIONS]
    change = data["operations"]["plan_change"]
    assert change == {
        "title": "Plan change",
        "running": "Changing plan…",
        "done": "Active",
        "ends_in": "active",
        "starts_from": ["active"],
        "restores_on_failure": True,
    }
    assert "changing_plan" in data["transitional"]
    assert data["statuses"]["changing_plan"] == "Changing plan…"


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="UTC"
    )
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _begin(stack: PortalStack, sid: str) -> SimulatedRun:
    with Session(stack.engine) as s, s.begin():
        s.get_one(ServiceInstance, sid).begin(Operation.PLAN_CHANGE)
    return SimulatedRun(stack, sid, stack.tenant_id, Operation.PLAN_CHANGE)


def _fail_restored(run: SimulatedRun, step: int, error: str) -> None:
    """What a failed plan change does: the row back to active, then the failed event."""
    with Session(run.stack.engine) as s, s.begin():
        s.execute(
            update(ServiceInstance)
            .where(ServiceInstance.id == run.service_id)
            .values(status="active", error=error)
        )
    run._publish(
        schema.failed(
            Operation.PLAN_CHANGE,
            service_id=run.service_id,
            tenant_id=run.tenant_id,
            operation_id=run.run_id,
            step=step,
            error=error,
        )
    )


@pytest.mark.browser
@pytest.mark.slow
def test_a_plan_change_live_then_one_that_fails(portal_stack: PortalStack, page: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    sid = portal_stack.new_service(customer="carol", status="active")
    page.goto(portal_stack.login_url("carol"))
    page.goto(f"{portal_stack.url}/portal/services/{sid}")
    status = page.get_by_test_id("service-status")
    phase = page.get_by_test_id("phase")
    expect(status).to_have_text("Active")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-mode", "live")

    run = _begin(portal_stack, sid)
    run.step(1)
    expect(phase).to_have_text("Step 1 of 5")
    expect(page.locator("#op-title")).to_have_text("Plan change")
    expect(status).to_have_text("Changing plan…")
    run.step(2)
    run.step(3)
    expect(phase).to_have_text("Step 3 of 5")
    expect(page.get_by_test_id("step-message")).to_have_text("Updating your speed on the BNG")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "40")
    shoot(page, "portal-plan-change-step-3")
    run.step(4)
    run.step(4, "applied", APPLIED)
    expect(page.get_by_test_id("step-message")).to_have_text(APPLIED)
    expect(phase).to_have_text("Step 4 of 5")
    run.step(5)
    with Session(portal_stack.engine) as s, s.begin():
        s.get_one(ServiceInstance, sid).plan = "1G"  # what the last step stores
    run.complete()
    expect(status).to_have_text("Active")
    expect(phase).to_have_text("Plan change complete")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator('[data-testid="steps"] li[data-state="done"]')).to_have_count(5)
    expect(page.get_by_test_id("service-plan")).to_have_text("Fibre 1G")

    # A second change fails at the BNG: compensated, the service stays active.
    failing = _begin(portal_stack, sid)
    for n in (1, 2, 3):
        failing.step(n)
    expect(phase).to_have_text("Step 3 of 5")
    failing.step(2, "rolled_back", "Restored RADIUS group 1G")
    _fail_restored(failing, 3, "bng-1: policy map PLAN-100M-IN not configured")
    expect(phase).to_have_text("Plan change failed at step 3 of 5")
    expect(status).to_have_text("Active")
    expect(page.locator("#announcer")).to_contain_text("Nothing changed: the service is active")
    expect(page.get_by_test_id("step-message")).to_have_text(
        "bng-1: policy map PLAN-100M-IN not configured"
    )
    shoot(page, "portal-plan-change-failed")

    # Loaded mid-run, the page knows the running status from the server too.
    third = _begin(portal_stack, sid)
    third.step(1)
    page.reload()
    expect(status).to_have_text("Changing plan…")
    expect(phase).to_have_text("Step 1 of 5")

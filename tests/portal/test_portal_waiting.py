"""A zero-touch order on the progress page in headless Chromium: "waiting for your fibre
box to be connected" while it waits, then the six provisioning steps live once its ONT
appears, without a reload."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceInstance
from fiberflow.events import schema
from tests.fixtures.browser import PortalStack, SimulatedRun, shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 20_000  # how long expect() waits for the page to get there (not a speed bound)
WAITING_TEXT = "Waiting for your fibre box to be connected"


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB",
                                   timezone_id="UTC")  # fmt: skip
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def waiting_order(stack: PortalStack) -> str:
    """A zero-touch order as the API creates it: awaiting_ont, no serial, its waiting step."""
    with Session(stack.engine) as s, s.begin():
        row = ServiceInstance(tenant_id=stack.tenant_id, customer_ref="bob", plan="500M",
                              olt="olt-1", pon_port="0/1/4", activation="on_discovery")  # fmt: skip
        row.await_ont()
        s.add(row)
        s.flush()
        sid = row.id
    step = catalogue.AWAITING_ONT_STEP
    stack.publisher.publish(
        schema.progress(Operation.PROVISIONING, service_id=sid, tenant_id=stack.tenant_id,
                        operation_id=str(uuid.uuid4()), step=step.number,
                        total_steps=step.total, status=step.status, message=step.message,
                        flow_run_id=None)
    )  # fmt: skip
    return sid


def test_waiting_then_provisioning_live_without_a_reload(
    portal_stack: PortalStack, page: Any
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    sid = waiting_order(portal_stack)
    page.goto(portal_stack.login_url("bob"))
    page.goto(f"{portal_stack.url}/portal/services/{sid}")
    status = page.get_by_test_id("service-status")
    expect(status).to_have_text(WAITING_TEXT)
    expect(page.get_by_test_id("step-message")).to_have_text(WAITING_TEXT)
    expect(page.get_by_test_id("step-status")).to_have_text("Waiting")
    expect(page.get_by_test_id("phase")).to_have_text(
        "Provisioning starts by itself once your fibre box is connected"
    )
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "0")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-mode", "live")
    assert "known once your fibre box is connected" in page.content()
    shoot(page, "portal-waiting-for-ont")

    # The discovery pass binds the ONT: provisioning starts and streams its six steps.
    with Session(portal_stack.engine) as s, s.begin():
        row = s.get_one(ServiceInstance, sid)
        row.ont_serial = "485754430000B0B1"
        row.begin(Operation.PROVISIONING)
    run = SimulatedRun(portal_stack, sid, portal_stack.tenant_id, Operation.PROVISIONING)
    run.step(1)
    expect(page.get_by_test_id("phase")).to_have_text(f"Step 1 of {run.total}")
    expect(status).to_have_text("Provisioning…")
    expect(page.get_by_test_id("step-status")).to_have_text("Validating")
    for n in range(2, run.total + 1):
        run.step(n)
        expect(page.get_by_test_id("phase")).to_have_text(f"Step {n} of {run.total}")
    run.complete()
    expect(status).to_have_text("Active")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    done = page.locator('[data-testid="steps"] li[data-state="done"]')
    expect(done).to_have_count(run.total)
    expect(done.first).to_contain_text("Validating")

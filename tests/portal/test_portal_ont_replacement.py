"""An ONT replacement on the progress page in headless Chromium: the operation and its
steps come from the server's catalogue, the measured receive power shows as the
testing step's message, a completed replacement ends where it started (suspended stays
suspended) with the new serial shown, and a failed one says nothing changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from fiberflow.api.portal.render import _operations_json
from fiberflow.core.db.models import Operation, ServiceInstance
from fiberflow.events import schema
from tests.fixtures.browser import PortalStack, SimulatedRun, shoot

WAIT_MS = 20_000  # how long expect() waits for the page to get there (not a speed bound)
NEW = "48575443AABBCC01"
MEASURED = "ONT receive power -21.50 dBm (minimum -27.0 dBm)"


def test_the_page_gets_the_ont_replacement() -> None:
    data = json.loads(_operations_json())
    assert data["operations"]["ont_replacement"] == {
        "title": "ONT replacement",
        "running": "Replacing your fibre box…",
        "done": None,  # it ends where it started
        "ends_in": None,
        "starts_from": ["active", "suspended"],
        "restores_on_failure": True,
    }
    assert "replacing_ont" in data["transitional"]
    assert data["statuses"]["replacing_ont"] == "Replacing your fibre box…"


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
        s.get_one(ServiceInstance, sid).begin(Operation.ONT_REPLACEMENT)
    return SimulatedRun(stack, sid, stack.tenant_id, Operation.ONT_REPLACEMENT)


def _set(run: SimulatedRun, **values: Any) -> None:
    with Session(run.stack.engine) as s, s.begin():
        s.execute(
            update(ServiceInstance).where(ServiceInstance.id == run.service_id).values(**values)
        )


@pytest.mark.browser
@pytest.mark.slow
def test_a_replacement_of_a_suspended_service_then_one_that_fails(
    portal_stack: PortalStack, page: Any
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    sid = portal_stack.new_service(customer="dave", status="suspended")
    page.goto(portal_stack.login_url("dave"))
    page.goto(f"{portal_stack.url}/portal/services/{sid}")
    status = page.get_by_test_id("service-status")
    phase = page.get_by_test_id("phase")
    expect(status).to_have_text("Suspended")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-mode", "live")

    run = _begin(portal_stack, sid)
    for n in (1, 2, 3, 4):
        run.step(n)
    expect(page.locator("#op-title")).to_have_text("ONT replacement")
    expect(status).to_have_text("Replacing your fibre box…")
    expect(phase).to_have_text("Step 4 of 5")
    run.step(4, "measured", MEASURED)
    expect(page.get_by_test_id("step-message")).to_have_text(MEASURED)
    shoot(page, "portal-ont-replacement-testing")
    run.step(5)
    _set(run, ont_serial=NEW, ont_rx_power_dbm=-21.5)  # what the last step stores
    run.complete()  # the row finishes where it started
    expect(status).to_have_text("Suspended")  # where it started
    expect(phase).to_have_text("ONT replacement complete")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#ont-serial")).to_have_text(NEW)

    # A second replacement: too little light, the old ONT put back, still suspended.
    failing = _begin(portal_stack, sid)
    for n in (1, 2, 3, 4):
        failing.step(n)
    error = "olt-1: ONT 0/1/3 0 receive power -29.00 dBm is below the minimum -27.0 dBm"
    failing.step(2, "rolled_back", f"Put the old ONT {NEW} back as 0/1/3 0 on olt-1")
    _set(failing, status="suspended", error=f"ONT replacement failed: {error}")
    failing._publish(
        schema.failed(
            Operation.ONT_REPLACEMENT,
            service_id=sid,
            tenant_id=portal_stack.tenant_id,
            operation_id=failing.run_id,
            step=4,
            error=error,
        )
    )
    expect(phase).to_have_text("ONT replacement failed at step 4 of 5")
    expect(status).to_have_text("Suspended")
    expect(page.get_by_test_id("step-message")).to_have_text(error)
    expect(page.locator("#ont-serial")).to_have_text(NEW)
    shoot(page, "portal-ont-replacement-failed")

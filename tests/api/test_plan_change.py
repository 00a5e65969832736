"""``POST /api/v1/services/{id}/change-plan``: 202 and a run of the ``change-plan``
deployment with the plan (a real Prefect server, no worker); every refusal is a 4xx
naming the problem and changes nothing: no status change, no flow run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fiberflow.core.db.models import ServiceStatus
from fiberflow.lab.lab_inventory import build_inventory, write_inventory
from tests.fixtures.api_app import DUMMY_PORTS, TENANT_B, ApiApp, open_api

SERVICES = "/api/v1/services"


def _post(app: ApiApp, sid: str, body: Any, **auth: str) -> Any:
    return app.client.post(f"{SERVICES}/{sid}/change-plan", json=body, headers=app.auth(**auth))


def _untouched(app: ApiApp, sid: str, status: str = "active", plan: str = "100M") -> None:
    row = app.service(sid)
    assert (row.status, row.plan, row.flow_run_id, row.current_operation) == (
        status,
        plan,
        None,
        None,
    )


def test_change_plan_is_202_and_starts_the_change_plan_deployment(api_app: ApiApp) -> None:
    sid = api_app.insert_service(status=ServiceStatus.ACTIVE, plan="100M")
    r = _post(api_app, sid, {"plan": "500M"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["id"], body["status"]) == (sid, "changing_plan")
    run = api_app.flow_run(body["flow_run_id"])
    assert run["deployment_name"] == "change-plan"
    assert run["parameters"] == {"service_id": sid, "plan": "500M"}
    row = api_app.service(sid)
    assert (row.status, row.current_operation) == ("changing_plan", "plan_change")
    assert row.flow_run_id == body["flow_run_id"]
    # The record keeps the old plan until the run completes.
    assert row.plan == "100M"
    # Busy now: a second change (or any other operation) is refused.
    again = _post(api_app, sid, {"plan": "1G"})
    assert again.status_code == 409 and "changing_plan" in again.json()["detail"]


@pytest.mark.parametrize(
    "status",
    [
        ServiceStatus.PENDING,
        ServiceStatus.PROVISIONING,
        ServiceStatus.SUSPENDED,
        ServiceStatus.SUSPENDING,
        ServiceStatus.TERMINATED,
        ServiceStatus.FAILED,
        ServiceStatus.REPROVISIONING,
    ],
)
def test_a_service_that_is_not_active_is_409(api_app: ApiApp, status: ServiceStatus) -> None:
    sid = api_app.insert_service(status=status)
    r = _post(api_app, sid, {"plan": "500M"})
    assert r.status_code == 409, r.text
    assert status.value in r.json()["detail"] and "change plan" in r.json()["detail"]
    _untouched(api_app, sid, status.value)


def test_the_plan_it_already_has_is_409(api_app: ApiApp) -> None:
    sid = api_app.insert_service(plan="500M")
    r = _post(api_app, sid, {"plan": "500M"})
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == "plan: the service is already on plan '500M'"
    _untouched(api_app, sid, plan="500M")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"plan": "10G"}, "plan: unknown plan '10G' (one of 100M, 500M, 1G)"),
        ({"plan": "100m"}, "plan: unknown plan '100m'"),  # names are exact
        ({"plan": "500M\nshow run"}, "plan"),  # a newline never reaches a device
        ({"plan": "500M; reload"}, "plan"),
        ({"plan": "../1G"}, "plan"),
        ({"plan": ""}, "plan"),
        ({"plan": "x" * 65}, "plan"),
        ({"plan": 500}, "plan"),
        ({"plan": None}, "plan"),
        ({}, "plan"),
        ({"plan": "500M", "vlan": 7}, "vlan"),  # IP, VLAN and username never change
        (["500M"], "body"),
        ("500M", "body"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(api_app: ApiApp, body: Any, needle: str) -> None:
    sid = api_app.insert_service()
    r = _post(api_app, sid, body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    _untouched(api_app, sid)


def test_no_body_and_a_body_that_is_not_json_are_422(api_app: ApiApp) -> None:
    sid = api_app.insert_service()
    r = api_app.client.post(f"{SERVICES}/{sid}/change-plan", headers=api_app.auth())
    assert r.status_code == 422 and r.json()["detail"] == 'plan: required, as {"plan": NAME}'
    # Without a body, another tenant's service is 404 like any other request for it.
    theirs = api_app.insert_service(tenant=TENANT_B)
    r = api_app.client.post(f"{SERVICES}/{theirs}/change-plan", headers=api_app.auth())
    assert r.status_code == 404, r.text
    r = api_app.client.post(
        f"{SERVICES}/{sid}/change-plan",
        content=b"{plan: 500M",
        headers={**api_app.auth(), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    _untouched(api_app, sid)


def test_unknown_ids_and_other_tenants_services_are_404(api_app: ApiApp) -> None:
    theirs = api_app.insert_service(tenant=TENANT_B)
    for sid in (theirs, "7d7f3a4e-1111-4222-8333-944445555666", "not-a-uuid", "..%2Fetc"):
        r = _post(api_app, sid, {"plan": "500M"})
        assert r.status_code == 404, (sid, r.text)
    assert "not found" in _post(api_app, theirs, {"plan": "500M"}).json()["detail"]
    _untouched(api_app, theirs)
    # An unknown plan on an unknown service: the service is what is missing.
    r = _post(api_app, theirs, {"plan": "10G"})
    assert r.status_code == 404


def test_customers_are_403_even_for_their_own_service(api_app: ApiApp) -> None:
    sid = api_app.insert_service(customer="cust-1")
    for body in ({"plan": "500M"}, {"plan": "10G"}, {"plan": 5}):
        r = _post(api_app, sid, body, role="customer", sub="cust-1")
        assert r.status_code == 403, r.text  # the role before the body or the state
    r = api_app.client.post(f"{SERVICES}/{sid}/change-plan", json={"plan": "500M"})
    assert r.status_code == 401
    _untouched(api_app, sid)


@pytest.fixture
def gem_app(database_url: str, tmp_path: Path, prefect_deployments: str) -> Iterator[ApiApp]:
    """The lab inventory plus a plan "2G" whose service-port uses GEM port 2."""
    inv = build_inventory(host="127.0.0.1", **DUMMY_PORTS)  # type: ignore[arg-type]
    two = inv.plans[-1].model_copy(update={"name": "2G", "gem_port": 2})
    path = write_inventory(
        inv.model_copy(update={"plans": [*inv.plans, two]}), tmp_path / "inventory.yaml"
    )
    with open_api(database_url, tmp_path / "data", path, prefect_deployments) as app:
        yield app


def test_a_plan_on_another_gem_port_is_422(gem_app: ApiApp) -> None:
    sid = gem_app.insert_service(plan="100M")
    r = _post(gem_app, sid, {"plan": "2G"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (
        "plan: '2G' uses GEM port 2, the service's plan '100M' GEM port 1; "
        "a plan change keeps the OLT as it is"
    )
    _untouched(gem_app, sid)


def test_when_the_deployment_cannot_be_started_the_service_stays_active(
    api_app: ApiApp, prefect_deployments: str
) -> None:
    """A real fault of the orchestrator: the change-plan deployment is gone."""
    from fiberflow.flows.deployments import apply_all

    found = httpx.post(
        f"{prefect_deployments}/deployments/filter",
        json={"deployments": {"name": {"any_": ["change-plan"]}}},
    ).json()
    assert len(found) == 1
    httpx.delete(f"{prefect_deployments}/deployments/{found[0]['id']}").raise_for_status()
    try:
        sid = api_app.insert_service()
        r = _post(api_app, sid, {"plan": "500M"})
    finally:
        apply_all()  # the session's other tests need it back
    assert r.status_code == 503, r.text
    assert "orchestrator" in r.json()["detail"]
    row = api_app.service(sid)
    assert (row.status, row.plan, row.flow_run_id) == ("active", "100M", None)
    assert (row.error or "").startswith("could not start the plan change")

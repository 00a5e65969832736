"""``POST /api/v1/bulk/{operation}?dry_run=true``: bad requests answer exactly as without
it; a good one answers 200 with each service's plan in request order (the single dry
runs' changes, each with its ``service_id``), the services the run would skip under
``skipped``; and writes nothing: no bulk row, no item, no flow run, no device change."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fiberflow.api.bulk_dry_run import DRY_RUN_MAX
from fiberflow.api.dry_run import PLANNER
from fiberflow.core.db.models import BulkItem, BulkRun, ServiceStatus
from fiberflow.flows.provision import provision
from fiberflow.tasks.dry_run import plan
from tests.api.test_dry_run import _owner, _world
from tests.fixtures.api_app import TENANT_B, ApiApp, new_serial, open_api
from tests.fixtures.lifecycle import TENANT, Lifecycle

BULK = "/api/v1/bulk"


def _nothing_written(app: ApiApp) -> None:
    assert app.count(BulkRun) == 0 and app.count(BulkItem) == 0


@pytest.fixture
def planned_api(api_app_sqlite: ApiApp) -> ApiApp:
    """The API with the shell's planner; its inventory's devices are not running, so a
    test here only meets services the dry run skips without reading a device."""
    api_app_sqlite.app.state.fiberflow.extras[PLANNER] = plan
    return api_app_sqlite


@pytest.mark.parametrize(
    ("operation", "body", "code"),
    [
        ("explode", {"olt": "olt-1"}, 404),
        ("suspend", {"service_ids": []}, 422),
        ("suspend", {}, 422),
        ("suspend", {"service_ids": ["not-a-uuid"]}, 422),
        ("suspend", {"olt": "olt-9"}, 422),
        ("change-plan", {"olt": "olt-1"}, 422),
        ("change-plan", {"olt": "olt-1", "plan": "9T"}, 422),
        ("resume", {"olt": "olt-1", "hard": True}, 422),
        ("suspend", {"service_ids": ["unknown"]}, 404),  # an unknown id, filled in below
        ("suspend", {"service_ids": ["theirs"]}, 404),  # another tenant's
    ],
)
def test_refusals_are_the_same_with_dry_run(
    planned_api: ApiApp, operation: str, body: dict[str, Any], code: int
) -> None:
    app = planned_api
    mine = app.insert_service(status=ServiceStatus.SUSPENDED)
    ids = {"unknown": str(uuid.uuid4()), "theirs": app.insert_service(tenant=TENANT_B)}
    if "service_ids" in body and body["service_ids"]:
        body = {**body, "service_ids": [mine, *(ids.get(i, i) for i in body["service_ids"])]}
    answers = []
    for query in ("", "?dry_run=true"):
        r = app.client.post(f"{BULK}/{operation}{query}", json=body, headers=app.auth())
        answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1] and answers[0][0] == code, answers
    _nothing_written(app)


def test_customers_are_403_with_dry_run(planned_api: ApiApp) -> None:
    sid = planned_api.insert_service()
    headers = planned_api.auth(role="customer", sub="cust-1")
    r = planned_api.client.post(f"{BULK}/suspend?dry_run=true", json={"service_ids": [sid]},
                                headers=headers)  # fmt: skip
    assert r.status_code == 403
    _nothing_written(planned_api)


def test_forbidden_statuses_and_plans_are_skipped_with_the_runs_reason(
    planned_api: ApiApp,
) -> None:
    app = planned_api
    suspended = app.insert_service(status=ServiceStatus.SUSPENDED)
    failed = app.insert_service(status=ServiceStatus.FAILED)
    r = app.client.post(f"{BULK}/suspend?dry_run=true",
                        json={"service_ids": [suspended, failed]}, headers=app.auth())  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {
        "operation": "suspend", "count": 2, "changes": [], "failed": [],
        "skipped": [
            {"service_id": suspended, "reason": "status suspended forbids suspension"},
            {"service_id": failed, "reason": "status failed forbids suspension"},
        ],
    }  # fmt: skip
    on_it = app.insert_service(plan="500M")
    body = {"service_ids": [on_it], "plan": "500M"}
    r = app.client.post(f"{BULK}/change-plan?dry_run=true", json=body, headers=app.auth())
    assert r.json()["skipped"] == [
        {"service_id": on_it, "reason": "the service is already on plan '500M'"}
    ]
    _nothing_written(app)


def test_more_than_the_cap_is_422_before_any_device(planned_api: ApiApp) -> None:
    app = planned_api
    ids = [app.insert_service() for _ in range(DRY_RUN_MAX + 1)]
    r = app.client.post(f"{BULK}/resume?dry_run=true", json={"service_ids": ids},
                        headers=app.auth())  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"dry_run: at most {DRY_RUN_MAX} services")
    _nothing_written(app)


def test_without_a_planner_is_503_and_writes_nothing(api_app_sqlite: ApiApp) -> None:
    sid = api_app_sqlite.insert_service()
    r = api_app_sqlite.client.post(f"{BULK}/suspend?dry_run=true", json={"service_ids": [sid]},
                                   headers=api_app_sqlite.auth())  # fmt: skip
    assert r.status_code == 503 and "dry run" in r.json()["detail"]
    _nothing_written(api_app_sqlite)


# -- the lab: the per-service plans, concatenated ------------------------------------------
@pytest.fixture
def stack(lifecycle: Lifecycle, tmp_path: Path) -> Iterator[tuple[ApiApp, Lifecycle]]:
    """The API on the lifecycle's database and lab, with the shell's planner."""
    inventory = Path(os.environ["FIBERFLOW_INVENTORY"])
    with open_api(lifecycle.database_url, tmp_path / "api", inventory,
                  os.environ["PREFECT_API_URL"]) as app:  # fmt: skip
        app.app.state.fiberflow.extras[PLANNER] = plan
        yield app, lifecycle


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_plans_of_each_service_in_request_order(stack: tuple[ApiApp, Lifecycle]) -> None:
    app, lc = stack
    active = []
    for port in ("0/1/3", "0/1/4"):
        sid = lc.new_service(new_serial(), pon_port=port)
        provision(sid)
        assert lc.service(sid).status == "active", lc.service(sid).error
        _owner(lc, sid)
        active.append(sid)
    held = app.insert_service(tenant=TENANT, status=ServiceStatus.SUSPENDED)
    headers = app.auth(tenant=TENANT)
    singles = []
    for sid in active:
        r = app.client.post(f"/api/v1/services/{sid}/suspend?dry_run=true", json={"hard": True},
                            headers=headers)  # fmt: skip
        assert r.status_code == 200, r.text
        singles += [{"service_id": sid, **c} for c in r.json()["changes"]]
    assert {c["target"] for c in singles} == {"radius", "bng-1", "olt-1"}

    before = _world(app, lc)
    ids = [active[1], held, active[0]]
    r = app.client.post(f"{BULK}/suspend?dry_run=true", json={"service_ids": ids, "hard": True},
                        headers=headers)  # fmt: skip
    assert r.status_code == 200, r.text
    assert _world(app, lc) == before  # nothing written anywhere, no flow run
    _nothing_written(app)
    by_service = {sid: [c for c in singles if c["service_id"] == sid] for sid in active}
    assert r.json() == {
        "operation": "suspend", "count": 3, "failed": [],
        "changes": by_service[active[1]] + by_service[active[0]],
        "skipped": [{"service_id": held, "reason": "status suspended forbids suspension"}],
    }  # fmt: skip

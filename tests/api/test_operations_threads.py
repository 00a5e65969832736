"""A request that starts a run holds a thread of the pool only for its database work:
the Prefect call is awaited on the event loop (api/operations.py).

The app's default thread limiter is shrunk to ``TOKENS`` threads and the launch (the
seam every route's Prefect call goes through, ``operations.launch``) is replaced by one
that waits for the test's word. ``BURST`` > ``TOKENS`` requests of every route that
starts a run must all reach the launch, each with its status committed and its
``queued`` event published, before any launch returns. Were the Prefect call made from
a pool thread, only ``TOKENS`` of them would ever get there. The same for bulk creates
and their parent run (``launch_bulk``). Real database (SQLite and PostgreSQL) and Redis;
no Prefect server: the launch never reaches one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.api import operations
from fiberflow.api.routes import bulk
from fiberflow.core import catalogue
from fiberflow.core.db.models import BulkItem, BulkRun, EventLog, ServiceInstance, ServiceStatus
from tests.fixtures.api_app import ApiApp, new_serial, open_api

SERVICES = "/api/v1/services"
TOKENS = 2
# Not a measurement: only a bound on how long a broken build hangs before it fails.
HANG_GUARD_SECONDS = 60


@pytest.fixture
def app(database_url: str, tmp_path: Path, api_inventory: Path) -> Iterator[ApiApp]:
    with open_api(database_url, tmp_path / "data", api_inventory, None) as api:
        yield api


def _concurrent_bulk_writes(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        # A bulk create writes its rows and commits them only once the parent run exists:
        # on SQLite that transaction holds the one write lock, so bulk creates take turns.
        pytest.skip("bulk creates take turns on SQLite's write lock")


class HeldLaunch:
    """Stands in for ``operations.launch`` (or the bulk route's ``launch_bulk``): every
    call waits until the test releases it."""

    def __init__(self, expected: int, fail: bool = False) -> None:
        self.expected = expected
        self.fail = fail
        self.entered: list[tuple[Any, ...]] = []  # the arguments of each call
        self.returned: list[str] = []
        self.all_entered = anyio.Event()
        self.released = anyio.Event()

    async def __call__(self, *args: Any) -> str:
        self.entered.append(args)
        if len(self.entered) == self.expected:
            self.all_entered.set()
        await self.released.wait()
        self.returned.append(args[0])
        if self.fail:
            raise ConnectionError("the orchestrator is away")
        return str(uuid.uuid4())


def _order() -> dict[str, Any]:
    return {"customer_ref": "cust-t", "plan": "100M", "olt": "olt-1", "pon_port": "0/1/3",
            "ont_serial": new_serial()}  # fmt: skip


Request = tuple[str, dict[str, Any] | None, dict[str, str]]  # path, body, extra headers


def _queued(api: ApiApp, service_id: str) -> list[EventLog]:
    with Session(api.engine) as s:
        rows = s.scalars(select(EventLog).where(EventLog.service_id == service_id))
        return [e for e in rows if e.data.get("status") == "queued"]


def _burst(
    api: ApiApp, launch: HeldLaunch, requests: list[Request]
) -> tuple[list[httpx.Response], dict[str, Any]]:
    """POST ``requests`` at once on the app's own event loop with ``TOKENS`` threads;
    once every launch has been entered, note what the database holds, then let the
    launches return."""
    responses: dict[int, httpx.Response] = {}
    seen: dict[str, Any] = {"bulk_ids": []}

    async def post(i: int, client: httpx.AsyncClient, request: Request) -> None:
        path, body, headers = request
        responses[i] = await client.post(path, json=body, headers={**api.auth(), **headers})

    def snapshot() -> None:  # in a pool thread: a token is free while the launches wait
        with Session(api.engine) as s:
            seen["status"] = {r.id: r.status for r in s.scalars(select(ServiceInstance))}
            seen["bulk_ids"] = list(s.scalars(select(BulkRun.id)))
        seen["queued"] = {sid: len(_queued(api, sid)) for sid in seen["status"]}

    async def run() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        before = limiter.total_tokens
        limiter.total_tokens = TOKENS
        transport = httpx.ASGITransport(app=api.app)
        try:
            async with (
                httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
                anyio.create_task_group() as tg,
            ):
                for i, request in enumerate(requests):
                    tg.start_soon(post, i, client, request)
                with anyio.fail_after(HANG_GUARD_SECONDS):
                    await launch.all_entered.wait()
                seen["returned_before_release"] = list(launch.returned)
                await anyio.to_thread.run_sync(snapshot)
                launch.released.set()
        finally:
            limiter.total_tokens = before

    portal = api.client.portal
    assert portal is not None, "the client runs inside `with`"
    portal.call(run)
    return [responses[i] for i in range(len(requests))], seen


def test_a_burst_commits_and_announces_every_request_before_any_prefect_call_returns(
    app: ApiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    active = [app.insert_service(status=ServiceStatus.ACTIVE) for _ in range(5)]
    suspended = app.insert_service(status=ServiceStatus.SUSPENDED)
    requests: list[Request] = [
        *[(SERVICES, _order(), {}) for _ in range(3)],
        (f"{SERVICES}/{active[0]}/suspend", None, {}),
        (f"{SERVICES}/{suspended}/resume", None, {}),
        (f"{SERVICES}/{active[1]}/change-plan", {"plan": "500M"}, {}),
        (f"{SERVICES}/{active[2]}/replace-ont", {"ont_serial": new_serial()}, {}),
        (f"{SERVICES}/{active[3]}/reprovision", None, {}),
        (f"{SERVICES}/{active[4]}/terminate", None, {}),
    ]
    assert len(requests) > TOKENS
    launch = HeldLaunch(expected=len(requests))
    monkeypatch.setattr(operations, "launch", launch)

    responses, seen = _burst(app, launch, requests)

    # Every request reached the Prefect call with TOKENS threads: none held one there...
    assert len(launch.entered) == len(requests)
    assert seen["returned_before_release"] == []
    # ...each with its status committed and its step 1 published before any returned.
    for sid, operation, _ in launch.entered:
        assert seen["status"][sid] == catalogue.of(operation).running.value, sid
        assert seen["queued"][sid] == 1, sid
    assert [r.status_code for r in responses] == [202] * len(requests), [r.text for r in responses]
    assert {r.json()["id"] for r in responses} == {args[0] for args in launch.entered}
    for r in responses:
        body = r.json()
        row = app.service(body["id"])
        assert (row.flow_run_id, row.status) == (body["flow_run_id"], body["status"])
        # The announcement joined the run's operation once the run existed.
        [queued] = _queued(app, body["id"])
        assert queued.operation_id == body["flow_run_id"]


def test_a_burst_whose_runs_cannot_start_gives_every_service_back(
    app: ApiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = app.insert_service(status=ServiceStatus.ACTIVE)
    # The creates carry an Idempotency-Key: one whose run never started frees it.
    requests: list[Request] = [
        *[(SERVICES, _order(), {"Idempotency-Key": f"key-{i}"}) for i in range(3)],
        (f"{SERVICES}/{sid}/change-plan", {"plan": "500M"}, {}),
    ]
    launch = HeldLaunch(expected=len(requests), fail=True)
    monkeypatch.setattr(operations, "launch", launch)

    responses, seen = _burst(app, launch, requests)

    assert [r.status_code for r in responses] == [503] * len(requests)
    assert {r.json()["detail"] for r in responses} == {
        "the orchestrator is not reachable; try again"
    }
    with Session(app.engine) as s:
        created = s.scalars(select(ServiceInstance).where(ServiceInstance.id != sid)).all()
        assert [(r.status, r.idempotency_key) for r in created] == [("failed", None)] * 3
        for row in created:
            q = select(EventLog.event_type).where(EventLog.service_id == row.id)
            kinds = list(s.scalars(q.order_by(EventLog.id)))
            assert kinds == ["service.provisioning.progress", "service.provisioning.failed"]
    # A plan change that never started leaves the service active on its plan.
    row = app.service(sid)
    assert (row.status, row.plan) == ("active", "100M")
    assert "could not start the plan change" in (row.error or "")


def test_bulk_runs_requested_at_once_hold_no_thread_while_their_parent_is_created(
    app: ApiApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _concurrent_bulk_writes(database_url)
    requests: list[Request] = [
        ("/api/v1/bulk/suspend", {"service_ids": [app.insert_service(), app.insert_service()]},
         {})
        for _ in range(TOKENS + 2)
    ]  # fmt: skip
    launch = HeldLaunch(expected=len(requests))
    monkeypatch.setattr(bulk, "launch_bulk", launch)

    responses, seen = _burst(app, launch, requests)

    # Every parent run was asked for at once: no request held a thread while waiting;
    # nothing was committed yet (the bulk rows commit once their run exists).
    assert len(launch.entered) == len(requests) and seen["returned_before_release"] == []
    assert seen["bulk_ids"] == []
    assert [r.status_code for r in responses] == [202] * len(requests), [r.text for r in responses]
    with Session(app.engine) as s:
        runs = {r.id: r.flow_run_id for r in s.scalars(select(BulkRun))}
    assert runs == {r.json()["id"]: r.json()["flow_run_id"] for r in responses}
    assert {args[0] for args in launch.entered} == set(runs)
    assert app.count(BulkItem) == 2 * len(requests)


def test_a_bulk_run_whose_parent_cannot_start_leaves_nothing_behind(
    app: ApiApp, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _concurrent_bulk_writes(database_url)
    requests: list[Request] = [
        ("/api/v1/bulk/suspend", {"service_ids": [app.insert_service()]}, {})
        for _ in range(TOKENS + 1)
    ]
    launch = HeldLaunch(expected=len(requests), fail=True)
    monkeypatch.setattr(bulk, "launch_bulk", launch)

    responses, _ = _burst(app, launch, requests)

    assert [r.status_code for r in responses] == [503] * len(requests)
    assert {r.json()["detail"] for r in responses} == {
        "the orchestrator is not reachable; try again"
    }
    assert app.count(BulkRun) == 0 and app.count(BulkItem) == 0

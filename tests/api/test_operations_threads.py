"""A request that starts a run holds a thread of the pool only for its database work:
the Prefect call is awaited on the event loop (api/operations.py). So does a request
that waits: a one-service drift check polling for its report, a bulk decision handing
itself to the paused parent run.

The app's default thread limiter is shrunk to ``TOKENS`` threads and the launch (the
seam every route's Prefect call goes through, ``operations.launch``) is replaced by one
that waits for the test's word. ``BURST`` > ``TOKENS`` requests of every route that
starts a run must all reach the launch, each with its status committed and its
``queued`` event published, before any launch returns. Were the Prefect call made from
a pool thread, only ``TOKENS`` of them would ever get there. The same for bulk creates
and their parent run (``launch_bulk``), bulk approvals, rejections and cancels and
their resume of the parent (``resume_paused``); drift polls more than ``TOKENS`` wait at
once while another request is answered. Real database (SQLite and PostgreSQL) and Redis;
no Prefect server: the launch never reaches one.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.api import operations
from fiberflow.api.routes import bulk, bulk_decisions, drift_checks
from fiberflow.core import catalogue
from fiberflow.core.db.models import (
    BulkItem,
    BulkRun,
    DriftCheck,
    EventLog,
    ServiceInstance,
    ServiceStatus,
)
from tests.fixtures.api_app import TENANT_A, ApiApp, new_serial, open_api

SERVICES = "/api/v1/services"
TOKENS = 2
# Not a measurement: only a bound on how long a broken build hangs before it fails.
HANG_GUARD_SECONDS = 60


@pytest.fixture
def app(database_url: str, tmp_path: Path, api_inventory: Path) -> Iterator[ApiApp]:
    with open_api(database_url, tmp_path / "data", api_inventory, None) as api:
        yield api


# The bulk-create tests run on PostgreSQL only: a bulk create writes its rows and commits
# them only once the parent run exists; on SQLite that transaction holds the one write
# lock, so bulk creates take turns there (by design, not what these tests are about).


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


@asynccontextmanager
async def _pool_of(tokens: int) -> AsyncIterator[None]:
    """The app's thread pool (the default limiter) shrunk to ``tokens`` threads."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = limiter.total_tokens
    limiter.total_tokens = tokens
    try:
        yield
    finally:
        limiter.total_tokens = before


def _held_burst(
    api: ApiApp,
    monkeypatch: pytest.MonkeyPatch,
    seam: tuple[object, str],
    requests: list[Request],
    *,
    fail: bool = False,
) -> tuple[HeldLaunch, list[httpx.Response], dict[str, Any]]:
    """Replace the Prefect call at ``seam`` (module, attribute) by a HeldLaunch and run
    ``requests`` as a :func:`_burst` against it."""
    held = HeldLaunch(expected=len(requests), fail=fail)
    monkeypatch.setattr(*seam, held)
    responses, seen = _burst(api, held, requests)
    return held, responses, seen


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
            seen["decided"] = {b.id: (b.approved_by, b.rejected_by, b.cancel_requested_at
                                      is not None) for b in s.scalars(select(BulkRun))}  # fmt: skip
        seen["queued"] = {sid: len(_queued(api, sid)) for sid in seen["status"]}

    async def run() -> None:
        transport = httpx.ASGITransport(app=api.app)
        async with (
            _pool_of(TOKENS),
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
    launch, responses, seen = _held_burst(app, monkeypatch, (operations, "launch"), requests)

    # Every request reached the Prefect call with TOKENS threads: none held one there...
    assert len(launch.entered) == len(requests)
    assert seen["returned_before_release"] == []
    # ...each with its status committed and its step 1 published before any returned.
    for sid, operation, *_ in launch.entered:
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
    launch, responses, seen = _held_burst(
        app, monkeypatch, (operations, "launch"), requests, fail=True
    )

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


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_bulk_runs_requested_at_once_hold_no_thread_while_their_parent_is_created(
    app: ApiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[Request] = [
        ("/api/v1/bulk/suspend", {"service_ids": [app.insert_service(), app.insert_service()]},
         {})
        for _ in range(TOKENS + 2)
    ]  # fmt: skip
    launch, responses, seen = _held_burst(app, monkeypatch, (bulk, "launch_bulk"), requests)

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


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_bulk_run_whose_parent_cannot_start_leaves_nothing_behind(
    app: ApiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[Request] = [
        ("/api/v1/bulk/suspend", {"service_ids": [app.insert_service()]}, {})
        for _ in range(TOKENS + 1)
    ]
    launch, responses, _ = _held_burst(app, monkeypatch, (bulk, "launch_bulk"), requests, fail=True)

    assert [r.status_code for r in responses] == [503] * len(requests)
    assert {r.json()["detail"] for r in responses} == {
        "the orchestrator is not reachable; try again"
    }
    assert app.count(BulkRun) == 0 and app.count(BulkItem) == 0


# -- bulk decisions: the resume of the paused parent holds no thread ------------------


def _awaiting_bulk(api: ApiApp) -> str:
    """A bulk run its parent (run ``flow_run_id``) has paused for approval; one item."""
    sid = api.insert_service()
    with Session(api.engine) as s, s.begin():
        row = BulkRun(tenant_id=TENANT_A, operation="suspend", params={"hard": False},
                      status="awaiting_approval", requested_by="alice",
                      flow_run_id=str(uuid.uuid4()))  # fmt: skip
        s.add(row)
        s.flush()
        s.add(BulkItem(bulk_id=row.id, service_id=sid, position=0, state="pending"))
        return row.id


def _decisions(api: ApiApp) -> tuple[list[str], list[Request], dict[str, tuple[Any, ...]]]:
    """Two approvals, a rejection and a cancel of bulk runs awaiting approval: the
    bulk ids, the requests and what each decision commits (approved_by, rejected_by,
    cancel requested)."""
    ids = [_awaiting_bulk(api) for _ in range(TOKENS + 2)]
    actions = zip(ids, ["approve", "approve", "reject", "cancel"], strict=True)
    requests: list[Request] = [(f"/api/v1/bulk/{b}/{a}", None, {}) for b, a in actions]
    decided = {ids[0]: ("op-1", None, False), ids[1]: ("op-1", None, False),
               ids[2]: (None, "op-1", False), ids[3]: (None, None, True)}  # fmt: skip
    return ids, requests, decided


def _flow_runs(api: ApiApp, ids: list[str]) -> list[str | None]:
    with Session(api.engine) as s:
        return [s.get(BulkRun, b).flow_run_id for b in ids]  # type: ignore[union-attr]


def test_bulk_decisions_at_once_are_committed_and_hold_no_thread_while_the_parent_resumes(
    app: ApiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, requests, decided = _decisions(app)
    resume, responses, seen = _held_burst(
        app, monkeypatch, (bulk_decisions, "resume_paused"), requests
    )

    # Every decision reached the parent's resume with TOKENS threads, each committed
    # before any resume returned.
    assert len(resume.entered) == len(requests) and seen["returned_before_release"] == []
    assert seen["decided"] == decided
    # Each parent run resumed once, with its decision.
    runs = dict(zip(_flow_runs(app, ids), ["approve", "approve", "reject", "cancel"], strict=True))
    assert sorted(run for run, _ in resume.entered) == sorted(runs)
    for run, run_input in resume.entered:
        assert run_input == {"approve": runs[run] == "approve", "by": "op-1"}, run
    assert [r.status_code for r in responses] == [200] * len(requests), [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert [(b["approved_by"], b["rejected_by"]) for b in bodies] == [
        ("op-1", None), ("op-1", None), (None, "op-1"), (None, None)]  # fmt: skip
    assert bodies[3]["counts"]["skipped"] == 1


def test_a_decision_whose_parent_cannot_be_resumed_stays_committed(
    app: ApiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, requests, decided = _decisions(app)
    resume, responses, _ = _held_burst(
        app, monkeypatch, (bulk_decisions, "resume_paused"), requests, fail=True
    )

    # The parent reads the decision from the database: the request still succeeds.
    assert [r.status_code for r in responses] == [200] * len(requests), [r.text for r in responses]
    with Session(app.engine) as s:
        rows = {b.id: b for b in s.scalars(select(BulkRun))}
        assert {b: (r.approved_by, r.rejected_by, r.cancel_requested_at is not None)
                for b, r in rows.items()} == decided  # fmt: skip
        cancelled = s.scalars(select(BulkItem).where(BulkItem.bulk_id == ids[3])).one()
        assert (cancelled.state, cancelled.reason) == ("skipped", "cancelled")
        # The cancel's bulk.progress is in the log (its publisher is not locked out by
        # the request's own transaction on SQLite).
        events = s.scalars(select(EventLog).where(EventLog.service_id == ids[3])).all()
        assert [e.event_type for e in events] == ["bulk.progress"]
        assert events[0].data["counts"]["skipped"] == 1


# -- drift: a one-service check's wait for its report holds no thread -----------------


class Polls:
    """Wraps the drift route's read of its check (a pool thread): ``polling`` is set once
    every one of ``expected`` checks has been read running twice, i.e. each request has
    waited between two reads."""

    def __init__(self, expected: int, read: Callable[..., Any]) -> None:
        self.expected = expected
        self._read = read
        self._lock = threading.Lock()
        self.reads: dict[str, int] = {}
        self.polling = anyio.Event()

    def __call__(self, session: Session, check_id: str) -> Any:
        found = self._read(session, check_id)
        if found[0] == "running":
            with self._lock:
                self.reads[check_id] = self.reads.get(check_id, 0) + 1
                ready = len(self.reads) == self.expected and min(self.reads.values()) >= 2
            if ready:
                anyio.from_thread.run_sync(self.polling.set)
        return found


async def _started(check_id: str, remove_orphans: bool, service_id: str | None) -> str:
    return str(uuid.uuid4())  # the run, created at once


def _complete_every_check(api: ApiApp) -> None:
    """What each check's flow run does when it ends: its report, then completed."""
    with Session(api.engine) as s, s.begin():
        for row in s.scalars(select(DriftCheck)):
            row.report = {"services_checked": 1, "in_sync": 1, "drifted": [], "skipped": [],
                          "unreadable": []}  # fmt: skip
            row.status = "completed"


def test_drift_polls_waiting_at_once_hold_no_thread_and_no_lock(
    app: ApiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = [app.insert_service(status=ServiceStatus.ACTIVE) for _ in range(TOKENS + 1)]
    polls = Polls(len(services), drift_checks._read)
    monkeypatch.setattr(drift_checks, "_read", polls)
    monkeypatch.setattr(drift_checks, "_launch_run", _started)
    responses: dict[str, httpx.Response] = {}
    seen: dict[str, Any] = {}

    async def drift(client: httpx.AsyncClient, sid: str) -> None:
        responses[sid] = await client.get(f"{SERVICES}/{sid}/drift?wait=30", headers=app.auth())

    async def run() -> None:
        transport = httpx.ASGITransport(app=app.app)
        async with (
            _pool_of(TOKENS),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
            anyio.create_task_group() as tg,
        ):
            for sid in services:
                tg.start_soon(drift, client, sid)
            with anyio.fail_after(HANG_GUARD_SECONDS):
                await polls.polling.wait()
                # A sync route: it needs a pool thread while TOKENS + 1 polls wait.
                check_id = next(iter(polls.reads))
                seen["other"] = await client.get(f"/api/v1/drift-checks/{check_id}",
                                                 headers=app.auth())  # fmt: skip
                seen["answered_before"] = dict(responses)
                # The worker stores the reports while the polls wait: on SQLite no
                # poll holds the write lock between its reads.
                await anyio.to_thread.run_sync(_complete_every_check, app)

    portal = app.client.portal
    assert portal is not None, "the client runs inside `with`"
    portal.call(run)

    assert seen["answered_before"] == {}
    other = seen["other"]
    assert other.status_code == 200, other.text
    assert other.json()["status"] == "running" and other.json()["flow_run_id"]
    assert [responses[sid].status_code for sid in services] == [200] * len(services), [
        responses[sid].text for sid in services]  # fmt: skip
    assert {responses[sid].json()["id"] for sid in services} == set(polls.reads)
    assert all(responses[sid].json()["in_sync"] is True for sid in services)

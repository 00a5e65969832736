"""Finds services stuck in a transitional status whose flow run will never finish them.

When a worker's process group is SIGKILLed no hook runs, and Prefect keeps the run
``RUNNING``. A run counts as dead when Prefect says it ended without completing
(Crashed, Cancelled, Failed) while the service is still transitional, or when it is
Running but its process is gone: the run records ``host:pid`` on the service
(``run_process``) and, on that host, the pid no longer exists; elsewhere no heartbeat
event arrived within the staleness window. Dead runs are marked Crashed in Prefect and handed to the
``reconcile`` deployment, which compensates and publishes the failed event. The check
does no device I/O itself; it runs as a background loop in each API process (several
replicas may both trigger: the reconcile flow is idempotent).

The same loop finds operations that ended in the database without their terminal event:
a run killed after it committed the service's end status (``active``, ``failed``, a
restored status ...) but before its hook published ``completed`` / ``failed``. The
service is no longer transitional, so the check above never sees it, and the portal
would wait forever. Once ``TERMINAL_GRACE`` has passed since that commit, the missing
event is published here, from the row: ``failed`` with the stored error and the step
the run's events say failed, or ``completed`` at the commit's time. Exactly once: the
publisher stores no second terminal event of an operation (under its per-service lock),
whoever publishes it, a late run's own hook or another replica's reconciler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.api.realtime import PUBLISHER
from fiberflow.api.state import AppState
from fiberflow.core.db.models import (
    TRANSITIONAL,
    EventLog,
    Operation,
    ServiceInstance,
    ServiceStatus,
)
from fiberflow.core.db.models.logs import TERMINAL_EVENT_SQL
from fiberflow.events import schema
from fiberflow.events.publisher import EventPublisher
from fiberflow.stack.bulk_recovery import bulk_pass
from fiberflow.tasks.handoff import ENDED_BADLY, astart_reconcile

log = logging.getLogger(__name__)
# Heartbeats come every 30 s (Prefect's minimum); three missed ones mean the run is gone.
HEARTBEAT_STALE = timedelta(seconds=90)
# Pending: a worker took the run and is starting its process (a fork: seconds, even on a
# loaded machine). Still Pending after this long, the worker died in between; nothing
# else in Prefect moves such a run on (a restarted worker takes Scheduled runs only).
PENDING_STALE = timedelta(minutes=5)
# A service younger than this is left alone: its run may not have started yet.
GRACE = timedelta(seconds=20)
# A live run publishes its terminal event moments after it commits the end status (the
# Prefect state change and the hook lie between). Missing for this long, the run died in
# between; should it be merely slow, the publisher still keeps only the first event.
TERMINAL_GRACE = timedelta(seconds=30)
# After a full first pass, a pass looks only at services changed since the last one,
# less this overlap: updated_at comes from the clocks of other hosts and is set a little
# before the commit that makes it visible.
SWEEP_OVERLAP = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Stuck:
    service_id: str
    flow_run_id: str
    reason: str


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _local_process_gone(run_process: str | None) -> bool:
    if not run_process or ":" not in run_process:
        return False
    host, _, pid = run_process.rpartition(":")
    if host not in (socket.gethostname(), "localhost") or not pid.isdigit():
        return False
    return not _pid_alive(int(pid))


async def _last_heartbeat(client: httpx.AsyncClient, flow_run_id: str) -> datetime | None:
    body = {
        "filter": {
            "event": {"name": ["prefect.flow-run.heartbeat"]},
            "any_resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
            "order": "DESC",
        },
        "limit": 1,
    }
    resp = await client.post("/events/filter", json=body)
    if resp.status_code != 200:
        return None
    events = resp.json().get("events", [])
    return datetime.fromisoformat(events[0]["occurred"]) if events else None


async def diagnose(
    client: httpx.AsyncClient,
    flow_run_id: str,
    run_process: str | None = None,
    pending_stale: timedelta = PENDING_STALE,
) -> str | None:
    """Why this run will never finish its service, or None if it still may."""
    resp = await client.get(f"/flow_runs/{flow_run_id}")
    if resp.status_code == 404:
        return "its flow run does not exist"
    run: dict[str, Any] = resp.json()
    state = (run.get("state") or {}).get("type", "")
    if state in ENDED_BADLY:
        return f"its flow run ended {state.lower()}"
    if state == "PENDING":
        since = (run.get("state") or {}).get("timestamp")
        if since and datetime.now(UTC) - datetime.fromisoformat(since) >= pending_stale:
            return "its flow run never started (its worker died while starting it)"
        return None
    if state != "RUNNING":
        return None
    if _local_process_gone(run_process):
        return "its flow run's process is gone"
    started = run.get("start_time")
    beat = await _last_heartbeat(client, flow_run_id)
    last = beat or (datetime.fromisoformat(started) if started else None)
    if last is not None and datetime.now(UTC) - last > HEARTBEAT_STALE:
        return "its flow run stopped sending heartbeats"
    return None


def candidates(sessions: sessionmaker[Session]) -> list[tuple[str, str, str | None]]:
    cutoff = datetime.now(UTC) - GRACE
    with sessions() as s:
        rows = s.execute(
            select(
                ServiceInstance.id,
                ServiceInstance.flow_run_id,
                ServiceInstance.run_process,
                ServiceInstance.updated_at,
            )
            .where(ServiceInstance.status.in_([t.value for t in TRANSITIONAL]))
            .where(ServiceInstance.flow_run_id.is_not(None))
        ).all()
    found: list[tuple[str, str, str | None]] = []
    for sid, run_id, process, updated in rows:
        updated = updated if updated.tzinfo else updated.replace(tzinfo=UTC)
        if run_id and updated < cutoff:
            found.append((sid, run_id, process))
    return found


async def find_stuck(sessions: sessionmaker[Session], prefect_api: str) -> list[Stuck]:
    stuck = []
    async with httpx.AsyncClient(base_url=prefect_api, timeout=5) as client:
        for sid, run_id, process in candidates(sessions):
            reason = await diagnose(client, run_id, process)
            if reason:
                stuck.append(Stuck(sid, run_id, reason))
    return stuck


async def mark_crashed(prefect_api: str, flow_run_id: str, reason: str) -> None:
    body = {"state": {"type": "CRASHED", "message": reason}, "force": True}
    async with httpx.AsyncClient(base_url=prefect_api, timeout=5) as client:
        await client.post(f"/flow_runs/{flow_run_id}/set_state", json=body)


async def reconcile_once(sessions: sessionmaker[Session], prefect_api: str) -> list[Stuck]:
    """One pass: find dead runs, mark them Crashed, start a reconcile run for each."""
    stuck = await find_stuck(sessions, prefect_api)
    for item in stuck:
        ids = {"service_id": item.service_id, "flow_run_id": item.flow_run_id}
        log.warning("service stuck: %s", item.reason, extra=ids)
        await mark_crashed(prefect_api, item.flow_run_id, item.reason)
        # Several API replicas may find the same run: one reconcile run per dead run.
        await astart_reconcile(item.service_id, item.flow_run_id, item.reason)
    return stuck


# -- operations that ended without their terminal event --------------------------------
@dataclass(frozen=True, slots=True)
class Unannounced:
    """A service whose current operation (run) ended in the database, but whose
    ``completed`` / ``failed`` event is not in the event log."""

    service_id: str
    flow_run_id: str


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def unannounced(
    sessions: sessionmaker[Session],
    *,
    grace: timedelta = TERMINAL_GRACE,
    since: datetime | None = None,
) -> list[Unannounced]:
    """Services out of a transitional status for longer than ``grace`` whose recorded
    run published events but no terminal one (``since``: only services changed from
    then on). A run with no event at all is not counted: a recorded id whose run never
    began (a launch that failed) or a row written without a run (lab seed)."""
    cutoff = datetime.now(UTC) - grace
    run = ServiceInstance.flow_run_id
    ended = (
        select(EventLog.id)
        .where(EventLog.operation_id == run, EventLog.service_id == ServiceInstance.id)
        .where(text(TERMINAL_EVENT_SQL))
    )
    ran = select(EventLog.id).where(
        EventLog.service_id == ServiceInstance.id, EventLog.operation_id == run
    )
    query = (
        select(ServiceInstance.id, run)
        .where(ServiceInstance.status.not_in([t.value for t in TRANSITIONAL]))
        .where(run.is_not(None), ServiceInstance.updated_at < cutoff)
        .where(~ended.exists(), ran.exists())
    )
    if since is not None:
        query = query.where(ServiceInstance.updated_at >= since)
    with sessions() as s:
        return [Unannounced(sid, run_id) for sid, run_id in s.execute(query).all() if run_id]


def _failed_step(events: list[EventLog]) -> int:
    """The step the run's ``failed`` notice names; else the furthest step it started
    (as the run's own hook: the failed step, else the current one); 0 before any."""
    progress = [e for e in events if e.event_type.endswith(".progress")]
    notices = [e for e in progress if e.data.get("status") == "failed"]
    if notices:
        return int(notices[-1].data.get("step", 0))
    return max((int(e.data.get("step", 0)) for e in progress), default=0)


def terminal_event(row: ServiceInstance, events: list[EventLog]) -> schema.LifecycleEvent:
    """The event that ends the run of ``events`` (oldest first, at least one), as the
    committed row tells it: ``failed`` when the service failed or went back where it
    started with an error (a compensated plan change), else ``completed``; at the time
    the row was last written."""
    assert row.flow_run_id is not None
    operation = Operation(events[0].operation)
    at = _aware(row.updated_at)
    ids = {"service_id": row.id, "tenant_id": row.tenant_id, "operation_id": row.flow_run_id}
    if row.status == ServiceStatus.FAILED.value or row.error:
        error = (row.error or "failed")[:500]
        return schema.failed(operation, **ids, step=_failed_step(events), error=error, at=at)
    return schema.completed(operation, **ids, at=at)


def announce(
    sessions: sessionmaker[Session], publisher: EventPublisher, item: Unannounced
) -> int | None:
    """Publish ``item``'s missing terminal event. Its id, or None when no longer
    needed: the row moved on since, or another publisher stored the event first."""
    with sessions() as s:
        row = s.get(ServiceInstance, item.service_id)
        if row is None or row.flow_run_id != item.flow_run_id:
            return None
        if ServiceStatus(row.status) in TRANSITIONAL:
            return None
        events = list(s.scalars(
            select(EventLog)
            .where(EventLog.service_id == row.id, EventLog.operation_id == item.flow_run_id)
            .order_by(EventLog.id)
        ))  # fmt: skip
        if not events:
            return None
        event = terminal_event(row, events)
        seen = (row.status, row.flow_run_id, row.version)

    def unchanged(session: Session) -> bool:
        # Asked under the publisher's per-service lock, which every event of the service
        # takes: a next run's events, should one begin now, still come after this one.
        # No row lock: a request holding the row while it publishes would deadlock.
        now = session.execute(
            select(
                ServiceInstance.status, ServiceInstance.flow_run_id, ServiceInstance.version
            ).where(ServiceInstance.id == item.service_id)
        ).one_or_none()
        return now is not None and tuple(now) == seen

    event_id = publisher.publish(event, only_if=unchanged)
    if event_id is not None:
        log.warning(
            "operation ended without its terminal event; published it",
            extra={"service_id": item.service_id, "flow_run_id": item.flow_run_id,
                   "event_type": event.event_type, "event_id": event_id},
        )  # fmt: skip
    return event_id


def announce_missing(
    sessions: sessionmaker[Session],
    publisher: EventPublisher,
    *,
    grace: timedelta = TERMINAL_GRACE,
    since: datetime | None = None,
) -> tuple[list[int], datetime | None]:
    """One pass: publish every missing terminal event. The ids published, and the
    ``since`` for the next pass (unchanged when one could not be published: the next
    pass tries it again, however long that takes)."""
    started = datetime.now(UTC)
    published = []
    failures = 0
    for item in unannounced(sessions, grace=grace, since=since):
        try:
            event_id = announce(sessions, publisher, item)
        except Exception:  # one bad row must not hide the others
            log.exception("could not publish a missing terminal event",
                          extra={"service_id": item.service_id})  # fmt: skip
            failures += 1
            continue
        if event_id is not None:
            published.append(event_id)
    return published, since if failures else started - grace - SWEEP_OVERLAP


async def run_reconciler(
    sessions: sessionmaker[Session],
    prefect_api: str,
    interval: float,
    publisher: EventPublisher | None = None,
) -> None:
    since: datetime | None = None
    while True:
        try:
            await reconcile_once(sessions, prefect_api)
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop outlives Prefect or database hiccups
            log.exception("reconciler pass failed")
        # Bulk runs whose parent died get a new one (stack/bulk_recovery.py).
        await bulk_pass(sessions, prefect_api)
        if publisher is not None:
            try:
                # Database and Redis calls, synchronous: off the loop that serves SSE.
                _, since = await asyncio.to_thread(
                    announce_missing, sessions, publisher, since=since
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("terminal event pass failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def reconciler_job(state: AppState) -> AsyncIterator[None]:
    """The stuck-run check as a background job of the API process (``create_app``'s
    ``background``), when a Prefect server is known and the interval is positive."""
    api_url = state.settings.effective_prefect_api_url()
    interval = state.settings.reconcile_interval_seconds
    if not api_url or interval <= 0:
        yield
        return
    found = state.extras.get(PUBLISHER)
    # Without Redis (no realtime) the event still goes to the log, the history endpoint.
    publisher = found if isinstance(found, EventPublisher) else EventPublisher(state.sessions, None)
    task = asyncio.create_task(run_reconciler(state.sessions, api_url, interval, publisher))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

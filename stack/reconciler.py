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
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fiberflow.api.state import AppState
from fiberflow.core.db.models import TRANSITIONAL, ServiceInstance
from fiberflow.tasks.handoff import ENDED_BADLY, astart_reconcile

log = logging.getLogger(__name__)
# Heartbeats come every 30 s (Prefect's minimum); three missed ones mean the run is gone.
HEARTBEAT_STALE = timedelta(seconds=90)
# A service younger than this is left alone: its run may not have started yet.
GRACE = timedelta(seconds=20)


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
    client: httpx.AsyncClient, flow_run_id: str, run_process: str | None = None
) -> str | None:
    """Why this run will never finish its service, or None if it still may."""
    resp = await client.get(f"/flow_runs/{flow_run_id}")
    if resp.status_code == 404:
        return "its flow run does not exist"
    run: dict[str, Any] = resp.json()
    state = (run.get("state") or {}).get("type", "")
    if state in ENDED_BADLY:
        return f"its flow run ended {state.lower()}"
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


async def run_reconciler(
    sessions: sessionmaker[Session], prefect_api: str, interval: float
) -> None:
    while True:
        try:
            await reconcile_once(sessions, prefect_api)
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop outlives Prefect or database hiccups
            log.exception("reconciler pass failed")
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
    task = asyncio.create_task(run_reconciler(state.sessions, api_url, interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""Checks shared by the fault tests: terminal status, event log, audit trail."""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from fiberflow.core.db.models import DeviceCommandAudit, EventLog
from fiberflow.core.settings import get_settings
from fiberflow.devices.inventory import load_inventory
from fiberflow.events.schema import validate_event
from fiberflow.flows.provision import provision
from fiberflow.lab.lab_inventory import write_inventory
from fiberflow.tasks.runtime import reset_runtime
from tests.fixtures.lifecycle import Lifecycle

#: How many times a device task runs when every attempt fails transiently.
ATTEMPTS = 1 + get_settings().task_retries


def run_events(lc: Lifecycle, sid: str) -> list[EventLog]:
    """The events of the service's latest run, oldest first, each checked against the
    wire contract."""
    run_id = lc.service(sid).flow_run_id
    events = [e for e in lc.events(sid) if e.data.get("flow_run_id") == run_id]
    for e in events:
        validate_event(e.event_type, e.data)
    return events


def assert_completed(lc: Lifecycle, sid: str, operation: str, status: str) -> list[EventLog]:
    """The run ended in ``status``; its events climb the steps and end with ``completed``."""
    svc = lc.service(sid)
    assert svc.status == status, svc.error
    events = run_events(lc, sid)
    types = [e.event_type for e in events]
    assert types[-1] == f"service.{operation}.completed"
    assert types.count(f"service.{operation}.completed") == 1
    assert not any(t.endswith(".failed") for t in types)
    steps = [e.data["step"] for e in events[:-1]]
    assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == events[0].data["total_steps"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    return events


def assert_failed(
    lc: Lifecycle, sid: str, operation: str, step: int, needle: str
) -> list[EventLog]:
    """The run ended ``failed`` at ``step`` with ``needle`` in the error, in the row and in
    the last event, and the failed event comes after every compensation notice."""
    svc = lc.service(sid)
    assert svc.status == "failed"
    assert needle in (svc.error or ""), svc.error
    events = run_events(lc, sid)
    types = [e.event_type for e in events]
    assert types[-1] == f"service.{operation}.failed", types
    assert sum(t.endswith((".failed", ".completed")) for t in types) == 1
    assert events[-1].data["step"] == step
    assert needle in events[-1].data["error"]
    failed = [e.data for e in events if e.data.get("status") == "failed"]
    assert failed and failed[-1]["step"] == step and needle in failed[-1]["message"]
    return events


def statuses(events: list[EventLog]) -> list[str]:
    return [e.data["status"] for e in events if e.event_type.endswith(".progress")]


def retry_attempts(events: list[EventLog]) -> list[int]:
    """Attempt numbers of the ``retrying`` notices. The coalescer keeps at most one a
    second per run, so a fast retry may have none: the audit log counts every attempt."""
    attempts = [e.data["attempt"] for e in events if e.data.get("status") == "retrying"]
    assert attempts == sorted(set(attempts)) and set(attempts) <= set(range(2, ATTEMPTS + 1))
    return attempts


def rollback_notices(events: list[EventLog]) -> list[str]:
    return [e.data["message"] for e in events if e.data.get("status") == "rolled_back"]


def audit(
    lc: Lifecycle, sid: str, device: str, command_like: str = "%"
) -> list[DeviceCommandAudit]:
    """The service's device commands on ``device`` (SQL LIKE on the command), in order."""
    with Session(lc.engine) as s:
        q = (
            select(DeviceCommandAudit)
            .where(
                DeviceCommandAudit.service_id == sid,
                DeviceCommandAudit.device == device,
                DeviceCommandAudit.command.like(command_like),
            )
            .order_by(DeviceCommandAudit.id)
        )
        return list(s.scalars(q))


def lock_waiters(conn: Connection) -> int:
    """PostgreSQL backends of this database, other than ``conn``'s, waiting on a lock."""
    # Statistics are a snapshot per transaction: take a fresh one for every look.
    conn.execute(text("SELECT pg_stat_clear_snapshot()"))
    waiting = conn.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
    )
    return int(waiting or 0)


def provisioned(lc: Lifecycle, **service: Any) -> tuple[str, str]:
    """A service provisioned through the flow: (service id, RADIUS username)."""
    sid = lc.new_service(**service)
    provision(sid)
    svc = lc.service(sid)
    assert svc.status == "active", svc.error
    assert svc.radius_username is not None
    return sid, svc.radius_username


def quick_radius_timeouts(timeout: float = 0.3) -> None:
    """One short try per RADIUS request (auth and CoA) from now on: the lab inventory is
    rewritten and the runtime rebuilt, so a silent server costs a fraction of a second."""
    path = os.environ["FIBERFLOW_INVENTORY"]
    inv = load_inventory(path)
    quick = inv.radius.model_copy(update={"timeout": timeout, "retries": 0})
    write_inventory(inv.model_copy(update={"radius": quick}), path)
    reset_runtime()


def quick_device_timeout(name: str, seconds: float) -> None:
    """A shorter timeout for one OLT or BNG (the lab answers in milliseconds): a session
    the device drops is noticed when a read times out, so each dropped try costs this."""
    path = os.environ["FIBERFLOW_INVENTORY"]
    inv = load_inventory(path)
    olts = [o.model_copy(update={"timeout": seconds}) if o.name == name else o for o in inv.olts]
    bngs = [b.model_copy(update={"timeout": seconds}) if b.name == name else b for b in inv.bngs]
    write_inventory(inv.model_copy(update={"olts": olts, "bngs": bngs}), path)
    reset_runtime()


def when(condition: Callable[[], bool], action: Callable[[], object],
         timeout: float = 60.0) -> threading.Thread:  # fmt: skip
    """Run ``action`` in a thread as soon as ``condition`` holds (polled every 20 ms)."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def in_thread(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """``fn(*args)`` in a thread with a copy of this context (the test's Prefect settings);
    returns a function that joins it and gives the result or raises its exception."""
    ctx = contextvars.copy_context()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = ctx.run(fn, *args)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box.get("result")

    return join

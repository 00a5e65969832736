"""Drivers as tasks use them: built from the inventory, audited, limited per device.

``device_slot(name)`` holds one of the device's Prefect global concurrency slots (limit
``device:<name>``, created by ``fiberflow up`` with the inventory's ``max_sessions``)
around one SSH session: one driver call, or the calls of one ``session()`` scope.

``session(driver, name)``: one slot and one held CLI session (the driver's ``held()``)
for several calls to one device within a task, e.g. ``add_ont`` + ``add_service_port``:
one login and one acquire/release of the slot instead of one per call. Inside it,
``device_slot(name)`` of the same thread is a no-op (the scope already holds the slot),
so helpers that take the slot around their own calls compose with it; only ``driver``
may talk to that device inside the scope.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

from prefect.concurrency.sync import concurrency

from fiberflow.core import metrics
from fiberflow.core.db.models import DeviceCommandAudit
from fiberflow.devices.base import AuditSink, CommandRecord
from fiberflow.devices.bng.protocol import BngDriver
from fiberflow.devices.olt.protocol import OltDriver
from fiberflow.devices.radius.client import RadiusClient, nas_target
from fiberflow.devices.radius.driver import Radius
from fiberflow.devices.radius.protocol import RadiusDriver
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.devices.radius.types import NasTarget
from fiberflow.devices.registry import bng_driver, olt_driver
from fiberflow.tasks.context import RunContext
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)
T = TypeVar("T")
LIMIT_PREFIX = "device:"
# How long a task waits for a free session slot before failing (then retrying).
SLOT_TIMEOUT_SECONDS = 300.0


def limit_name(device: str) -> str:
    return f"{LIMIT_PREFIX}{device}"


_SCOPES = threading.local()  # the devices whose slot a session() of this thread holds


def _scoped() -> set[str]:
    if not hasattr(_SCOPES, "devices"):
        _SCOPES.devices = set()
    held: set[str] = _SCOPES.devices
    return held


@contextmanager
def device_slot(device: str) -> Iterator[None]:
    if device in _scoped():  # inside session(): its slot covers this call
        yield
        return
    with concurrency(limit_name(device), occupy=1, strict=True,
                     timeout_seconds=SLOT_TIMEOUT_SECONDS):  # fmt: skip
        yield


@contextmanager
def session(driver: OltDriver | BngDriver, device: str) -> Iterator[None]:
    """One slot of ``device`` and one CLI session of ``driver`` for every call inside
    (nested: the enclosing scope's slot; the driver reuses its session while alive)."""
    scoped = _scoped()
    if device in scoped:
        with driver.held():
            yield
        return
    with device_slot(device), driver.held():
        scoped.add(device)
        try:
            yield
        finally:
            scoped.discard(device)


def audit_sink(ctx: RunContext | None, step: str) -> AuditSink:
    """Each device command becomes a row of the audit log (output already redacted)."""
    sessions = runtime().sessions

    def record(rec: CommandRecord) -> None:
        fields = {"device": rec.device, "duration_ms": round(rec.duration_ms, 1),
                  "status": "ok" if rec.ok else "failed"}  # fmt: skip
        log.info("device command", extra=ctx.log_extra(step=step, **fields) if ctx else fields)
        with suppress(Exception):  # metrics never break the operation either
            metrics.observe_device_command(rec.device, rec.command, rec.output, rec.duration_ms)
        try:
            with sessions() as s, s.begin():
                s.add(
                    DeviceCommandAudit(
                        service_id=ctx.service_id if ctx else None,
                        flow_run_id=ctx.flow_run_id if ctx else None,
                        step=step,
                        device=rec.device,
                        command=rec.command[:4000],
                        output=rec.output[:20000],
                        ok=rec.ok,
                        duration_ms=rec.duration_ms,
                        config=rec.config,
                    )
                )
        except Exception:  # the audit must never break the operation it records
            log.exception("audit write failed", extra={"device": rec.device, "step": step})

    return record


def olt(ctx: RunContext | None, name: str, step: str) -> OltDriver:
    """The driver of OLT ``name``, for its inventory platform (devices/registry.py)."""
    return olt_driver(runtime().inventory.olt(name), audit=audit_sink(ctx, step))


def bng(ctx: RunContext | None, name: str, step: str) -> BngDriver:
    inv = runtime().inventory
    return bng_driver(inv.bng(name), inv.walled_garden_policy, audit=audit_sink(ctx, step))


def radius(ctx: RunContext | None, step: str) -> RadiusDriver:
    sink = audit_sink(ctx, step)
    inv = runtime().inventory
    return Radius(
        RadiusStore(runtime().sessions, audit=sink),
        RadiusClient.from_inventory(inv.radius, audit=sink),
    )


def nas_for(olt_name: str) -> NasTarget:
    return nas_target(runtime().inventory.bng_for(olt_name))

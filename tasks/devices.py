"""Drivers as tasks use them: built from the inventory, audited, limited per device.

``device_slot(name)`` holds one of the device's Prefect global concurrency slots (limit
``device:<name>``, created by ``fiberflow up`` with the inventory's ``max_sessions``)
around one driver call, which is one SSH session: never longer.
"""

from __future__ import annotations

import logging
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


@contextmanager
def device_slot(device: str) -> Iterator[None]:
    with concurrency(limit_name(device), occupy=1, strict=True,
                     timeout_seconds=SLOT_TIMEOUT_SECONDS):  # fmt: skip
        yield


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

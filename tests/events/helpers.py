"""Small builders shared by the event tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis

from fiberflow.events.record import EventRecord
from fiberflow.events.schema import LifecycleEvent, completed, progress


@dataclass
class Workflow:
    """One operation run of one service; builds its events step by step."""

    service_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    operation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    operation: str = "provisioning"

    def step(self, n: int, status: str | None = None) -> LifecycleEvent:
        return progress(
            self.operation, service_id=self.service_id, tenant_id=self.tenant_id,
            operation_id=self.operation_id, step=n, total_steps=6,
            status=status or f"step-{n}", message=f"step {n}",
        )  # fmt: skip

    def done(self) -> LifecycleEvent:
        return completed(
            self.operation, service_id=self.service_id, tenant_id=self.tenant_id,
            operation_id=self.operation_id,
        )  # fmt: skip

    def next_operation(self, operation: str) -> Workflow:
        return Workflow(self.service_id, self.tenant_id, str(uuid.uuid4()), operation)


def stream_records(client: redis.Redis, stream: str) -> list[EventRecord]:
    return [EventRecord.from_fields(fields) for _id, fields in client.xrange(stream)]


def first_occurrences(ids: list[int]) -> list[int]:
    seen: set[int] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def fake_record(event_id: int, service_id: str, tenant_id: str = "t") -> dict[str, str]:
    """Stream entry fields for an event that only exists in Redis (hub-only tests)."""
    return EventRecord(
        event_id, service_id, tenant_id, "op", "service.provisioning.progress",
        {"n": event_id, "blob": json.dumps([event_id])},
    ).to_fields()  # fmt: skip


WAIT = 15.0  # generous upper bound for readiness waits, never a performance assertion


async def until(cond: Callable[[], bool], what: str, poll: float = 0.01) -> None:
    """Poll ``cond`` until true; fail naming ``what`` after ``WAIT`` seconds."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(poll)

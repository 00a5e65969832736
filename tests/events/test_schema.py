from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from fiberflow.events.schema import (
    CompletedEvent,
    EventKind,
    FailedEvent,
    ProgressEvent,
    completed,
    event_type,
    failed,
    parse_event_type,
    progress,
    validate_event,
)

OPERATIONS = [
    "provisioning",
    "suspension",
    "resumption",
    "termination",
    "reprovisioning",
    "plan_change",
]
SID, TID, RUN = (str(uuid.uuid4()) for _ in range(3))

GOOD: dict[str, dict[str, Any]] = {
    "progress": {
        "service_instance_id": SID,
        "tenant_id": TID,
        "step": 3,
        "total_steps": 6,
        "status": "configuring",
        "message": "Configuring ONT on olt-1",
        "timestamp": "2025-01-02T03:04:05.123456Z",
    },
    "completed": {
        "service_instance_id": SID,
        "tenant_id": TID,
        "completed_at": "2025-01-02T03:04:05+00:00",
    },
    "failed": {
        "service_instance_id": SID,
        "tenant_id": TID,
        "step": 4,
        "error": "RADIUS rows rejected",
        "failed_at": "2025-01-02T03:04:05Z",
    },
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("kind", ["progress", "completed", "failed"])
def test_event_type_names(operation: str, kind: str) -> None:
    name = event_type(operation, kind)
    assert name == f"service.{operation}.{kind}"
    assert parse_event_type(name) == (operation, EventKind(kind))
    assert validate_event(name, GOOD[kind])


@pytest.mark.parametrize(
    "name",
    [
        "service.provisioning.started",
        "service.installation.progress",
        "svc.provisioning.progress",
        "service.provisioning",
        "service.provisioning.progress.x",
    ],
)
def test_unknown_event_types_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        validate_event(name, GOOD["progress"])


@pytest.mark.parametrize(("kind", "field"), [(k, f) for k, data in GOOD.items() for f in data])
def test_every_field_is_required(kind: str, field: str) -> None:
    data = dict(GOOD[kind])
    del data[field]
    with pytest.raises(ValidationError, match=field):
        validate_event(f"service.provisioning.{kind}", data)


BAD_VALUES = [
    ("progress", "service_instance_id", "svc-1"),
    ("progress", "service_instance_id", 42),
    # Fixed (not uuid4()): the test id must be the same on every pytest-xdist worker.
    ("progress", "service_instance_id", "5f0c2a9e1d7b4c559a3e0c6d2b7f1a11"),  # not 8-4-4-4-12
    ("progress", "tenant_id", None),
    ("progress", "step", "3"),
    ("progress", "step", 3.0),
    ("progress", "step", True),
    ("progress", "step", -1),
    ("progress", "total_steps", 0),
    ("progress", "total_steps", "6"),
    ("progress", "status", ""),
    ("progress", "status", 5),
    ("progress", "message", None),
    ("progress", "message", ["a"]),
    ("progress", "timestamp", 1735787045),
    ("progress", "timestamp", "2025-01-02T03:04:05"),  # naive
    ("progress", "timestamp", "2025-01-02T05:04:05+02:00"),  # not UTC
    ("progress", "timestamp", "yesterday"),
    ("completed", "completed_at", None),
    ("completed", "completed_at", 1735787045.5),
    ("completed", "tenant_id", "not-a-uuid"),
    ("failed", "step", "4"),
    ("failed", "error", ""),
    ("failed", "error", {"msg": "x"}),
    ("failed", "failed_at", "2025-13-02T03:04:05Z"),
]


@pytest.mark.parametrize(("kind", "field", "value"), BAD_VALUES)
def test_bad_types_rejected(kind: str, field: str, value: object) -> None:
    data = {**GOOD[kind], field: value}
    with pytest.raises(ValidationError, match=field):
        validate_event(f"service.suspension.{kind}", data)


def test_times_accept_z_and_offset_and_serialize_as_utc_z() -> None:
    a = validate_event("service.provisioning.completed", GOOD["completed"])
    assert isinstance(a, CompletedEvent)
    assert a.completed_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert a.model_dump(mode="json")["completed_at"] == "2025-01-02T03:04:05Z"


def test_extra_keys_allowed_and_kept() -> None:
    data = {**GOOD["progress"], "operation": "provisioning", "flow_run_id": RUN, "attempt": 2}
    payload = validate_event("service.provisioning.progress", data)
    dumped = payload.model_dump(mode="json")
    assert dumped["flow_run_id"] == RUN and dumped["attempt"] == 2


def test_builders_produce_contract_events() -> None:
    at = datetime(2025, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    p = progress(
        "provisioning", service_id=SID, tenant_id=TID, operation_id=RUN,
        step=1, total_steps=6, status="validating", message="Validating", at=at, attempt=1,
    )  # fmt: skip
    c = completed("suspension", service_id=SID, tenant_id=TID, operation_id=RUN)
    f = failed("termination", service_id=SID, tenant_id=TID, operation_id=RUN, step=2, error="x")
    assert (p.event_type, c.event_type, f.event_type) == (
        "service.provisioning.progress",
        "service.suspension.completed",
        "service.termination.failed",
    )
    assert isinstance(p.payload, ProgressEvent) and isinstance(f.payload, FailedEvent)
    data = p.data()
    # A non-UTC input time is converted, never sent with its offset.
    assert data["timestamp"] == "2025-05-01T10:00:00Z"
    assert data["operation"] == "provisioning" and data["flow_run_id"] == RUN
    assert data["attempt"] == 1
    for event in (p, c, f):
        assert validate_event(event.event_type, event.data()).model_dump(mode="json") == (
            event.data()
        )
    assert (p.service_id, p.tenant_id, p.is_terminal, c.is_terminal) == (SID, TID, False, True)


def test_builders_validate_their_input() -> None:
    with pytest.raises(ValidationError, match="service_instance_id"):
        completed("provisioning", service_id="nope", tenant_id=TID, operation_id=RUN)
    with pytest.raises(ValueError):
        completed("installation", service_id=SID, tenant_id=TID, operation_id=RUN)

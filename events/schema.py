"""The event wire contract (DESIGN.md, "Event wire contract"), defined once.

Three payloads travel as the SSE ``data:`` JSON object; the SSE ``event:`` is
``service.<operation>.<kind>``::

    progress  {service_instance_id, tenant_id, step, total_steps, status, message, timestamp}
    completed {service_instance_id, tenant_id, completed_at}
    failed    {service_instance_id, tenant_id, step, error, failed_at}

Every listed key is required and strictly typed; extra keys (``operation``,
``flow_run_id``, ``attempt`` ...) are allowed and kept. Ids are UUID strings,
times ISO-8601 UTC (``Z`` or ``+00:00``). Retries and compensation notices are
progress events: there are no other kinds.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    StrictStr,
)

from fiberflow.core.db.models.service import Operation

__all__ = [
    "CompletedEvent",
    "EventKind",
    "EventPayload",
    "FailedEvent",
    "LifecycleEvent",
    "Operation",
    "ProgressEvent",
    "completed",
    "event_type",
    "failed",
    "parse_event_type",
    "progress",
    "validate_event",
]


class EventKind(enum.StrEnum):
    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"


def _uuid_str(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError as exc:
        raise ValueError("must be a UUID string") from exc
    # One spelling on the wire: canonical lower-case hyphenated form.
    if str(parsed) != value.lower():
        raise ValueError("must be a UUID string in 8-4-4-4-12 form")
    return str(parsed)


def _utc_datetime(value: object) -> datetime:
    # Only an ISO-8601 string or an aware datetime: pydantic's lax mode would also take
    # epoch numbers, which the contract does not allow.
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("must be an ISO-8601 timestamp") from exc
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise ValueError("must be an ISO-8601 timestamp string")
    if parsed.tzinfo is None or parsed.utcoffset() != UTC.utcoffset(None):
        raise ValueError("must be in UTC (suffix Z or +00:00)")
    return parsed.astimezone(UTC)


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UuidStr = Annotated[StrictStr, AfterValidator(_uuid_str)]
UtcTimestamp = Annotated[
    datetime, BeforeValidator(_utc_datetime), PlainSerializer(_iso_z, return_type=str)
]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
Step = Annotated[StrictInt, Field(ge=0)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    service_instance_id: UuidStr
    tenant_id: UuidStr


class ProgressEvent(_Payload):
    step: Step
    total_steps: Annotated[StrictInt, Field(ge=1)]
    status: NonEmptyStr
    message: StrictStr
    timestamp: UtcTimestamp


class CompletedEvent(_Payload):
    completed_at: UtcTimestamp


class FailedEvent(_Payload):
    step: Step
    error: NonEmptyStr
    failed_at: UtcTimestamp


EventPayload = ProgressEvent | CompletedEvent | FailedEvent


def _kind_of(payload: EventPayload) -> EventKind:
    if isinstance(payload, ProgressEvent):
        return EventKind.PROGRESS
    if isinstance(payload, CompletedEvent):
        return EventKind.COMPLETED
    return EventKind.FAILED


def event_type(operation: Operation | str, kind: EventKind | str) -> str:
    """``service.<operation>.<kind>``; raises ValueError for an unknown name."""
    return f"service.{Operation(operation).value}.{EventKind(kind).value}"


def parse_event_type(name: str) -> tuple[Operation, EventKind]:
    """The inverse of event_type(); raises ValueError for anything else."""
    parts = name.split(".")
    if len(parts) != 3 or parts[0] != "service":
        raise ValueError(f"not a lifecycle event type: {name!r}")
    return Operation(parts[1]), EventKind(parts[2])


def validate_event(name: str, data: Mapping[str, Any]) -> EventPayload:
    """Check one (``event:``, ``data:``) pair against the contract.

    Raises ValueError (pydantic.ValidationError is one) naming the bad field.
    """
    _, kind = parse_event_type(name)
    if kind is EventKind.PROGRESS:
        return ProgressEvent.model_validate(dict(data))
    if kind is EventKind.COMPLETED:
        return CompletedEvent.model_validate(dict(data))
    return FailedEvent.model_validate(dict(data))


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One event ready to publish: the payload plus where it belongs.

    ``operation_id`` identifies one run of an operation (the flow run id); the
    stream's catch-up rule ("the latest operation's events") groups by it.
    """

    operation: Operation
    operation_id: str
    payload: EventPayload

    @property
    def kind(self) -> EventKind:
        return _kind_of(self.payload)

    @property
    def event_type(self) -> str:
        return event_type(self.operation, self.kind)

    @property
    def service_id(self) -> str:
        return self.payload.service_instance_id

    @property
    def tenant_id(self) -> str:
        return self.payload.tenant_id

    @property
    def is_terminal(self) -> bool:
        return self.kind is not EventKind.PROGRESS

    def data(self) -> dict[str, Any]:
        """The ``data:`` JSON object (times as ISO-8601 ``...Z`` strings)."""
        return self.payload.model_dump(mode="json")


def _now(at: datetime | None) -> datetime:
    return (at or datetime.now(UTC)).astimezone(UTC)


def _extras(operation: Operation, operation_id: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {"operation": operation.value, "flow_run_id": operation_id}
    base.update(extra)
    return base


def progress(
    operation: Operation | str,
    *,
    service_id: str,
    tenant_id: str,
    operation_id: str,
    step: int,
    total_steps: int,
    status: str,
    message: str,
    at: datetime | None = None,
    **extra: Any,
) -> LifecycleEvent:
    """A ``service.<operation>.progress`` event (a step starts, a retry, a notice)."""
    op = Operation(operation)
    payload = ProgressEvent.model_validate(
        {
            "service_instance_id": service_id,
            "tenant_id": tenant_id,
            "step": step,
            "total_steps": total_steps,
            "status": status,
            "message": message,
            "timestamp": _now(at),
            **_extras(op, operation_id, extra),
        }
    )
    return LifecycleEvent(op, operation_id, payload)


def completed(
    operation: Operation | str,
    *,
    service_id: str,
    tenant_id: str,
    operation_id: str,
    at: datetime | None = None,
    **extra: Any,
) -> LifecycleEvent:
    """A ``service.<operation>.completed`` event."""
    op = Operation(operation)
    payload = CompletedEvent.model_validate(
        {
            "service_instance_id": service_id,
            "tenant_id": tenant_id,
            "completed_at": _now(at),
            **_extras(op, operation_id, extra),
        }
    )
    return LifecycleEvent(op, operation_id, payload)


def failed(
    operation: Operation | str,
    *,
    service_id: str,
    tenant_id: str,
    operation_id: str,
    step: int,
    error: str,
    at: datetime | None = None,
    **extra: Any,
) -> LifecycleEvent:
    """A ``service.<operation>.failed`` event; ``step`` is the step that failed."""
    op = Operation(operation)
    payload = FailedEvent.model_validate(
        {
            "service_instance_id": service_id,
            "tenant_id": tenant_id,
            "step": step,
            "error": error,
            "failed_at": _now(at),
            **_extras(op, operation_id, extra),
        }
    )
    return LifecycleEvent(op, operation_id, payload)

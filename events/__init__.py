"""Lifecycle events: the wire contract, the publisher (DB log + Redis outbox) and the relay."""

from fiberflow.events.record import EventRecord
from fiberflow.events.schema import (
    CompletedEvent,
    EventKind,
    EventPayload,
    FailedEvent,
    LifecycleEvent,
    ProgressEvent,
    completed,
    event_type,
    failed,
    parse_event_type,
    progress,
    validate_event,
)

__all__ = [
    "CompletedEvent",
    "EventKind",
    "EventPayload",
    "EventRecord",
    "FailedEvent",
    "LifecycleEvent",
    "ProgressEvent",
    "completed",
    "event_type",
    "failed",
    "parse_event_type",
    "progress",
    "validate_event",
]

"""The wire contract of a bulk run's events, defined once (docs/events.md, "Bulk runs").

Two event types travel on a bulk run's stream (SSE ``event:``), each with one JSON
object as ``data:``::

    bulk.progress  {bulk_id, tenant_id, operation, status, counts, total, items, timestamp}
    bulk.completed {bulk_id, tenant_id, status, counts, total, completed_at}

``counts`` holds the number of items in each state (``pending``, ``running``,
``completed``, ``failed``, ``skipped``) and adds up to ``total``; ``items`` lists the
items whose state changed since the bulk's previous event (``[{service_id, state,
reason}]``, possibly empty), so a client rebuilds the failed and skipped lists from
the events alone. As with service events, every listed key is required, extra keys
are kept, ids are UUID strings and times ISO-8601 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from fiberflow.events.schema import UtcTimestamp, UuidStr

BULK_PROGRESS = "bulk.progress"
BULK_COMPLETED = "bulk.completed"
BULK_EVENT_TYPES = (BULK_PROGRESS, BULK_COMPLETED)

BulkOperation = Literal["suspend", "resume", "terminate", "change-plan", "reprovision"]
BulkStatus = Literal[
    "scheduled", "awaiting_approval", "running", "completed", "cancelled", "rejected", "failed"
]
#: The statuses a bulk run ends in (``bulk.completed``'s ``status``).
BulkEndStatus = Literal["completed", "cancelled", "rejected", "failed"]
ItemState = Literal["pending", "running", "completed", "failed", "skipped"]
#: Item states that are final: the share of items in them is the bulk's progress.
TERMINAL_ITEM_STATES: frozenset[str] = frozenset({"completed", "failed", "skipped"})

Count = Annotated[StrictInt, Field(ge=0)]


class BulkCounts(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    pending: Count
    running: Count
    completed: Count
    failed: Count
    skipped: Count

    def sum(self) -> int:
        return self.pending + self.running + self.completed + self.failed + self.skipped


class BulkItemChange(BaseModel):
    """One item whose state changed; ``reason`` says why it failed or was skipped."""

    model_config = ConfigDict(extra="allow", frozen=True)

    service_id: UuidStr
    state: ItemState
    reason: StrictStr | None = None


class _BulkPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    bulk_id: UuidStr
    tenant_id: UuidStr
    counts: BulkCounts
    total: Count

    @model_validator(mode="after")
    def _counts_add_up(self) -> Self:
        # Every item is in exactly one state: counts that do not add up are a bug in
        # whoever counted, and a progress bar built on them would lie.
        if self.counts.sum() != self.total:
            raise ValueError(f"counts add up to {self.counts.sum()}, not total {self.total}")
        return self


class BulkProgressEvent(_BulkPayload):
    operation: BulkOperation
    status: BulkStatus
    items: list[BulkItemChange]
    timestamp: UtcTimestamp


class BulkCompletedEvent(_BulkPayload):
    status: BulkEndStatus
    completed_at: UtcTimestamp


BulkPayload = BulkProgressEvent | BulkCompletedEvent


def validate_bulk_event(event_type: str, data: Mapping[str, Any]) -> BulkPayload:
    """Check one (``event:``, ``data:``) pair of a bulk stream against the contract.

    Raises ValueError (pydantic.ValidationError is one) naming the bad field or type.
    """
    if event_type == BULK_PROGRESS:
        return BulkProgressEvent.model_validate(dict(data))
    if event_type == BULK_COMPLETED:
        return BulkCompletedEvent.model_validate(dict(data))
    known = ", ".join(BULK_EVENT_TYPES)
    raise ValueError(f"not a bulk event type: {event_type!r} (one of {known})")

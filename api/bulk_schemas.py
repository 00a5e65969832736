"""Bodies of ``/api/v1/bulk``: what a bulk run is started with and what it answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fiberflow.api.schemas import ChangeOut, Name

MAX_SERVICES = 100_000
ItemStateName = Literal["pending", "running", "completed", "failed", "skipped"]


class BulkCreate(BaseModel):
    """Exactly one of ``service_ids`` and ``olt``, plus the operation's own fields:
    ``plan`` (change-plan, required) or ``hard`` (suspend, optional)."""

    model_config = ConfigDict(extra="forbid")

    service_ids: Annotated[list[str], Field(min_length=1, max_length=MAX_SERVICES)] | None = None
    olt: Name | None = None
    plan: Name | None = None
    hard: bool | None = None

    @field_validator("service_ids")
    @classmethod
    def _uuids(cls, v: list[str] | None) -> list[str] | None:
        """Canonical (lower-case) UUIDs, each once, in the order given."""
        if v is None:
            return None
        seen: dict[str, None] = {}
        for index, raw in enumerate(v):
            try:
                seen[str(uuid.UUID(raw))] = None
            except (ValueError, TypeError, AttributeError):
                raise ValueError(f"item {index} is not a service id (a UUID)") from None
        return list(seen)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.service_ids is None) == (self.olt is None):
            raise ValueError('give exactly one of "service_ids" and "olt"')
        return self


class BulkAccepted(BaseModel):
    id: str
    flow_run_id: str | None
    count: int


class BulkCounts(BaseModel):
    pending: int
    running: int
    completed: int
    failed: int
    skipped: int


class BulkOut(BaseModel):
    id: str
    operation: str
    status: str
    counts: BulkCounts
    total: int
    params: dict[str, Any]
    requested_by: str
    approved_by: str | None
    rejected_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    flow_run_id: str | None
    error: str | None


class BulkItemOut(BaseModel):
    service_id: str
    state: str
    reason: str | None
    flow_run_id: str | None


class BulkItemPage(BaseModel):
    items: list[BulkItemOut]
    next: str | None = Field(description="cursor of the next page; null on the last")


class BulkChangeOut(ChangeOut):
    """One change of a bulk dry run: a per-service change, with its service."""

    service_id: str


class BulkItemReason(BaseModel):
    service_id: str
    reason: str


class BulkDryRunOut(BaseModel):
    """``?dry_run=true``: each service's changes, in request order; none was made."""

    operation: str = Field(examples=["suspend"])
    count: int = Field(description="services in the request")
    changes: list[BulkChangeOut] = Field(
        description="the per-service plans concatenated in request order"
    )
    skipped: list[BulkItemReason] = Field(
        description="services the run would skip (their status forbids the operation ...)"
    )
    failed: list[BulkItemReason] = Field(
        description="services whose run would fail at its validating step"
    )

"""``GET /api/v1/services/{id}/events``: a service's event history from the database.

The items are exactly what the SSE relay sends (same ids, types and payloads):
both read the one event log, and coalescing happens before an event is stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import PrincipalDep, SessionDep
from fiberflow.api.schemas import ErrorBody
from fiberflow.events.history import HISTORY_PAGE, history

router = APIRouter(prefix="/api/v1/services", tags=["events"])


class EventItem(BaseModel):
    id: int = Field(description="The event id; the SSE `id:` of the same event")
    event_type: str = Field(examples=["service.provisioning.progress"])
    data: dict[str, Any] = Field(description="The event payload (DESIGN.md wire contract)")


@router.get(
    "/{service_id}/events",
    response_model=list[EventItem],
    responses={code: {"model": ErrorBody} for code in (401, 404, 422)},
    summary="A service's lifecycle events, oldest first",
)
def list_service_events(
    service_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    after: Annotated[
        int | None,
        # le: event ids are 64-bit; SQLite cannot even bind a larger Python int.
        Query(ge=0, le=2**63 - 1, description="Only events with a larger id (as Last-Event-ID)"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=HISTORY_PAGE, description="At most this many; page with `after`")
    ] = HISTORY_PAGE,
) -> list[EventItem]:
    service = get_visible_service(session, principal, service_id)
    return [
        EventItem(id=r.id, event_type=r.event_type, data=r.data)
        for r in history(session, service.id, after, limit)
    ]

"""``GET /api/v1/realtime/bulk/{id}``: a bulk run's events over Server-Sent Events.

A bulk run's ``bulk.progress`` and ``bulk.completed`` events are stored and streamed
like a service's (events/bulk.py), so this is the service stream's code with another
key: the same hub, database catch-up, ``Last-Event-ID`` resume, heartbeats and
per-tenant connection cap (api/realtime.py). A connection without ``Last-Event-ID``
gets every event of the bulk so far, then live ones; with it, every later one exactly
once. Operators of the bulk's tenant only.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, status
from fastapi.concurrency import run_in_threadpool

from fiberflow.api.bulk_visibility import get_tenant_bulk
from fiberflow.api.deps import OperatorDep, StateDep
from fiberflow.api.realtime import open_stream, parse_last_event_id, require_hub
from fiberflow.api.schemas import ErrorBody
from fiberflow.api.sse_stream import StreamResponse
from fiberflow.api.state import AppState
from fiberflow.core.tokens import Principal

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/realtime", tags=["realtime"])


def _check_bulk(state: AppState, principal: Principal, bulk_id: str) -> str:
    with state.sessions() as session:
        return get_tenant_bulk(session, principal, bulk_id).id


@router.get(
    "/bulk/{bulk_id}",
    summary="Live events of one bulk run (Server-Sent Events)",
    response_class=StreamResponse,
    status_code=status.HTTP_200_OK,  # see realtime.service_lifecycle
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the event stream"},
        **{code: {"model": ErrorBody} for code in (401, 403, 404, 422, 429, 503)},
    },
)
async def bulk_events(
    bulk_id: str,
    principal: OperatorDep,
    state: StateDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this event id (sent by browsers)"),
    ] = None,
) -> StreamResponse:
    after = parse_last_event_id(last_event_id)
    hub = require_hub(state)
    # A short session of its own, not a SessionDep held for the stream's whole life.
    key = await run_in_threadpool(_check_bulk, state, principal, bulk_id)
    log.debug("bulk stream opened", extra={"bulk_id": key, "tenant_id": principal.tenant_id})
    return open_stream(state, hub, principal, key, after)

"""``GET /api/v1/realtime/bulk/{id}``: a bulk run's events over Server-Sent Events.

A bulk run's ``bulk.progress`` and ``bulk.completed`` events are stored and streamed
like a service's (events/bulk.py), so this is the service stream's route body
(api/sse_route.py) with another key and lookup: the same hub, database catch-up,
``Last-Event-ID`` resume, heartbeats and per-tenant connection cap. A connection
without ``Last-Event-ID`` gets every event of the bulk so far, then live ones; with
it, every later one exactly once. Operators of the bulk's tenant only (403 before the
bulk is looked up).
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from fiberflow.api.bulk_visibility import get_tenant_bulk
from fiberflow.api.deps import OperatorDep
from fiberflow.api.sse_route import LastEventIdHeader, StreamSpec, add_stream_route
from fiberflow.core.tokens import Principal

router = APIRouter(prefix="/api/v1/realtime", tags=["realtime"])


def _lookup_bulk(session: Session, principal: Principal, bulk_id: str) -> str:
    return get_tenant_bulk(session, principal, bulk_id).id


async def bulk_events(
    bulk_id: str, principal: OperatorDep, last_event_id: LastEventIdHeader = None
) -> None:
    # The declaration is the documentation (no docstring: it would be the OpenAPI
    # description); StreamRoute serves the requests (api/sse_route.py).
    raise NotImplementedError  # pragma: no cover


add_stream_route(
    router,
    "/bulk/{bulk_id}",
    bulk_events,
    StreamSpec(param="bulk_id", operators_only=True, lookup=_lookup_bulk),
    summary="Live events of one bulk run (Server-Sent Events)",
    errors=(401, 403, 404, 422, 429, 503),
)

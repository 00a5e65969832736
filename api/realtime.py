"""``GET /api/v1/realtime/service-lifecycle/{id}``: the SSE relay.

Each connection is served from the process's one ``EventHub`` (one Redis reader
for all connections) plus a database catch-up (events.relay): a new connection
gets its service's latest operation so far, a ``Last-Event-ID`` resumes exactly
after that id. Messages carry ``id:`` (the event log id), ``event:`` (the event
type) and ``data:`` (the JSON payload); heartbeat comments keep proxies open.

The stream ends when the client goes (disconnect, or a send that times out), when
the client falls too far behind (the browser reconnects with ``Last-Event-ID``),
and on server shutdown (the server's SIGTERM/SIGINT, watched once per process by
api/exit_signal.py, stops the hub, which ends every stream).

A bulk run's stream (api/realtime_bulk.py) is served by the same ``open_stream``:
its events are keyed by the bulk id where a service's are keyed by the service id.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, status
from fastapi.concurrency import run_in_threadpool

from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import PrincipalDep, StateDep
from fiberflow.api.exit_signal import on_exit_signal
from fiberflow.api.schemas import ErrorBody
from fiberflow.api.sse_stream import ConnectionLimiter, Heartbeats, StreamResponse
from fiberflow.api.state import AppState
from fiberflow.core.tokens import Principal
from fiberflow.events.hub import EventHub
from fiberflow.events.outbox import run_outbox_flusher
from fiberflow.events.publisher import EventPublisher, connect_sync

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/realtime", tags=["realtime"])

HUB = "event_hub"
HEARTBEATS = "sse_heartbeats"
PUBLISHER = "event_publisher"
LIMITER = "sse_limiter"
RETRY_AFTER_SECONDS = 5
# A send that does not complete in this time means the client is gone (or stalled).
SEND_TIMEOUT_SECONDS = 30.0


@asynccontextmanager
async def realtime_lifespan(state: AppState) -> AsyncIterator[None]:
    """Start the hub and the outbox flusher for this process; stop them at shutdown."""
    settings = state.settings
    state.extras[LIMITER] = ConnectionLimiter(settings.sse_max_connections_per_tenant)
    redis_url = settings.effective_redis_url()
    if redis_url is None:
        log.warning("no Redis configured: the realtime stream is unavailable")
        yield
        return
    hub = EventHub(redis_url)
    publisher = EventPublisher(
        state.sessions,
        connect_sync(redis_url),
        retention_seconds=settings.event_retention_seconds,
    )
    await hub.start()
    flusher = asyncio.create_task(run_outbox_flusher(publisher), name="outbox-flusher")
    # When the server starts shutting down (before it waits for open connections),
    # stopping the hub ends every stream cleanly.
    exiting = asyncio.Event()
    closer = asyncio.create_task(_stop_on_exit(hub, exiting), name="sse-shutdown")
    heartbeats = Heartbeats(settings.sse_heartbeat_seconds)
    state.extras[HUB] = hub
    state.extras[HEARTBEATS] = heartbeats
    # For the few events the API itself publishes (a zero-touch order waiting).
    state.extras[PUBLISHER] = publisher
    # Long-lived start-up objects out of the GC's way: full collections otherwise
    # walk them again and again while thousands of streams are open.
    gc.freeze()
    try:
        with on_exit_signal(exiting.set):
            yield
    finally:
        flusher.cancel()
        closer.cancel()
        await asyncio.gather(flusher, closer, return_exceptions=True)
        await hub.stop()
        await heartbeats.stop()
        publisher.close()
        state.extras.pop(HUB, None)
        state.extras.pop(PUBLISHER, None)


async def _stop_on_exit(hub: EventHub, exiting: asyncio.Event) -> None:
    await exiting.wait()
    log.info("server shutting down: closing event streams", extra={"streams": hub.subscriber_count})
    await hub.stop()


def require_hub(state: AppState) -> EventHub:
    """The process's hub, or 503 when no Redis is configured."""
    hub = state.extras.get(HUB)
    if not isinstance(hub, EventHub):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the realtime stream needs Redis, not configured"
        )
    return hub


def parse_last_event_id(raw: str | None) -> int | None:
    """The ``Last-Event-ID`` header as an id (None: absent or empty), or 422."""
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Last-Event-ID: must be the id of an event received before (a number)",
        )
    return value


def _check_visible(state: AppState, principal: Principal, service_id: str) -> str:
    with state.sessions() as session:
        return get_visible_service(session, principal, service_id).id


@router.get(
    "/service-lifecycle/{service_id}",
    summary="Live lifecycle events of one service (Server-Sent Events)",
    response_class=StreamResponse,
    # FastAPI reads a response class's default status from its __init__, which
    # StreamResponse's does not take: say it here.
    status_code=status.HTTP_200_OK,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the event stream"},
        **{code: {"model": ErrorBody} for code in (401, 404, 422, 429, 503)},
    },
)
async def service_lifecycle(
    service_id: str,
    principal: PrincipalDep,
    state: StateDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this event id (sent by browsers)"),
    ] = None,
) -> StreamResponse:
    after = parse_last_event_id(last_event_id)
    hub = require_hub(state)
    # Not a SessionDep: a yield dependency would hold a pooled connection for the
    # whole life of the stream.
    service_id = await run_in_threadpool(_check_visible, state, principal, service_id)
    return open_stream(state, hub, principal, service_id, after)


def open_stream(
    state: AppState, hub: EventHub, principal: Principal, key: str, after: int | None
) -> StreamResponse:
    """The SSE response of the events keyed by ``key`` (a service id, or a bulk run's id)
    after ``after``, within the tenant's connection cap (429 beyond it)."""
    limiter: ConnectionLimiter = state.extras[LIMITER]
    if not limiter.acquire(principal.tenant_id):
        log.info(
            "SSE connection refused: tenant at its cap",
            extra={"tenant_id": principal.tenant_id, "cap": limiter.cap},
        )
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many open event streams for this tenant (limit {limiter.cap})",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return StreamResponse(
        hub,
        state.sessions,
        key,
        after,
        heartbeats=state.extras[HEARTBEATS],
        send_timeout=SEND_TIMEOUT_SECONDS,
        limiter=limiter,
        tenant_id=principal.tenant_id,
    )

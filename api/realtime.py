"""``GET /api/v1/realtime/service-lifecycle/{id}``: the SSE relay.

Each connection is served from the process's one ``EventHub`` (one Redis reader
for all connections) plus a database catch-up (events.relay): a new connection
gets its service's latest operation so far, a ``Last-Event-ID`` resumes exactly
after that id. Messages carry ``id:`` (the event log id), ``event:`` (the event
type) and ``data:`` (the JSON payload); heartbeat comments keep proxies open.

The stream ends when the client goes (disconnect, failed send or heartbeat), when
the client falls too far behind (the browser reconnects with ``Last-Event-ID``),
and on server shutdown (sse-starlette watches uvicorn's exit flag; the hub's
stop ends whatever is left).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from api.access import get_visible_service
from api.deps import PrincipalDep, StateDep
from api.schemas import ErrorBody
from api.state import AppState
from core.metrics import SSE_CONNECTIONS, SSE_EVENTS_SENT
from core.tokens import Principal
from events.hub import EventHub
from events.outbox import run_outbox_flusher
from events.publisher import EventPublisher, connect_sync
from events.relay import service_events

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/realtime", tags=["realtime"])

HUB = "event_hub"
LIMITER = "sse_limiter"
SHUTDOWN = "sse_shutdown"
# After sse-starlette sees the server shutting down, streams get this long to end
# on their own (they end at once: the hub closes every subscription).
SHUTDOWN_GRACE_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5
# A send that does not complete in this time means the client is gone (or stalled).
SEND_TIMEOUT_SECONDS = 30.0


class _GcFreezer:
    """Each open stream adds long-lived objects that every full collection walks again:
    at 5,000 connections full collections paused the relay for 1-5 s
    (docs/benchmarks.md). Freezing after every ``every`` new connections moves them out
    of the collector's way. The cost: cycles among frozen objects are never collected;
    a closed stream's objects are freed by reference counting as usual."""

    def __init__(self, every: int = 256) -> None:
        self.every = every
        self._opened = 0

    def connection_opened(self) -> None:
        self._opened += 1
        if self._opened % self.every == 0:
            gc.freeze()


_freezer = _GcFreezer()


class ConnectionLimiter:
    """Open SSE connections per tenant in this API process, capped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}

    def acquire(self, tenant_id: str) -> bool:
        n = self._open.get(tenant_id, 0)
        if n >= self.cap:
            return False
        self._open[tenant_id] = n + 1
        return True

    def release(self, tenant_id: str) -> None:
        n = self._open.get(tenant_id, 0) - 1
        if n > 0:
            self._open[tenant_id] = n
        else:
            self._open.pop(tenant_id, None)

    def open(self, tenant_id: str) -> int:
        return self._open.get(tenant_id, 0)


class _CountedResponse(EventSourceResponse):
    """Frees the tenant's connection slot however the response ends (even if the
    stream never started because the client left at once)."""

    def __init__(self, *args: Any, limiter: ConnectionLimiter, tenant_id: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._limiter = limiter
        self._tenant_id = tenant_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            SSE_CONNECTIONS.inc()
            await super().__call__(scope, receive, send)
        finally:
            SSE_CONNECTIONS.dec()
            self._limiter.release(self._tenant_id)


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
    # sse-starlette sets this when uvicorn starts shutting down (before it waits for
    # open connections): stopping the hub then ends every stream cleanly.
    shutdown = anyio.Event()
    closer = asyncio.create_task(_stop_on(shutdown, hub), name="sse-shutdown")
    state.extras[HUB] = hub
    state.extras[SHUTDOWN] = shutdown
    # Long-lived start-up objects out of the GC's way: full collections otherwise
    # walk them again and again while thousands of streams are open.
    gc.freeze()
    try:
        yield
    finally:
        flusher.cancel()
        closer.cancel()
        await asyncio.gather(flusher, closer, return_exceptions=True)
        await hub.stop()
        publisher.close()
        state.extras.pop(HUB, None)


async def _stop_on(shutdown: anyio.Event, hub: EventHub) -> None:
    await shutdown.wait()
    log.info("server shutting down: closing event streams", extra={"streams": hub.subscriber_count})
    await hub.stop()


def _hub(state: AppState) -> EventHub:
    hub = state.extras.get(HUB)
    if not isinstance(hub, EventHub):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the realtime stream needs Redis, not configured"
        )
    return hub


def _last_event_id(raw: str | None) -> int | None:
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


async def _messages(
    hub: EventHub, state: AppState, service_id: str, after: int | None
) -> AsyncIterator[ServerSentEvent]:
    async for record in service_events(hub, state.sessions, service_id, after):
        yield ServerSentEvent(
            data=json.dumps(record.data, separators=(",", ":")),
            event=record.event_type,
            id=str(record.id),
        )
        # Counted once the response has taken it (the generator resumes after the send).
        SSE_EVENTS_SENT.labels(event_type=record.event_type).inc()


@router.get(
    "/service-lifecycle/{service_id}",
    summary="Live lifecycle events of one service (Server-Sent Events)",
    response_class=EventSourceResponse,
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
) -> EventSourceResponse:
    after = _last_event_id(last_event_id)
    hub = _hub(state)
    # Not a SessionDep: a yield dependency would hold a pooled connection for the
    # whole life of the stream.
    service_id = await run_in_threadpool(_check_visible, state, principal, service_id)
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
    _freezer.connection_opened()
    return _CountedResponse(
        _messages(hub, state, service_id, after),
        ping=state.settings.sse_heartbeat_seconds,
        send_timeout=SEND_TIMEOUT_SECONDS,
        shutdown_event=state.extras[SHUTDOWN],
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        limiter=limiter,
        tenant_id=principal.tenant_id,
    )

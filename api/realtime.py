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

A bulk run's stream (api/realtime_bulk.py) is served by the same route body
(api/sse_route.py): its events are keyed by the bulk id where a service's are keyed
by the service id.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter
from sqlalchemy.orm import Session

from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import PrincipalDep
from fiberflow.api.exit_signal import on_exit_signal
from fiberflow.api.sse_route import (
    HEARTBEATS,
    HUB,
    LIMITER,
    LastEventIdHeader,
    StreamSpec,
    add_stream_route,
)
from fiberflow.api.sse_stream import ConnectionLimiter, Heartbeats
from fiberflow.api.state import AppState
from fiberflow.core.tokens import Principal
from fiberflow.events.hub import EventHub
from fiberflow.events.listener import listen_for_events
from fiberflow.events.outbox import run_outbox_flusher
from fiberflow.events.publisher import EventPublisher, connect_sync, sent_by_api

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/realtime", tags=["realtime"])

PUBLISHER = "event_publisher"


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
    # With FIBERFLOW_EVENT_SENDER=api on PostgreSQL, this process sends the events every
    # process stores (events/outbox.py); otherwise its flusher only sends what was missed.
    notify = sent_by_api(settings, state.engine)
    publisher = EventPublisher(
        state.sessions,
        connect_sync(redis_url),
        retention_seconds=settings.event_retention_seconds,
        notify=notify,
    )
    await hub.start()
    wake = asyncio.Event()
    background = [
        asyncio.create_task(run_outbox_flusher(publisher, wake=wake), name="outbox-flusher")
    ]
    if notify:
        url = state.engine.url.render_as_string(hide_password=False)
        background.append(asyncio.create_task(listen_for_events(url, wake), name="event-listener"))
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
        for task in (*background, closer):
            task.cancel()
        await asyncio.gather(*background, closer, return_exceptions=True)
        await hub.stop()
        await heartbeats.stop()
        publisher.close()
        state.extras.pop(HUB, None)
        state.extras.pop(PUBLISHER, None)


async def _stop_on_exit(hub: EventHub, exiting: asyncio.Event) -> None:
    await exiting.wait()
    log.info("server shutting down: closing event streams", extra={"streams": hub.subscriber_count})
    await hub.stop()


def _lookup_service(session: Session, principal: Principal, service_id: str) -> str:
    return get_visible_service(session, principal, service_id).id


async def service_lifecycle(
    service_id: str, principal: PrincipalDep, last_event_id: LastEventIdHeader = None
) -> None:
    # The declaration is the documentation (no docstring: it would be the OpenAPI
    # description); StreamRoute serves the requests (api/sse_route.py).
    raise NotImplementedError  # pragma: no cover


add_stream_route(
    router,
    "/service-lifecycle/{service_id}",
    service_lifecycle,
    StreamSpec(param="service_id", operators_only=False, lookup=_lookup_service),
    summary="Live lifecycle events of one service (Server-Sent Events)",
    errors=(401, 404, 422, 429, 503),
)

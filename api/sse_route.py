"""The SSE endpoints' one route body, served as plain ASGI.

``GET /api/v1/realtime/service-lifecycle/{id}`` and ``GET /api/v1/realtime/bulk/{id}``
differ only in who may open them and how their key is looked up (``StreamSpec``).
Each is declared as a FastAPI route, so it is in ``/openapi.json`` with its parameters,
security and responses and in ``app.routes`` like every route, but a ``StreamRoute``
never runs FastAPI's request handling: an idle stream would otherwise keep FastAPI's
request, its dependency-resolution frames, solved-dependency dicts and exit stacks,
Starlette's ``Request`` and the middleware frames and closures alive for its whole life
(docs/benchmarks.md, KB per idle connection). ``StreamRoutes``, an ASGI middleware,
serves these routes before the rest of the middleware stack and the router.

``_open`` does the checks in a short async function that returns (dropping its
``Request``) before streaming starts, in the order the FastAPI route answered them:
401 (no or bad token), 403 (operator-only streams), 422 (``Last-Event-ID``), 503 (no
Redis), 404 (not visible), 429 (the tenant's streams at the cap, with Retry-After).
Errors go through the app's own HTTPException handler: the same JSON bodies and headers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from fiberflow.api.deps import app_state, authenticate, check_operator
from fiberflow.api.schemas import ErrorBody
from fiberflow.api.sse_stream import ConnectionLimiter, EventStream
from fiberflow.api.state import AppState
from fiberflow.core.tokens import Principal
from fiberflow.events.hub import EventHub

log = logging.getLogger(__name__)

# state.extras keys, filled by api/realtime.py's lifespan
HUB = "event_hub"
HEARTBEATS = "sse_heartbeats"
LIMITER = "sse_limiter"
RETRY_AFTER_SECONDS = 5
# A send that does not complete in this time means the client is gone (or stalled).
SEND_TIMEOUT_SECONDS = 30.0

# The Last-Event-ID header, as the documented routes declare it.
LastEventIdHeader = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="Resume after this event id (sent by browsers)"),
]


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What sets one stream endpoint apart: its path parameter, whether customers are
    refused (403) before any lookup, and the lookup, which returns the key its events
    are stored under (the canonical id) or raises the 404."""

    param: str
    operators_only: bool
    lookup: Callable[[Session, Principal, str], str]


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


def open_stream(
    state: AppState, hub: EventHub, principal: Principal, key: str, after: int | None
) -> EventStream:
    """The stream of the events keyed by ``key`` after ``after``, within the tenant's
    connection cap (429 beyond it). It holds a slot of the cap, freed when it ends:
    call it at once."""
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
    return EventStream(
        hub,
        state.sessions,
        key,
        after,
        heartbeats=state.extras[HEARTBEATS],
        send_timeout=SEND_TIMEOUT_SECONDS,
        limiter=limiter,
        tenant_id=principal.tenant_id,
    )


def _lookup(state: AppState, spec: StreamSpec, principal: Principal, raw: str) -> str:
    # A short session of its own: nothing holds a pooled connection while streaming.
    with state.sessions() as session:
        return spec.lookup(session, principal, raw)


async def _open(spec: StreamSpec, scope: Scope, raw_key: str) -> EventStream | Response:
    """The stream, or the error answer: everything the checks need (the Request, the
    principal) is dropped when this returns."""
    request = Request(scope)
    try:
        state = app_state(request)
        principal = authenticate(request, state)
        if spec.operators_only:
            check_operator(principal)
        after = parse_last_event_id(request.headers.get("last-event-id"))
        hub = require_hub(state)
        # asyncio's default executor, where the stream's catch-up reads run too: one
        # small pool of threads (and their stacks and malloc arenas) for every stream's
        # short reads, not also anyio's pool of up to 40 (run_in_threadpool).
        key = await asyncio.to_thread(_lookup, state, spec, principal, raw_key)
        log.debug("event stream opened", extra={"key": key, "tenant_id": principal.tenant_id})
        return open_stream(state, hub, principal, key, after)
    except HTTPException as exc:
        handler: Any = request.app.exception_handlers.get(
            StarletteHTTPException, http_exception_handler
        )
        response: Response = await handler(request, exc)
        return response


class StreamRoute(APIRoute):
    """A documented FastAPI route whose requests are served by ``serve``, without
    FastAPI's request handling (dependencies, ``Request``, exit stacks). Another
    method than the route's answers 405 as on every route."""

    spec: StreamSpec

    async def serve(self, scope: Scope, receive: Receive, send: Send, raw_key: str) -> None:
        answer = await _open(self.spec, scope, raw_key)
        await answer(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            await super().handle(scope, receive, send)
            return
        await self.serve(scope, receive, send, scope["path_params"][self.spec.param])


def add_stream_route(
    router: APIRouter,
    path: str,
    endpoint: Callable[..., Any],
    spec: StreamSpec,
    *,
    summary: str,
    errors: Sequence[int],
) -> StreamRoute:
    """Declare ``endpoint`` (its signature is the documentation: path parameter,
    ``LastEventIdHeader``, the principal dependency; its body never runs) as the
    stream ``spec`` at ``path``."""
    router.add_api_route(
        path,
        endpoint,
        methods=["GET"],
        summary=summary,
        # No media type: FastAPI would take it for that of the JSON error responses.
        response_class=Response,
        status_code=status.HTTP_200_OK,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "the event stream"},
            **{code: {"model": ErrorBody} for code in errors},
        },
        route_class_override=StreamRoute,
    )
    route = router.routes[-1]
    assert isinstance(route, StreamRoute)
    route.spec = spec
    return route


class StreamRoutes:
    """ASGI middleware: a request that ``routes`` match fully is served here, ahead of
    the exception middleware, exit stacks and router, whose frames would otherwise stay
    alive as long as the stream; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, routes: Sequence[StreamRoute], prefix: str) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    await route.serve(scope, receive, send, child["path_params"][route.spec.param])
                    return
        await self.app(scope, receive, send)


def stream_routes(*routers: APIRouter) -> list[StreamRoute]:
    """The ``StreamRoute``s declared in ``routers``."""
    return [
        route for router in routers for route in router.routes if isinstance(route, StreamRoute)
    ]

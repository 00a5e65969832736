"""Baseline: the relay design fiberflow replaced — one Redis pub/sub subscription per SSE
connection, every connection receiving every event and filtering by service in Python.

Deliberately minimal (JWT check at connect, no database catch-up, no resume, no cap) so
it shows the cost of the design, not of features. The redis-py async pool's cap (100
connections by default in redis-py 8: client 101 gets a 200 and then a dead stream) is
raised for the benchmark, as the issue's measurement did.

Run: ``uvicorn bench.baselines.pubsub_relay:create_app --factory`` with
BENCH_REDIS_URL, BENCH_CHANNEL and BENCH_JWT_KEY set.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fiberflow.core.tokens import TokenError, verify

PATH = "/api/v1/realtime/service-lifecycle/{service_id}"


def create_app() -> Starlette:
    redis_url = os.environ["BENCH_REDIS_URL"]
    channel = os.environ.get("BENCH_CHANNEL", "fiberflow:events")
    key = os.environ["BENCH_JWT_KEY"]
    client = aioredis.Redis.from_url(redis_url, max_connections=100_000)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def stream(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        try:
            verify(key, auth.removeprefix("Bearer ").strip())
        except TokenError:
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        service_id = request.path_params["service_id"]

        async def events() -> AsyncIterator[ServerSentEvent]:
            pubsub = client.pubsub()
            await pubsub.subscribe(channel)
            try:
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    record = json.loads(message["data"])
                    if record["service_id"] != service_id:
                        continue  # the filtering in Python every connection pays for
                    yield ServerSentEvent(
                        data=json.dumps(record["data"], separators=(",", ":")),
                        event=record["event_type"],
                        id=str(record["id"]),
                    )
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

        return EventSourceResponse(events(), ping=15)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    return Starlette(routes=[Route("/healthz", healthz), Route(PATH, stream)], lifespan=lifespan)

"""The ASGI app. ``create_app()`` builds it from the one Settings instance."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from api import errors, metrics, portal, realtime
from api.routes import events, health, inventory, services, statistics
from api.state import AppState
from core.db.engine import make_engine, session_factory
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def build_state(settings: Settings) -> AppState:
    engine = make_engine(settings.effective_database_url())
    redis_url = settings.effective_redis_url()
    # socket_timeout above any XREAD BLOCK we issue (redis-py's default 5 s breaks BLOCK 5000).
    redis = (
        Redis.from_url(
            redis_url, socket_timeout=10, socket_connect_timeout=3, decode_responses=True
        )
        if redis_url
        else None
    )
    return AppState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        redis=redis,
        jwt_key=settings.jwt_key(),
    )


@asynccontextmanager
async def _reconciler(state: AppState) -> AsyncIterator[None]:
    """The stuck-run check of core.reconciler, when a Prefect server is known."""
    import asyncio
    import contextlib

    from core.reconciler import run_reconciler

    api_url = state.settings.effective_prefect_api_url()
    interval = state.settings.reconcile_interval_seconds
    if not api_url or interval <= 0:
        yield
        return
    task = asyncio.create_task(run_reconciler(state.sessions, api_url, interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    state = build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("api starting", extra={"service": "api"})
        try:
            async with realtime.realtime_lifespan(state), _reconciler(state):
                yield
        finally:
            if state.redis is not None:
                await state.redis.aclose()
            state.engine.dispose()
            metrics.process_exit()

    app = FastAPI(
        title="fiberflow",
        version="0.1.0",
        summary="Fibre subscriber lifecycle with live progress",
        lifespan=lifespan,
    )
    app.state.fiberflow = state
    errors.install(app)
    app.include_router(health.router)
    app.include_router(statistics.router)
    app.include_router(services.router)
    app.include_router(inventory.router)
    app.include_router(events.router)
    app.include_router(realtime.router)
    app.include_router(portal.router)
    app.include_router(metrics.router)
    return app

"""The ASGI app. ``create_app()`` builds it from the one Settings instance."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from fiberflow import __version__
from fiberflow.api import errors, metrics, operations, portal, realtime, realtime_bulk, sse_route
from fiberflow.api.dry_run import PLANNER, Planner
from fiberflow.api.routes import (
    bulk,
    bulk_decisions,
    discovery,
    drift_checks,
    events,
    health,
    inventory,
    ont_replacement,
    plan_change,
    reprovision,
    services,
    statistics,
)
from fiberflow.api.state import AppState
from fiberflow.core.db.engine import make_engine, session_factory
from fiberflow.core.launch import Launcher
from fiberflow.core.settings import Settings, get_settings

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


# A background job that lives as long as the app (e.g. the shell's crash reconciler):
# given the app's state, an async context that runs it and stops it on exit.
BackgroundJob = Callable[[AppState], AbstractAsyncContextManager[None]]


def create_app(
    settings: Settings | None = None,
    *,
    background: Sequence[BackgroundJob] = (),
    planner: Planner | None = None,
) -> FastAPI:
    """The app. ``background`` jobs run for the app's life; the shell (``fiberflow api``)
    passes its crash reconciler here, so the API never imports the shell. ``planner``
    answers ``?dry_run=true`` (the shell passes tasks/dry_run.plan; without one a dry
    run is 503), so the API never imports tasks."""
    settings = settings or get_settings()
    state = build_state(settings)
    if planner is not None:
        state.extras[PLANNER] = planner

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("api starting", extra={"service": "api"})
        try:
            async with (
                realtime.realtime_lifespan(state),
                Launcher() as launcher,
                AsyncExitStack() as jobs,
            ):
                state.extras[operations.LAUNCHER] = launcher
                for job in background:
                    await jobs.enter_async_context(job(state))
                yield
        finally:
            if state.redis is not None:
                await state.redis.aclose()
            state.engine.dispose()
            metrics.process_exit()

    app = FastAPI(
        title="fiberflow",
        version=__version__,
        summary="Fibre subscriber lifecycle with live progress",
        lifespan=lifespan,
    )
    app.state.fiberflow = state
    errors.install(app)
    app.include_router(health.router)
    app.include_router(statistics.router)
    app.include_router(services.router)
    app.include_router(ont_replacement.router)
    app.include_router(plan_change.router)
    app.include_router(discovery.router)
    app.include_router(reprovision.router)
    app.include_router(drift_checks.router)
    app.include_router(bulk.router)
    app.include_router(bulk_decisions.router)
    app.include_router(inventory.router)
    app.include_router(events.router)
    app.include_router(realtime.router)
    app.include_router(realtime_bulk.router)
    app.include_router(portal.router)
    app.include_router(metrics.router)
    # The event streams, served ahead of the rest of the stack (api/sse_route.py).
    app.add_middleware(
        sse_route.StreamRoutes,
        routes=sse_route.stream_routes(realtime.router, realtime_bulk.router),
        prefix=realtime.router.prefix + "/",
    )
    return app

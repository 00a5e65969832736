"""Readiness checks behind ``/healthz``: database, Redis, and what ``fiberflow up`` started.

``up`` lists in stack.json what it is starting (``expect``) and, as each part comes up,
where to find it; a part that is expected but not yet reachable makes /healthz 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from fiberflow.api.state import AppState

CHECK_TIMEOUT = 2.0
Check = Callable[[AppState, dict[str, Any]], Awaitable[str]]


def _db_ping(state: AppState) -> None:
    with state.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def check_db(state: AppState, _stack: dict[str, Any]) -> str:
    await run_in_threadpool(_db_ping, state)
    return "ok"


async def check_redis(state: AppState, _stack: dict[str, Any]) -> str:
    if state.redis is None:
        return "not configured"
    await state.redis.ping()
    return "ok"


async def check_prefect(_state: AppState, stack: dict[str, Any]) -> str:
    url = stack.get("prefect_api_url")
    if not url:
        return "starting"
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT) as client:
        resp = await client.get(f"{url}/health")
    return "ok" if resp.status_code == 200 else f"http {resp.status_code}"


async def _tcp(host: str, port: int) -> None:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()


async def check_lab(_state: AppState, stack: dict[str, Any]) -> str:
    ports = stack.get("lab_ports")
    if not ports:
        return "starting"
    await asyncio.gather(*(_tcp("127.0.0.1", int(p)) for p in ports))
    return "ok"


async def check_worker(_state: AppState, stack: dict[str, Any]) -> str:
    return "ok" if stack.get("worker_ready") else "starting"


async def check_deployments(_state: AppState, stack: dict[str, Any]) -> str:
    return "ok" if stack.get("deployments_ready") else "starting"


OPTIONAL_CHECKS: dict[str, Check] = {
    "prefect": check_prefect,
    "lab": check_lab,
    "worker": check_worker,
    "deployments": check_deployments,
}


async def _run(check: Check, state: AppState, stack: dict[str, Any]) -> str:
    try:
        return await asyncio.wait_for(check(state, stack), CHECK_TIMEOUT)
    except Exception as exc:  # a failed check is reported, never raised
        return f"error: {type(exc).__name__}"


async def readiness(state: AppState) -> tuple[bool, dict[str, str]]:
    stack = state.settings.stack
    checks: dict[str, Check] = {"db": check_db, "redis": check_redis}
    for name in stack.get("expect", []):
        if name in OPTIONAL_CHECKS:
            checks[name] = OPTIONAL_CHECKS[name]
    results = await asyncio.gather(*(_run(c, state, stack) for c in checks.values()))
    report = dict(zip(checks, results, strict=True))
    return all(v == "ok" for v in report.values()), report

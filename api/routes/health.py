from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fiberflow.api.deps import StateDep
from fiberflow.api.health import readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Readiness of the database, Redis and the local stack")
async def healthz(state: StateDep) -> JSONResponse:
    ready, report = await readiness(state)
    return JSONResponse(report, status_code=200 if ready else 503)

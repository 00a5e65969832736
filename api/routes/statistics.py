from __future__ import annotations

from fastapi import APIRouter

from fiberflow.api.deps import OperatorDep, SessionDep
from fiberflow.api.schemas import ErrorBody, StatisticsOut
from fiberflow.api.statistics import tenant_statistics

# Declared before the services router so "lifecycle" is never taken for a service id.
router = APIRouter(prefix="/api/v1/services/lifecycle", tags=["statistics"])


@router.get("/statistics", response_model=StatisticsOut,
            responses={code: {"model": ErrorBody} for code in (401, 403)},
            summary="Counts per status, in-flight operations, success rate, "
            "p50/p95 duration per operation")  # fmt: skip
def statistics(principal: OperatorDep, session: SessionDep) -> StatisticsOut:
    return StatisticsOut.model_validate(tenant_statistics(session, principal.tenant_id))

"""``POST /api/v1/services/{id}/reprovision``: repair one service's drift now.

The role (403), the service (404, also another tenant's or customer's), then the status
(409 unless ``active``). The service becomes ``reprovisioning`` and the catalogue's
``reprovision`` deployment reads its OLT, BNG and RADIUS state and re-applies only what
drifted (``service.reprovisioning.*`` events as every run). A run that cannot be started
gives the service back ``active``: nothing was read or changed.
"""

from __future__ import annotations

import logging
from typing import Any

from anyio import from_thread
from fastapi import APIRouter, HTTPException, status

from fiberflow.api import operations
from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import OperatorDep, SessionDep
from fiberflow.api.schemas import Accepted, ErrorBody
from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceInstance

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/services", tags=["services"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 503)
}
OPERATION = Operation.REPROVISIONING
ENTRY = catalogue.REPROVISIONING


def _give_back(session: SessionDep, service_id: str, error: str) -> None:
    row = session.get(ServiceInstance, service_id, populate_existing=True)
    if row is not None and row.status == ENTRY.running.value:
        (before,) = ENTRY.starts_from
        row.status = before.value
        row.error = f"could not start the reprovisioning: {error}"
        session.commit()


@router.post("/{service_id}/reprovision", status_code=202, response_model=Accepted,
             responses=ERRORS,
             summary="Repair drift: read OLT, BNG and RADIUS, re-apply what differs")  # fmt: skip
def reprovision_service(service_id: str, principal: OperatorDep, session: SessionDep) -> Accepted:
    row = get_visible_service(session, principal, service_id)
    operations.begin(session, row, OPERATION)  # 409 unless active
    try:
        flow_run_id = from_thread.run(operations.launch, row.id, OPERATION, {})
    except Exception as exc:
        log.exception("could not start %s", OPERATION.value, extra={"service_id": row.id})
        _give_back(session, row.id, type(exc).__name__)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the orchestrator is not reachable; try again"
        ) from None
    operations.record_launch(session, row.id, flow_run_id)
    log.info("reprovisioning started", extra={"service_id": row.id, "flow_run_id": flow_run_id})
    return Accepted(id=row.id, status=row.status, flow_run_id=flow_run_id)

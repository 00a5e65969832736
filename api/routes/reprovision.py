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

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from fiberflow.api import dry_run as dry
from fiberflow.api import operations
from fiberflow.api.access import get_visible_service
from fiberflow.api.deps import OperatorDep, SessionDep, StateDep
from fiberflow.api.schemas import Accepted, ErrorBody
from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/services", tags=["services"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 503)
}
OPERATION = Operation.REPROVISIONING
ENTRY = catalogue.REPROVISIONING
_give_back = operations.back_to_start(ENTRY, "the reprovisioning")


@router.post("/{service_id}/reprovision", status_code=202, response_model=Accepted,
             responses={**ERRORS, **dry.RESPONSES},
             summary="Repair drift: read OLT, BNG and RADIUS, re-apply what differs")  # fmt: skip
async def reprovision_service(
    service_id: str,
    principal: OperatorDep,
    session: SessionDep,
    state: StateDep,
    dry_run: dry.DryRun = False,
) -> Accepted | Response:
    def ready() -> Response | operations.Pending:  # in the thread pool: database work
        row = get_visible_service(session, principal, service_id)
        if dry_run:  # the drift check's reads, and what the repair would send
            dry.check_begin(session, row, OPERATION)
            return dry.respond(dry.answer(state, session, OPERATION, row.id, {}))
        # begin: 409 unless active
        return operations.prepare(session, row, OPERATION, {}, state=state, give_back=_give_back)

    pending = await run_in_threadpool(ready)
    if not isinstance(pending, operations.Pending):
        return pending
    accepted = await operations.finish(state, pending, session)  # the Prefect call: on the loop
    log.info("reprovisioning started",
             extra={"service_id": accepted.id, "flow_run_id": accepted.flow_run_id})  # fmt: skip
    return accepted

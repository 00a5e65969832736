"""Zero-touch orders in the API: created to wait for their ONT, and withdrawn while
waiting. No device is touched and no run is started here: the discovery pass
(``discover-onts``) starts provisioning once the ONT appears.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.orm import Session

from fiberflow.api import notices, operations
from fiberflow.api.schemas import Accepted
from fiberflow.api.state import AppState
from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation, ServiceInstance
from fiberflow.events.schema import completed, progress

log = logging.getLogger(__name__)


def accept_waiting(state: AppState, row: ServiceInstance) -> Accepted:
    """The answer to a create with ``activation: on_discovery`` (the row is committed in
    ``awaiting_ont``), after publishing the portal's "waiting" step."""
    step = catalogue.AWAITING_ONT_STEP
    event = progress(
        Operation.PROVISIONING,
        service_id=row.id,
        tenant_id=row.tenant_id,
        # Not a flow run: the wait is an operation of its own for catch-up ("the latest
        # operation's events"); the provisioning run that follows starts a new one.
        operation_id=str(uuid.uuid4()),
        step=step.number,
        total_steps=step.total,
        status=step.status,
        message=step.message,
        flow_run_id=None,
    )
    notices.publish(state, [event])
    log.info("order awaits its ONT", extra={"service_id": row.id, "olt": row.olt,
                                            "pon_port": row.pon_port})  # fmt: skip
    return Accepted(id=row.id, status=row.status, flow_run_id=None)


def withdraw(session: Session, state: AppState, row: ServiceInstance) -> Accepted:
    """Terminate an order that is still waiting for its ONT: nothing was allocated or
    configured, so no run starts and no device is asked. 409 if it stopped waiting."""
    # A StaleDataError (409) is the discovery pass that bound it meanwhile: terminate it
    # as any provisioned service.
    operations.transition(session, row.withdraw)
    last = list(catalogue.TERMINATION.steps.values())[-1]
    run = str(uuid.uuid4())
    notices.publish(
        state,
        [
            progress(Operation.TERMINATION, service_id=row.id, tenant_id=row.tenant_id,
                     operation_id=run, step=last.number, total_steps=last.total,
                     status=last.status, message=last.message, flow_run_id=None),
            completed(Operation.TERMINATION, service_id=row.id, tenant_id=row.tenant_id,
                      operation_id=run, flow_run_id=None),
        ],
    )  # fmt: skip
    log.info("waiting order terminated", extra={"service_id": row.id})
    return Accepted(id=row.id, status=row.status, flow_run_id=None)

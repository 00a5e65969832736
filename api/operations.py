"""Starting a lifecycle operation: status transition first, then a Prefect deployment run.

The API never runs a flow itself: ``run_deployment(..., timeout=0)`` asks the Prefect
server for a run of the operation's deployment (named by the catalogue) and returns at
once; a worker picks it up.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fiberflow.core.db.models import InvalidTransition, Operation, ServiceInstance
from fiberflow.core.launch import launch as core_launch

log = logging.getLogger(__name__)


def begin(session: Session, service: ServiceInstance, operation: Operation) -> None:
    """Move the service into the operation's running status, or 409."""
    try:
        service.begin(operation)
        session.commit()
    except InvalidTransition as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except StaleDataError:
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the service was changed by another request; retry"
        ) from None


async def launch(service_id: str, operation: Operation, parameters: dict[str, Any]) -> str:
    """Create the flow run; returns its id. Raises on an unreachable Prefect server."""
    return await core_launch(service_id, operation, parameters)


def record_launch(session: Session, service_id: str, flow_run_id: str) -> None:
    # A plain UPDATE, not the ORM's versioned one: the flow run may already be writing
    # the row (it records its own id too), and this column must not lose that race.
    session.execute(
        update(ServiceInstance)
        .where(ServiceInstance.id == service_id)
        .values(flow_run_id=flow_run_id)
    )
    session.commit()


def record_launch_failure(
    session: Session, service_id: str, error: str, *, release_idempotency_key: bool = False
) -> None:
    row = session.get(ServiceInstance, service_id, populate_existing=True)
    if row is not None:
        row.fail(f"could not start the operation: {error}")
        if release_idempotency_key:
            # The order never started: a retry with the same key places it anew.
            row.idempotency_key = None
        session.commit()

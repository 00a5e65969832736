"""Suspension: walled garden (RADIUS group ``suspended`` + BNG policy), CoA to the NAS;
the ONT stays up unless ``hard``."""

from __future__ import annotations

from prefect import flow

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.tasks.compensation import transaction
from fiberflow.tasks.hooks import flow_hooks
from fiberflow.tasks.run import abort_run, begin_run
from fiberflow.tasks.suspension import (
    complete_suspension,
    enter_walled_garden,
    notify_suspension,
    validate_suspension,
)


@flow(name=catalogue.SUSPENSION.deployment.flow, **flow_hooks())
def suspend(service_id: str, hard: bool = False) -> dict[str, object]:
    ctx = begin_run(service_id, Operation.SUSPENSION)
    try:
        with transaction():
            svc = validate_suspension(service_id)
            enter_walled_garden(svc)
            session = notify_suspension(svc, hard)
            complete_suspension(service_id)
    except BaseException as exc:
        abort_run(ctx, exc, clear_resources=False)
        raise
    return {"service_id": service_id, "session": session, "hard": hard}

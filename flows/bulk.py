"""A bulk run's parent: approval (four-eyes), then one child run per service, paced.

One parent run per batch (deployment ``bulk-run``, started by the API, or again by the
API's reconciler when a parent crashed). Each service's run is the operation's own
deployment run, started with ``as_subflow=True``: the same run, hooks and events as one
the API starts, shown as a child of this run in the Prefect UI.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from fiberflow.core import catalogue, logs
from fiberflow.core.db.models.bulk import BulkStatus
from fiberflow.core.settings import get_settings
from fiberflow.tasks.bulk import Reporter, attach, finish, load, skip_pending
from fiberflow.tasks.bulk_approval import Approval, wait_for_approval
from fiberflow.tasks.bulk_drive import drive

log = logging.getLogger(__name__)
__all__ = ["Approval", "bulk_run"]


def _failed(flow: Any, flow_run: Any, state: Any) -> None:  # noqa: ARG001 (Prefect's names)
    """The parent raised: services not started yet are skipped, the bulk ends failed.
    Services already running finish on their own; the reconciler settles their items."""
    run = flow_run
    bulk_id = (run.parameters or {}).get("bulk_id")
    if not bulk_id:
        return
    try:
        bulk = attach(str(bulk_id), str(run.id))
        if bulk is None:
            return
        reporter = Reporter(bulk, status=load(bulk.id).status)
        error = f"the bulk run failed: {state.message or state.name}"
        skip_pending(reporter, error[:500])
        finish(reporter, BulkStatus.FAILED, error)
    except Exception:  # a hook never raises
        log.exception("could not end a failed bulk run", extra={"bulk_id": bulk_id})


@flow(name=catalogue.BULK_RUN.flow, on_failure=[_failed])
def bulk_run(bulk_id: str) -> dict[str, Any]:
    settings = get_settings()
    logs.configure_flow_run_process(settings.log_level, settings.log_json)
    bulk = attach(bulk_id, str(flow_run.id))
    if bulk is None:  # ended already, or the request that made it rolled back
        return {"bulk_id": bulk_id, "status": "ended"}
    log.info("bulk run parent started", extra=bulk.log_extra(flow_run_id=str(flow_run.id)))
    reporter = Reporter(bulk, status=load(bulk.id).status)
    ended = wait_for_approval(reporter)
    if ended is None:
        ended = drive(reporter)
    finish(reporter, ended)
    return {"bulk_id": bulk_id, "status": ended.value}

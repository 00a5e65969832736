"""Reprovisioning: per service, read device + RADIUS state, diff against the database,
re-apply only what drifted. ``reprovision_all`` runs it over every active service (one
subflow each, devices read per service); the nightly deployment runs the fleet drift
check instead (flows/drift_check.py), which reads each device once and starts this flow
for the drifted services only."""

from __future__ import annotations

import logging

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.tasks import service_ops
from fiberflow.tasks.hooks import flow_hooks
from fiberflow.tasks.reprovisioning import (
    check_drift,
    claim_or_refuse,
    complete_reprovisioning,
    repair_drift,
)
from fiberflow.tasks.run import abort_run, begin_run

log = logging.getLogger(__name__)

# Services repaired at once by the nightly run; the per-device session limits still bind.
NIGHTLY_PARALLELISM = 8


@flow(name=catalogue.REPROVISIONING.deployment.flow, **flow_hooks())
def reprovision(service_id: str) -> dict[str, str]:
    """``in_sync`` / ``repaired`` with the diff; a failure leaves the service ``failed``.
    A service neither ``active`` nor already ``reprovisioning`` is refused (InvalidTransition)."""
    # The nightly run claims the service before calling us; a direct run claims it here.
    claim_or_refuse(service_id)
    ctx = begin_run(service_id, Operation.REPROVISIONING)
    try:
        report = check_drift(service_id)
        outcome = repair_drift(service_id, report)
        complete_reprovisioning(service_id)
    except BaseException as exc:
        abort_run(ctx, exc, clear_resources=False)
        raise
    return {"service_id": service_id, "result": outcome, "diff": report.diff()}


@task(name="reprovision-one", cache_policy=NO_CACHE)
def _reprovision_one(service_id: str) -> dict[str, str]:
    if not service_ops.claim(service_id, Operation.REPROVISIONING):
        return {"service_id": service_id, "result": "skipped", "diff": ""}
    try:
        result: dict[str, str] = reprovision(service_id)
        return result
    except Exception as exc:
        # A run that began and failed has failed the service (abort_run). One whose
        # subflow never began (the Prefect API gave up creating it: seen at 300 services
        # on the SQLite Prefect server) read and changed nothing: give the claim back,
        # else the service stays "reprovisioning" with no run to finish it.
        released = service_ops.release(service_id, Operation.REPROVISIONING)
        log.warning("reprovisioning of one service did not run: %s", exc,
                    extra={"service_id": service_id, "released": released})  # fmt: skip
        return {"service_id": service_id, "result": "failed", "diff": str(exc)}


# A sliding window, not batches: a batch of 8 waited for its slowest service, which kept
# ~3 in flight on average (bench/reprovision_bulk.py). The task runner's pool holds the
# window; a task run is created when its thread picks it up, not at submit.
@flow(
    name="reprovision-all",
    # Prefect types the runner generic over its futures; its own docs write it this way.
    task_runner=ThreadPoolTaskRunner(max_workers=NIGHTLY_PARALLELISM),  # type: ignore[arg-type]
)
def reprovision_all(limit: int | None = None) -> dict[str, int]:
    ids = service_ops.active_service_ids(limit)
    futures = [_reprovision_one.submit(sid) for sid in ids]
    wait(futures)
    counts: dict[str, int] = {}
    for fut in futures:
        result = fut.result()["result"]
        counts[result] = counts.get(result, 0) + 1
    return counts

"""Handing a dead run's service to the ``reconcile`` deployment (compensate, fail it,
publish the failed event), from the worker's crash hook or the API's reconciler.

Several callers may report the same dead run (the worker that saw its process exit,
the reconciler of every API replica): the idempotency key makes that one reconcile run.
A reconcile run that itself ended badly (a device still down after its retries) would
otherwise be returned for that key forever and the service would stay transitional,
so a new attempt, under the next key, follows it, up to ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fiberflow.core import catalogue

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger(__name__)

RECONCILE_DEPLOYMENT = catalogue.RECONCILE.full_name
MAX_ATTEMPTS = 5
ENDED_BADLY = frozenset({"FAILED", "CRASHED", "CANCELLED"})


def attempt_key(dead_run_id: str, attempt: int) -> str:
    return f"reconcile-{dead_run_id}" if attempt == 0 else f"reconcile-{dead_run_id}-{attempt}"


async def astart_reconcile(service_id: str, dead_run_id: str, reason: str) -> FlowRun | None:
    """The reconcile run for this dead run (started, or the one already there); None
    once ``MAX_ATTEMPTS`` runs have all ended badly (logged: an operator must look)."""
    from prefect.deployments.flow_runs import arun_deployment

    for attempt in range(MAX_ATTEMPTS):
        run = await arun_deployment(
            RECONCILE_DEPLOYMENT,
            parameters={"service_id": service_id, "reason": reason},
            timeout=0,
            idempotency_key=attempt_key(dead_run_id, attempt),
        )
        state = run.state.type.value if run.state is not None else None
        if state not in ENDED_BADLY:
            return run
    log.error(
        "reconcile gave up: every attempt ended badly",
        extra={"service_id": service_id, "flow_run_id": dead_run_id, "attempts": MAX_ATTEMPTS},
    )
    return None


def start_reconcile(service_id: str, dead_run_id: str, reason: str) -> FlowRun | None:
    """``astart_reconcile`` from synchronous code (a state hook's thread)."""
    from prefect.utilities.asyncutils import run_coro_as_sync

    return run_coro_as_sync(astart_reconcile(service_id, dead_run_id, reason))

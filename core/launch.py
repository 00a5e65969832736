"""Starting a run of an operation's deployment, by the catalogue's name.

The API (a request) and the discovery flow (a zero-touch order whose ONT appeared) both
start operations this way; neither imports the flow's code. ``timeout=0``: ask the
Prefect server for the run and return at once; a worker picks it up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fiberflow.core import catalogue
from fiberflow.core.catalogue import Operation


async def launch(
    service_id: str,
    operation: Operation,
    parameters: dict[str, Any],
    *,
    as_subflow: bool = False,
    tags: Sequence[str] = (),
    idempotency_key: str | None = None,
) -> str:
    """Create the flow run; returns its id. Raises on an unreachable Prefect server.

    ``as_subflow``: a bulk run's child, shown under its parent in the Prefect UI; the
    run itself is the same deployment run the API starts. ``idempotency_key``: a second
    launch with the same key returns the first run instead of a new one."""
    from prefect.deployments.flow_runs import arun_deployment

    run = await arun_deployment(
        catalogue.of(operation).deployment.full_name,
        parameters={"service_id": service_id, **parameters},
        timeout=0,
        tags=[f"service:{service_id}", f"operation:{operation.value}", *tags],
        # Started from inside a flow (discovery), the run stands alone like one the API
        # starts: the same hooks, the same reconciler, no parent to wait for it.
        as_subflow=as_subflow,
        idempotency_key=idempotency_key,
    )
    return str(run.id)


async def launch_bulk(bulk_id: str, idempotency_key: str | None = None) -> str:
    """Create a parent run of bulk run ``bulk_id`` (a new one after a crash: under an
    ``idempotency_key`` naming the dead run, so API replicas start one between them)."""
    from prefect.deployments.flow_runs import arun_deployment

    run = await arun_deployment(
        catalogue.BULK_RUN.full_name,
        parameters={"bulk_id": bulk_id},
        timeout=0,
        tags=[f"bulk:{bulk_id}"],
        as_subflow=False,
        idempotency_key=idempotency_key,
    )
    return str(run.id)


async def resume_paused(flow_run_id: str, run_input: dict[str, Any], wait: float = 30.0) -> bool:
    """Resume the paused run ``flow_run_id`` with ``run_input`` (a bulk run waiting for
    approval). A run not paused yet (it records ``awaiting_approval`` just before it
    pauses) is waited for up to ``wait`` seconds. False: it never paused in that time,
    or it has ended; a parent that starts again reads the decision from the database."""
    import asyncio
    import time
    from uuid import UUID

    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + wait
    async with get_client() as client:
        while True:
            run = await client.read_flow_run(UUID(flow_run_id))
            state = run.state
            if state is not None and state.is_paused():
                result = await client.resume_flow_run(UUID(flow_run_id), run_input=run_input)
                if result.status.value == "ACCEPT":
                    return True
                # Paused, but its input form not saved yet: try again in a moment.
            # Only a running parent is about to pause; one not started yet (or ended)
            # reads the decision from the database when it gets there.
            if state is None or not state.is_running() or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)

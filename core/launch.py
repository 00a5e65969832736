"""Starting a run of an operation's deployment, by the catalogue's name.

The API (a request) and the discovery flow (a zero-touch order whose ONT appeared) both
start operations this way; neither imports the flow's code. ``timeout=0``: ask the
Prefect server for the run and return at once; a worker picks it up.
"""

from __future__ import annotations

from typing import Any

from fiberflow.core import catalogue
from fiberflow.core.catalogue import Operation


async def launch(service_id: str, operation: Operation, parameters: dict[str, Any]) -> str:
    """Create the flow run; returns its id. Raises on an unreachable Prefect server."""
    from prefect.deployments.flow_runs import arun_deployment

    run = await arun_deployment(
        catalogue.of(operation).deployment.full_name,
        parameters={"service_id": service_id, **parameters},
        timeout=0,
        tags=[f"service:{service_id}", f"operation:{operation.value}"],
        # Started from inside a flow (discovery), the run stands alone like one the API
        # starts: the same hooks, the same reconciler, no parent to wait for it.
        as_subflow=False,
    )
    return str(run.id)

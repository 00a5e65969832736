"""Starting a run of an operation's deployment, by the catalogue's name.

The API (a request) and the discovery flow (a zero-touch order whose ONT appeared) both
start operations this way; neither imports the flow's code. ``timeout=0``: ask the
Prefect server for the run and return at once; a worker picks it up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx

from fiberflow.core import catalogue
from fiberflow.core.catalogue import Operation

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient


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
        tags=[*_tags(service_id, operation), *tags],
        # Started from inside a flow (discovery), the run stands alone like one the API
        # starts: the same hooks, the same reconciler, no parent to wait for it.
        as_subflow=as_subflow,
        idempotency_key=idempotency_key,
    )
    return str(run.id)


def _tags(service_id: str, operation: Operation) -> list[str]:
    return [f"service:{service_id}", f"operation:{operation.value}"]


class Launcher:
    """:func:`launch` for a long-lived process that starts many runs (the API): one
    Prefect client for the process's life, each deployment's id read once. A launch is
    then one request to the Prefect server, where ``arun_deployment`` makes a client,
    reads the deployment and creates the run: under a burst of a hundred orders that
    work is CPU the API's event loop spends before it answers the others.

    An async context manager: the client is made on the first launch (in the loop that
    serves the requests) and closed on exit. Top-level runs only (no subflows, no
    idempotency keys: the API's runs have neither)."""

    def __init__(self) -> None:
        self._client: PrefectClient | None = None
        self._ids: dict[str, UUID] = {}

    async def __aenter__(self) -> Launcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._drop_client()

    async def launch(
        self, service_id: str, operation: Operation, parameters: dict[str, Any]
    ) -> str:
        """Create the flow run; returns its id. Raises on an unreachable Prefect server."""
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        name = catalogue.of(operation).deployment.full_name
        arguments = {"service_id": service_id, **parameters}
        try:
            try:
                return await self._create(name, arguments, _tags(service_id, operation))
            except (ObjectNotFound, PrefectHTTPStatusError) as exc:
                # A 404: the deployment was deleted and registered again (a new id). The
                # create answers it as an HTTP error, not as ObjectNotFound.
                if isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code != 404:
                    raise
                self._ids.pop(name, None)
                return await self._create(name, arguments, _tags(service_id, operation))
        except httpx.ConnectError:
            # No server there (stopped, moved): the next launch starts from a new client,
            # with the Prefect settings of that moment. Other launches on this client
            # could not connect either; a slow or refusing server keeps its client.
            await self._drop_client()
            raise

    async def _create(self, name: str, parameters: dict[str, Any], tags: list[str]) -> str:
        from prefect.states import Scheduled

        client = await self._connected()
        deployment_id = self._ids.get(name)
        if deployment_id is None:
            deployment_id = self._ids[name] = (await client.read_deployment_by_name(name)).id
        run = await client.create_flow_run_from_deployment(
            deployment_id, parameters=parameters, state=Scheduled(), tags=tags
        )
        return str(run.id)

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def _connected(self) -> PrefectClient:
        if self._client is None:
            from prefect.client.orchestration import get_client

            client = get_client()
            await client.__aenter__()
            self._client = client
        return self._client


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

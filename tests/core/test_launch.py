"""core/launch.py's Launcher against the session's real Prefect server: one client, a
deployment's id read once, found again when the deployment is registered anew."""

from __future__ import annotations

import asyncio
import uuid
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.core.launch import Launcher
from fiberflow.flows.deployments import aapply_all

NAME = catalogue.of(Operation.SUSPENSION).deployment.full_name


def test_runs_of_the_deployment_and_a_deployment_registered_again(prefect_deployments: str) -> None:
    first_id, second_id = str(uuid.uuid4()), str(uuid.uuid4())

    async def main() -> None:
        async with Launcher() as launcher, get_client() as client:
            before = (await client.read_deployment_by_name(NAME)).id
            first = await launcher.launch(first_id, Operation.SUSPENSION, {"hard": True})
            first_run = await client.read_flow_run(UUID(first))
            # Deleted (its runs with it) and registered again: the same name, a new id.
            await client.delete_deployment(before)
            await aapply_all()
            after = (await client.read_deployment_by_name(NAME)).id
            assert after != before
            second = await launcher.launch(second_id, Operation.SUSPENSION, {"hard": False})
            runs = [first_run, await client.read_flow_run(UUID(second))]
            try:
                assert [r.deployment_id for r in runs] == [before, after]
                assert [r.parameters for r in runs] == [
                    {"service_id": first_id, "hard": True},
                    {"service_id": second_id, "hard": False},
                ]
                assert {f"service:{second_id}", "operation:suspension"} <= set(runs[1].tags)
                assert all(r.state is not None and r.state.type is StateType.SCHEDULED
                           for r in runs)  # fmt: skip
            finally:  # no worker here: nothing would ever take it
                await client.delete_flow_run(runs[1].id)

    asyncio.run(main())

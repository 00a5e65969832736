"""tasks/handoff.py against a real Prefect server: one reconcile run per dead run, however
many callers report it; a reconcile run that ended badly is followed by a new attempt,
a bounded number of times."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Failed

from fiberflow.core.catalogue import RECONCILE
from fiberflow.flows.deployments import apply_all, load
from fiberflow.stack.prefect_setup import ensure_work_pool
from fiberflow.tasks import handoff


@pytest.fixture(scope="module")
def deployed(prefect_api: str) -> str:
    asyncio.run(ensure_work_pool())
    apply_all()  # no worker: the runs stay scheduled, which is all this needs
    return prefect_api


def test_the_deployment_name_is_the_registered_one() -> None:
    assert f"{load(RECONCILE).name}/{RECONCILE.name}" == handoff.RECONCILE_DEPLOYMENT


def _fail(run_id: uuid.UUID) -> None:
    async def go() -> None:
        async with get_client() as client:
            await client.set_flow_run_state(run_id, Failed(message="device down"), force=True)

    asyncio.run(go())


def test_one_run_per_dead_run_then_a_new_attempt_after_a_bad_end(deployed: str) -> None:
    service_id, dead_run = str(uuid.uuid4()), str(uuid.uuid4())
    first = handoff.start_reconcile(service_id, dead_run, "flow run crashed")
    again = handoff.start_reconcile(service_id, dead_run, "flow run stopped reporting")
    assert first is not None and again is not None
    assert again.id == first.id  # the worker and every API replica: one run
    assert first.parameters == {"service_id": service_id, "reason": "flow run crashed"}

    _fail(first.id)
    second = handoff.start_reconcile(service_id, dead_run, "flow run crashed")
    assert second is not None and second.id != first.id
    assert second.idempotency_key == handoff.attempt_key(dead_run, 1)
    # A different dead run of the same service is its own hand-over.
    other = handoff.start_reconcile(service_id, str(uuid.uuid4()), "flow run crashed")
    assert other is not None and other.id not in (first.id, second.id)


def test_gives_up_after_max_attempts(deployed: str, caplog: pytest.LogCaptureFixture) -> None:
    service_id, dead_run = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(handoff.MAX_ATTEMPTS):
        run = handoff.start_reconcile(service_id, dead_run, "crashed")
        assert run is not None
        _fail(run.id)
    assert handoff.start_reconcile(service_id, dead_run, "crashed") is None
    assert "reconcile gave up" in caplog.text

"""The crash reconciler's verdict on one flow run, against a real Prefect server."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from fiberflow.stack.reconciler import diagnose


def _run_in_state(api: str, state: str) -> str:
    flow = httpx.post(f"{api}/flows/", json={"name": f"diagnose-{uuid.uuid4().hex[:8]}"})
    flow.raise_for_status()
    run = httpx.post(f"{api}/flow_runs/", json={"flow_id": flow.json()["id"]})
    run.raise_for_status()
    run_id = str(run.json()["id"])
    moved = httpx.post(f"{api}/flow_runs/{run_id}/set_state",
                       json={"state": {"type": state}, "force": True})  # fmt: skip
    moved.raise_for_status()
    return run_id


async def _diagnose(api: str, run_id: str, **kw: timedelta) -> str | None:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        return await diagnose(client, run_id, **kw)


async def test_a_run_left_pending_by_a_dead_worker_is_stuck(prefect_api: str) -> None:
    run_id = _run_in_state(prefect_api, "PENDING")
    # Moments after a worker took it: it may still start.
    assert await _diagnose(prefect_api, run_id) is None
    # Pending for longer than any start takes: its worker died starting it.
    verdict = await _diagnose(prefect_api, run_id, pending_stale=timedelta(0))
    assert verdict is not None and "never started" in verdict


async def test_scheduled_and_unknown_runs(prefect_api: str) -> None:
    scheduled = _run_in_state(prefect_api, "SCHEDULED")
    assert await _diagnose(prefect_api, scheduled, pending_stale=timedelta(0)) is None
    crashed = _run_in_state(prefect_api, "CRASHED")
    assert await _diagnose(prefect_api, crashed) == "its flow run ended crashed"
    assert await _diagnose(prefect_api, str(uuid.uuid4())) == "its flow run does not exist"

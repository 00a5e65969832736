"""The catalogue's deployments load and register: every entrypoint is a flow named as
the catalogue says (run_deployment() starts runs by that name), prefect.yaml uses the
same work pool, and the registered nightly deployment really carries its schedule and
collision strategy. tests/core/test_catalogue.py checks prefect.yaml against the catalogue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import yaml

from fiberflow.core.catalogue import DEPLOYMENTS
from fiberflow.flows.deployments import WORK_POOL, apply_all, load

ROOT = Path(__file__).resolve().parents[2]


def test_every_entrypoint_is_the_flow_the_catalogue_names() -> None:
    for spec in DEPLOYMENTS:
        assert load(spec).name == spec.flow, spec.entrypoint


def test_prefect_yaml_uses_the_work_pool() -> None:
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert {d["work_pool"]["name"] for d in doc["deployments"]} == {WORK_POOL}


def test_registered_deployments(prefect_api: str) -> None:
    from fiberflow.stack.prefect_setup import ensure_work_pool

    asyncio.run(ensure_work_pool())
    ids = apply_all()
    assert len(ids) == len(DEPLOYMENTS)
    found = httpx.post(f"{prefect_api}/deployments/filter", json={}).json()
    by_name = {d["name"]: d for d in found}
    nightly = by_name["reprovision-nightly"]
    assert nightly["work_pool_name"] == WORK_POOL
    assert nightly["entrypoint"] == "fiberflow.flows.drift_check.drift_check"
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["30 2 * * *"]
    # Prefect 3.9 stores a deployment's limit as a global concurrency limit.
    assert nightly["global_concurrency_limit"]["limit"] == 1
    assert nightly["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert by_name["provision"]["schedules"] == []

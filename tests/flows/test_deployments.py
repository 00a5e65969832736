"""prefect.yaml and flows/deployments.py declare the same deployments; the registered
nightly deployment really carries its schedule and collision strategy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import yaml

from fiberflow.flows.deployments import DEPLOYMENTS, WORK_POOL, apply_all

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_matches_the_code() -> None:
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    declared = {d["name"]: d for d in doc["deployments"]}
    assert set(declared) == {spec.name for spec in DEPLOYMENTS}
    for spec in DEPLOYMENTS:
        d = declared[spec.name]
        assert d["entrypoint"] == spec.entrypoint
        assert d["work_pool"]["name"] == WORK_POOL
        spec.load()  # the entrypoint imports
        if spec.cron:
            assert [s["cron"] for s in d["schedules"]] == [spec.cron]
            assert d["concurrency_limit"] == {
                "limit": spec.concurrency_limit,
                "collision_strategy": spec.collision_strategy,
            }
            assert "concurrency_options" not in d


def test_registered_deployments(prefect_api: str) -> None:
    from fiberflow.stack.prefect_setup import ensure_work_pool

    asyncio.run(ensure_work_pool())
    ids = apply_all()
    assert len(ids) == len(DEPLOYMENTS)
    found = httpx.post(f"{prefect_api}/deployments/filter", json={}).json()
    by_name = {d["name"]: d for d in found}
    nightly = by_name["reprovision-nightly"]
    assert nightly["work_pool_name"] == WORK_POOL
    assert nightly["entrypoint"].startswith("fiberflow.flows.reprovision")
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["30 2 * * *"]
    # Prefect 3.9 stores a deployment's limit as a global concurrency limit.
    assert nightly["global_concurrency_limit"]["limit"] == 1
    assert nightly["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert by_name["provision"]["schedules"] == []

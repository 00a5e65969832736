"""A first batch on the embedded defaults: ``fiberflow up`` with no configuration (its own
PostgreSQL for the project and Prefect, its own Redis, the lab) takes 30 orders POSTed at
once, answers every POST, and provisions all 30. On SQLite the same burst ended mostly
failed ("database is locked"); bench/burst.py runs the full 100."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from fiberflow.lab.harness import FIBERFLOW, running_stack, stack_env, wait_healthy

pytestmark = pytest.mark.slow

TENANT = "0b7d6c3e-2f1a-4e5d-9c8b-7a6f5e4d3c2b"
BURST = 30


def _order(n: int) -> dict[str, str]:
    return {
        "customer_ref": f"burst-{n}",
        "plan": "100M",
        "olt": "olt-1" if n % 2 else "olt-2",
        "pon_port": f"0/1/{n % 16}",
        "ont_serial": f"48575443{n:08X}",
    }


async def _post_all(api_url: str, auth: dict[str, str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=api_url, headers=auth, timeout=60) as client:
        return await asyncio.gather(
            *(client.post("/api/v1/services", json=_order(n)) for n in range(BURST))
        )


def test_a_burst_on_embedded_defaults_all_complete(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        wait_healthy(stack.api_url, stack.proc)
        token = subprocess.run(
            [*FIBERFLOW, "token", "--tenant", TENANT, "--role", "operator"],
            env=stack_env(stack.data_dir), capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        assert stack.info()["database_url"].startswith("postgresql://")

        answers = asyncio.run(_post_all(stack.api_url, auth))
        assert [r.status_code for r in answers] == [202] * BURST, [r.text for r in answers]
        ids = [r.json()["id"] for r in answers]

        deadline = time.monotonic() + 600
        statuses: dict[str, str] = {}
        with httpx.Client(base_url=stack.api_url, headers=auth, timeout=30) as client:
            while time.monotonic() < deadline:
                statuses = {i: client.get(f"/api/v1/services/{i}").json()["status"] for i in ids}
                if all(s in ("active", "failed") for s in statuses.values()):
                    break
                time.sleep(2)
            failed = {
                i: client.get(f"/api/v1/services/{i}").json().get("error")
                for i, s in statuses.items()
                if s != "active"
            }
        assert failed == {}, f"{len(failed)} of {BURST} not active: {failed}"

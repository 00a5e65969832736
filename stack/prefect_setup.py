"""Prefect set-up for a stack: the process work pool, one global concurrency limit per
device (its inventory ``max_sessions``), and the deployments. Idempotent; runs against
the server in PREFECT_API_URL (``fiberflow deploy``, called by ``fiberflow up``)."""

from __future__ import annotations

import asyncio
import logging

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    WorkPoolCreate,
)
from prefect.exceptions import ObjectNotFound

from fiberflow.devices.inventory import Inventory
from fiberflow.flows.deployments import WORK_POOL, aapply_all
from fiberflow.tasks.devices import limit_name

log = logging.getLogger(__name__)


async def ensure_work_pool(name: str = WORK_POOL) -> None:
    async with get_client() as client:
        try:
            await client.read_work_pool(name)
        except ObjectNotFound:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


async def ensure_device_limits(inventory: Inventory) -> dict[str, int]:
    wanted = {limit_name(d.name): d.max_sessions for d in [*inventory.olts, *inventory.bngs]}
    async with get_client() as client:
        for name, limit in wanted.items():
            try:
                current = await client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit, active=True)
                )
                continue
            if current.limit != limit or not current.active:
                await client.update_global_concurrency_limit(
                    name, GlobalConcurrencyLimitUpdate(limit=limit, active=True)
                )
    return wanted


async def asetup(inventory: Inventory | None) -> list[str]:
    """The work pool, the device limits and the deployments, sent together through one
    client. The pool is created first: deployments name it."""
    from prefect.context import AsyncClientContext

    async with AsyncClientContext.get_or_create():
        await ensure_work_pool()
        limits = ensure_device_limits(inventory) if inventory is not None else asyncio.sleep(0)
        _, ids = await asyncio.gather(limits, aapply_all())
    return ids


def setup(inventory: Inventory | None) -> list[str]:
    return asyncio.run(asetup(inventory))

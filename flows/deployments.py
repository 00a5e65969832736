"""Registering the catalogue's deployments (``fiberflow up`` / ``fiberflow deploy``) with
the Prefect server; prefect.yaml declares the same set for ``prefect deploy --all``.

Flow code is deployed by module path, so an installed fiberflow works from any directory.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from fiberflow.core.catalogue import DEPLOYMENTS, Deployment

WORK_POOL = "fiberflow"


def load(deployment: Deployment) -> Any:
    """The flow object behind ``deployment``'s entrypoint (imports its module)."""
    module, _, attr = deployment.entrypoint.partition(":")
    return getattr(importlib.import_module(module), attr)


def apply_all(work_pool: str = WORK_POOL) -> list[str]:
    """Register every deployment with the Prefect server in PREFECT_API_URL."""
    return asyncio.run(aapply_all(work_pool))


async def aapply_all(work_pool: str = WORK_POOL) -> list[str]:
    """``apply_all`` in a running loop: one client (one connection pool) for all, the
    registrations sent together (one after another they took ~0.5 s each)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.context import AsyncClientContext
    from prefect.types.entrypoint import EntrypointType

    deployments = []
    for spec in DEPLOYMENTS:
        limit: Any = spec.concurrency_limit
        if spec.collision_strategy and limit is not None:
            limit = ConcurrencyLimitConfig(limit=limit, collision_strategy=spec.collision_strategy)
        deployments.append(
            await load(spec).ato_deployment(
                name=spec.name,
                description=spec.description,
                cron=spec.cron,
                concurrency_limit=limit,
                work_pool_name=work_pool,
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    # Every get_client() inside the context returns its client: the applies share it.
    async with AsyncClientContext.get_or_create():
        ids = await asyncio.gather(*(d.aapply(work_pool_name=work_pool) for d in deployments))
    return [str(i) for i in ids]

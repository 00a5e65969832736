"""Registering the catalogue's deployments (``fiberflow up`` / ``fiberflow deploy``) with
the Prefect server; prefect.yaml declares the same set for ``prefect deploy --all``.

Flow code is deployed by module path, so an installed fiberflow works from any directory.
"""

from __future__ import annotations

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
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.types.entrypoint import EntrypointType

    ids = []
    for spec in DEPLOYMENTS:
        limit: Any = spec.concurrency_limit
        if spec.collision_strategy and limit is not None:
            limit = ConcurrencyLimitConfig(limit=limit, collision_strategy=spec.collision_strategy)
        deployment = load(spec).to_deployment(
            name=spec.name,
            description=spec.description,
            cron=spec.cron,
            concurrency_limit=limit,
            work_pool_name=work_pool,
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        ids.append(str(deployment.apply(work_pool_name=work_pool)))
    return ids

"""The deployments ``fiberflow up`` / ``fiberflow deploy`` register (prefect.yaml declares
the same set for ``prefect deploy --all``; a test keeps the two in step).

Flow code is deployed by module path, so an installed fiberflow works from any directory.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

WORK_POOL = "fiberflow"


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str  # module:function
    description: str
    cron: str | None = None
    concurrency_limit: int | None = None
    collision_strategy: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def flow_name(self) -> str:
        return str(self.load().name)

    def load(self) -> Any:
        module, _, attr = self.entrypoint.partition(":")
        return getattr(importlib.import_module(module), attr)


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec("provision", "fiberflow.flows.provision:provision", "Provision a fibre service"),
    DeploymentSpec(
        "suspend", "fiberflow.flows.suspend:suspend", "Suspend a service (walled garden)"
    ),
    DeploymentSpec("resume", "fiberflow.flows.resume:resume", "Resume a suspended service"),
    DeploymentSpec("terminate", "fiberflow.flows.terminate:terminate", "Terminate a service"),
    DeploymentSpec(
        "reprovision", "fiberflow.flows.reprovision:reprovision", "Repair drift of one service"
    ),  # fmt: skip
    DeploymentSpec(
        "reprovision-nightly",
        "fiberflow.flows.reprovision:reprovision_all",
        "Nightly drift repair of every active service",
        cron="30 2 * * *",
        concurrency_limit=1,
        collision_strategy="CANCEL_NEW",
    ),
    DeploymentSpec(
        "reconcile",
        "fiberflow.flows.reconcile:reconcile",
        "Fail and compensate a service whose run crashed",
    ),  # fmt: skip
)


def deployment_name(operation_deployment: str) -> str:
    """``flow-name/deployment-name`` as run_deployment() wants it."""
    spec = next(d for d in DEPLOYMENTS if d.name == operation_deployment)
    return f"{spec.flow_name}/{spec.name}"


def apply_all(work_pool: str = WORK_POOL) -> list[str]:
    """Register every deployment with the Prefect server in PREFECT_API_URL."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.types.entrypoint import EntrypointType

    ids = []
    for spec in DEPLOYMENTS:
        limit: Any = spec.concurrency_limit
        if spec.collision_strategy and limit is not None:
            limit = ConcurrencyLimitConfig(limit=limit, collision_strategy=spec.collision_strategy)
        deployment = spec.load().to_deployment(
            name=spec.name,
            description=spec.description,
            cron=spec.cron,
            concurrency_limit=limit,
            work_pool_name=work_pool,
            entrypoint_type=EntrypointType.MODULE_PATH,
            parameters=spec.parameters or None,
        )
        ids.append(str(deployment.apply(work_pool_name=work_pool)))
    return ids

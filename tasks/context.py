"""What a flow run is working on, shared with its tasks and their state hooks.

A hook only gets (task, task_run, state), so it cannot be handed the run's context; it
finds it with ``lookup(task_run.flow_run_id)``. The flow registers its RunContext when
it starts, in a context variable: Prefect runs the flow's body, its tasks (submitted
ones in a copy of the flow's context) and the hooks of both in that context, so they
all see it, and nothing outlives the run's context or is shared between runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fiberflow.core import catalogue
from fiberflow.core.catalogue import Step
from fiberflow.core.db.models import Operation
from fiberflow.events import schema
from fiberflow.tasks.runtime import runtime

log = logging.getLogger(__name__)
_CURRENT: ContextVar[RunContext | None] = ContextVar("fiberflow_run_context", default=None)


@dataclass
class RunContext:
    service_id: str
    tenant_id: str
    operation: Operation
    flow_run_id: str
    current: Step | None = None
    failed_step: Step | None = None
    error: str | None = None
    # False when this run found the service already failed (the reconcile flow got
    # there first): then its failed event is that flow's to publish, not this run's.
    failed_here: bool | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> Mapping[str, Step]:
        return catalogue.of(self.operation).steps

    @property
    def total(self) -> int:
        return len(self.steps)

    def log_extra(self, **more: Any) -> dict[str, Any]:
        extra = {
            "service_id": self.service_id,
            "tenant_id": self.tenant_id,
            "flow_run_id": self.flow_run_id,
            "operation": self.operation.value,
            "step": self.current.status if self.current else None,
        }
        extra.update(more)
        return extra

    # -- events -----------------------------------------------------------------------
    def progress(self, step: Step, status: str | None = None, message: str | None = None,
                 **extra: Any) -> None:  # fmt: skip
        runtime().publisher.publish(
            schema.progress(
                self.operation,
                service_id=self.service_id,
                tenant_id=self.tenant_id,
                operation_id=self.flow_run_id,
                step=step.number,
                total_steps=step.total,
                status=status or step.status,
                message=message if message is not None else step.message,
                **extra,
            )
        )

    def completed(self) -> None:
        runtime().publisher.publish(
            schema.completed(
                self.operation,
                service_id=self.service_id,
                tenant_id=self.tenant_id,
                operation_id=self.flow_run_id,
            )
        )

    def failed(self, error: str) -> None:
        step = self.failed_step or self.current
        runtime().publisher.publish(
            schema.failed(
                self.operation,
                service_id=self.service_id,
                tenant_id=self.tenant_id,
                operation_id=self.flow_run_id,
                step=step.number if step else 0,
                error=error[:500] or "failed",
            )
        )


def register(service_id: str, tenant_id: str, operation: Operation, flow_run_id: str) -> RunContext:
    """The run's context, made current for the flow body and what Prefect runs from it."""
    ctx = RunContext(
        service_id=service_id,
        tenant_id=tenant_id,
        operation=operation,
        flow_run_id=flow_run_id,
    )
    _CURRENT.set(ctx)
    return ctx


def lookup(flow_run_id: object) -> RunContext | None:
    """The current context if it is ``flow_run_id``'s; None where that run registered
    none (it failed before ``begin_run``, or this is another process)."""
    ctx = _CURRENT.get()
    return ctx if ctx is not None and ctx.flow_run_id == str(flow_run_id) else None

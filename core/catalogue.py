"""The catalogue: every lifecycle operation and every Prefect deployment, declared once.

An operation is its name (also the noun of its events, ``service.<noun>.<kind>``), the
statuses it may start from, the status it runs in and the one it ends in, its ordered
steps (what the portal and the progress events show), and the deployment that runs it.
Everything else reads this module: the service model's status checks, the API (which
deployment to start), the tasks' steps and hooks, the deployments registered with
Prefect (prefect.yaml declares the same set; tests/core/test_catalogue.py keeps them
equal), the worker's preloaded flow modules and the portal.

Flows are named by module path (``module:function``): the ground never imports them.
A new operation is a member of ``Operation`` (and of ``ServiceStatus`` for the status it
runs in), one ``LifecycleOperation`` in ``OPERATIONS`` and its flow module.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


class ServiceStatus(enum.StrEnum):
    PENDING = "pending"
    # Zero-touch activation: the order waits for its ONT to appear in autofind.
    AWAITING_ONT = "awaiting_ont"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"
    RESUMING = "resuming"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    REPROVISIONING = "reprovisioning"
    CHANGING_PLAN = "changing_plan"
    REPLACING_ONT = "replacing_ont"
    FAILED = "failed"


class Operation(enum.StrEnum):
    PROVISIONING = "provisioning"
    SUSPENSION = "suspension"
    RESUMPTION = "resumption"
    TERMINATION = "termination"
    REPROVISIONING = "reprovisioning"
    PLAN_CHANGE = "plan_change"
    ONT_REPLACEMENT = "ont_replacement"


@dataclass(frozen=True, slots=True)
class Step:
    """One step of an operation: ``number`` of ``total``, its progress status and message."""

    operation: Operation
    number: int
    total: int
    status: str
    message: str


@dataclass(frozen=True, slots=True)
class Deployment:
    """A Prefect deployment fiberflow registers."""

    name: str
    entrypoint: str  # "module:function"
    flow: str  # the flow's Prefect name: the flow module takes it from here
    description: str
    cron: str | None = None  # a UTC schedule
    concurrency_limit: int | None = None
    collision_strategy: str | None = None  # what Prefect does with a run over the limit

    @property
    def module(self) -> str:
        return self.entrypoint.partition(":")[0]

    @property
    def full_name(self) -> str:
        """``flow-name/deployment-name``, as ``run_deployment()`` wants it."""
        return f"{self.flow}/{self.name}"


@dataclass(frozen=True, slots=True)
class LifecycleOperation:
    operation: Operation
    title: str  # the portal's heading for a run of it
    deployment: Deployment
    starts_from: frozenset[ServiceStatus]
    running: ServiceStatus
    # None: the status it started from (an ONT replacement leaves a suspended service
    # suspended); ``end_status`` says which.
    ends_in: ServiceStatus | None
    steps: Mapping[str, Step]  # by progress status, in step order
    # A failed run compensates and puts the service back in the status it started from
    # (e.g. a plan change: still active, on the old plan) instead of ``failed``.
    restores_on_failure: bool = False

    def end_status(self, started_from: ServiceStatus | str) -> ServiceStatus:
        """The status a run that started from ``started_from`` completes in."""
        return self.ends_in if self.ends_in is not None else ServiceStatus(started_from)

    @property
    def noun(self) -> str:
        """What its events are named after: ``service.<noun>.<kind>``."""
        return self.operation.value


def _lifecycle(
    operation: Operation,
    *,
    title: str,
    deployment: Deployment,
    starts_from: Iterable[ServiceStatus],
    running: ServiceStatus,
    ends_in: ServiceStatus | None,
    steps: tuple[tuple[str, str], ...],
    restores_on_failure: bool = False,
) -> LifecycleOperation:
    """An entry; ``steps`` are (status, message) pairs, numbered from 1 in this order."""
    total = len(steps)
    numbered = {
        status: Step(operation, number, total, status, message)
        for number, (status, message) in enumerate(steps, start=1)
    }
    return LifecycleOperation(
        operation=operation,
        title=title,
        deployment=deployment,
        starts_from=frozenset(starts_from),
        running=running,
        ends_in=ends_in,
        steps=MappingProxyType(numbered),
        restores_on_failure=restores_on_failure,
    )


PROVISIONING = _lifecycle(
    Operation.PROVISIONING,
    title="Provisioning",
    deployment=Deployment(
        name="provision",
        entrypoint="fiberflow.flows.provision:provision",
        flow="provision",
        description="Provision a fibre service",
    ),
    # awaiting_ont: a zero-touch order whose ONT the discovery pass has just bound.
    starts_from={ServiceStatus.PENDING, ServiceStatus.AWAITING_ONT},
    running=ServiceStatus.PROVISIONING,
    ends_in=ServiceStatus.ACTIVE,
    steps=(
        ("validating", "Validating the order against the inventory"),
        ("allocating", "Allocating an IP address and a VLAN"),
        ("configuring", "Configuring the ONT on the OLT and the sub-interface on the BNG"),
        ("activating", "Activating the subscriber in RADIUS"),
        ("testing", "Testing RADIUS authentication and ONT status"),
        ("completed", "Service is active"),
    ),
)

SUSPENSION = _lifecycle(
    Operation.SUSPENSION,
    title="Suspension",
    deployment=Deployment(
        name="suspend",
        entrypoint="fiberflow.flows.suspend:suspend",
        flow="suspend",
        description="Suspend a service (walled garden)",
    ),
    starts_from={ServiceStatus.ACTIVE},
    running=ServiceStatus.SUSPENDING,
    ends_in=ServiceStatus.SUSPENDED,
    steps=(
        ("validating", "Checking the service can be suspended"),
        ("suspending", "Moving the subscriber to the walled garden"),
        ("notifying", "Sending the change to the BNG (RADIUS CoA)"),
        ("completed", "Service is suspended"),
    ),
)

RESUMPTION = _lifecycle(
    Operation.RESUMPTION,
    title="Resumption",
    deployment=Deployment(
        name="resume",
        entrypoint="fiberflow.flows.resume:resume",
        flow="resume",
        description="Resume a suspended service",
    ),
    starts_from={ServiceStatus.SUSPENDED},
    running=ServiceStatus.RESUMING,
    ends_in=ServiceStatus.ACTIVE,
    steps=(
        ("validating", "Checking the service can be resumed"),
        ("resuming", "Restoring the subscriber's plan"),
        ("notifying", "Sending the change to the BNG (RADIUS CoA)"),
        ("completed", "Service is active again"),
    ),
)

TERMINATION = _lifecycle(
    Operation.TERMINATION,
    title="Termination",
    deployment=Deployment(
        name="terminate",
        entrypoint="fiberflow.flows.terminate:terminate",
        flow="terminate",
        description="Terminate a service",
    ),
    # Also from failed: a service whose operation failed may still hold an ONT, BNG
    # config, RADIUS rows, an IP and a VLAN; terminating it (idempotent teardown)
    # releases them.
    starts_from={ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED, ServiceStatus.FAILED},
    running=ServiceStatus.TERMINATING,
    ends_in=ServiceStatus.TERMINATED,
    steps=(
        ("validating", "Checking the service can be terminated"),
        ("disconnecting", "Disconnecting the subscriber session"),
        ("deactivating", "Removing the subscriber from RADIUS"),
        ("unconfiguring", "Removing the BNG sub-interface and the ONT"),
        ("releasing", "Releasing the IP address and VLAN"),
        ("completed", "Service is terminated"),
    ),
)

REPROVISIONING = _lifecycle(
    Operation.REPROVISIONING,
    title="Reprovisioning",
    deployment=Deployment(
        name="reprovision",
        entrypoint="fiberflow.flows.reprovision:reprovision",
        flow="reprovision",
        description="Repair drift of one service",
    ),
    starts_from={ServiceStatus.ACTIVE},
    running=ServiceStatus.REPROVISIONING,
    ends_in=ServiceStatus.ACTIVE,
    steps=(
        ("checking", "Reading OLT, BNG and RADIUS state"),
        ("repairing", "Re-applying what drifted"),
        ("completed", "Service is in sync"),
    ),
)

PLAN_CHANGE = _lifecycle(
    Operation.PLAN_CHANGE,
    title="Plan change",
    deployment=Deployment(
        name="change-plan",
        entrypoint="fiberflow.flows.plan_change:change_plan",
        flow="change-plan",
        description="Move an active service to another plan",
    ),
    starts_from={ServiceStatus.ACTIVE},
    running=ServiceStatus.CHANGING_PLAN,
    ends_in=ServiceStatus.ACTIVE,
    steps=(
        ("validating", "Checking the new plan"),
        ("updating_radius", "Updating your plan in RADIUS"),
        ("updating_bng", "Updating your speed on the BNG"),
        ("applying", "Applying the new speed to your connection"),
        ("completed", "Your new plan is active"),
    ),
    # IP, VLAN and RADIUS username never change: a failure puts the old plan back.
    restores_on_failure=True,
)

ONT_REPLACEMENT = _lifecycle(
    Operation.ONT_REPLACEMENT,
    title="ONT replacement",
    deployment=Deployment(
        name="replace-ont",
        entrypoint="fiberflow.flows.ont_replacement:replace_ont",
        flow="replace-ont",
        description="Swap a service's ONT for a new one (same port, VLAN, IP)",
    ),
    starts_from={ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED},
    running=ServiceStatus.REPLACING_ONT,
    ends_in=None,  # active stays active, suspended stays suspended (and walled)
    steps=(
        ("validating", "Checking the new fibre box"),
        ("removing", "Removing the old fibre box from the network"),
        ("adding", "Adding the new fibre box on the same port and VLAN"),
        ("testing", "Testing the new fibre box (online, optical power)"),
        ("completed", "Your new fibre box is in service"),
    ),
    # A failure puts the old ONT and its service-ports back: same status, same ONT.
    restores_on_failure=True,
)

# In this order everywhere (the portal's step lists, the registered deployments).
OPERATIONS: Mapping[Operation, LifecycleOperation] = MappingProxyType(
    {
        e.operation: e
        for e in (
            PROVISIONING,
            SUSPENSION,
            RESUMPTION,
            TERMINATION,
            REPROVISIONING,
            PLAN_CHANGE,
            ONT_REPLACEMENT,
        )
    }
)

# Deployments that run no operation of their own.
# The nightly drift check: each device read once, only drifted services reprovisioned.
REPROVISION_NIGHTLY = Deployment(
    name="reprovision-nightly",
    entrypoint="fiberflow.flows.drift_check:drift_check",
    flow="drift-check",
    description="Nightly drift check of the whole fleet; repairs the services that drifted",
    cron="30 2 * * *",
    # One nightly run at a time: a run still going when the next is due keeps going alone.
    concurrency_limit=1,
    collision_strategy="CANCEL_NEW",
)
# The same flow on demand (POST /api/v1/drift-checks, GET /api/v1/services/{id}/drift).
DRIFT_CHECK = Deployment(
    name="drift-check",
    entrypoint="fiberflow.flows.drift_check:drift_check",
    flow="drift-check",
    description="Drift check on demand: the whole fleet, or one service's devices",
)
RECONCILE = Deployment(
    name="reconcile",
    entrypoint="fiberflow.flows.reconcile:reconcile",
    flow="reconcile",
    description="Fail and compensate a service whose run crashed",
)

DISCOVER_ONTS = Deployment(
    name="discover-onts",
    entrypoint="fiberflow.flows.discovery:discover_onts",
    flow="discover-onts",
    description="Bind ONTs found in OLT autofind to orders awaiting them",
    cron="* * * * *",
    # One pass at a time: a pass still reading a slow OLT when the next is due keeps going.
    concurrency_limit=1,
    collision_strategy="CANCEL_NEW",
)

# A bulk run: one parent run that starts one run of an operation's own deployment per
# service (POST /api/v1/bulk/{operation}).
BULK_RUN = Deployment(
    name="bulk-run",
    entrypoint="fiberflow.flows.bulk:bulk_run",
    flow="bulk-run",
    description="Run one operation over many services, paced, one child run per service",
)

DEPLOYMENTS: tuple[Deployment, ...] = (
    *(entry.deployment for entry in OPERATIONS.values()),
    REPROVISION_NIGHTLY,
    DRIFT_CHECK,
    RECONCILE,
    DISCOVER_ONTS,
    BULK_RUN,
)

# Zero-touch activation (pending -> awaiting_ont -> provisioning): while it waits, the
# portal shows this provisioning progress step, and nothing is allocated or configured
# anywhere, so terminating an order in one of these statuses touches no device.
AWAITING_ONT_STEP = Step(
    Operation.PROVISIONING,
    1,
    len(PROVISIONING.steps),
    "waiting",
    "Waiting for your fibre box to be connected",
)


#: Step 1's status while the API has accepted a request and its run is not yet running.
QUEUED_STATUS = "queued"


def queued_step(entry: LifecycleOperation) -> Step:
    """Step 1 of ``entry`` as the API announces it when it accepts the request, before
    the run exists: the customer sees their order taken at once, however many runs are
    ahead of it on the workers. The run's own step 1 follows as the next event."""
    return Step(
        entry.operation, 1, len(entry.steps), "queued", "Request received, starting shortly"
    )


TERMINATES_WITHOUT_DEVICES: frozenset[ServiceStatus] = frozenset({ServiceStatus.AWAITING_ONT})

# A service in one of these is mid-operation: it may only fail, and a run that dies
# leaves it to the reconciler. Pending waits for its provisioning run to start.
TRANSITIONAL: frozenset[ServiceStatus] = frozenset(
    {ServiceStatus.PENDING, *(entry.running for entry in OPERATIONS.values())}
)


def of(operation: Operation | str) -> LifecycleOperation:
    """The catalogue entry of ``operation``; ValueError for an unknown name."""
    return OPERATIONS[Operation(operation)]


def by_flow(flow_name: str) -> LifecycleOperation | None:
    """The operation whose flow is named ``flow_name`` (None: not an operation's flow)."""
    return next((e for e in OPERATIONS.values() if e.deployment.flow == flow_name), None)


def flow_modules() -> tuple[str, ...]:
    """Every module a deployment runs a flow from, once each, in catalogue order."""
    return tuple(dict.fromkeys(d.module for d in DEPLOYMENTS))

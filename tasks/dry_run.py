"""Dry runs: what an operation would change, and nothing changed.

``plan(operation, service_id, params)`` answers the changes a real run of the operation
would make now, in the order it would make them: per device the configuration lines
(from the drivers' own render step, ``dry_run=True``), the RADIUS rows, the IPAM
allocations. It uses the real run's rules (the same functions of tasks/) and only the
reads the real run's first steps make; it writes nothing, audits nothing, starts no
flow run. One planner per operation, in tasks/plans/. The shell hands ``plan`` to the
API (``create_app(planner=plan)``); a bulk dry run calls it once per service.

Refusals a real run would meet at its validating step (a wrong field, a serial the OLT
holds, an exhausted pool) raise ``Refused``; a device that cannot be read raises its
DeviceError, as the run would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fiberflow.core.catalogue import Operation
from fiberflow.core.ipam import PoolExhausted
from fiberflow.devices.base import InvalidInput
from fiberflow.devices.changes import Change, Refused, merged
from fiberflow.tasks.ont_replacement import SerialRefused
from fiberflow.tasks.plan_change import PlanRefused
from fiberflow.tasks.plans import lifecycle, provision, replacement, reprovision
from fiberflow.tasks.provisioning import OrderInvalid
from fiberflow.tasks.service import ServiceGone, ServiceStateError

Planner = Callable[[str | None, Mapping[str, Any]], list[Change]]
PLANNERS: dict[Operation, Planner] = {
    Operation.PROVISIONING: provision.plan,
    Operation.SUSPENSION: lifecycle.plan_suspension,
    Operation.RESUMPTION: lifecycle.plan_resumption,
    Operation.TERMINATION: lifecycle.plan_termination,
    Operation.PLAN_CHANGE: lifecycle.plan_plan_change,
    Operation.ONT_REPLACEMENT: replacement.plan,
    Operation.REPROVISIONING: reprovision.plan,
}
_REFUSALS = (
    ServiceStateError,
    ServiceGone,
    OrderInvalid,
    PlanRefused,
    SerialRefused,
    InvalidInput,
    PoolExhausted,
)


def plan(operation: Operation, service_id: str | None, params: Mapping[str, Any]) -> list[Change]:
    """The changes of ``operation`` on ``service_id`` (None: a new order in ``params``)."""
    try:
        return merged(PLANNERS[operation](service_id, params))
    except _REFUSALS as exc:
        raise Refused(str(exc)) from None

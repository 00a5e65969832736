"""The steps of each operation (DESIGN.md, Lifecycle operations): number, status, message."""

from __future__ import annotations

from dataclasses import dataclass

from fiberflow.core.db.models import Operation


@dataclass(frozen=True, slots=True)
class Step:
    operation: Operation
    number: int
    total: int
    status: str
    message: str


def _steps(op: Operation, *items: tuple[str, str]) -> dict[str, Step]:
    total = len(items)
    return {
        status: Step(op, n, total, status, message)
        for n, (status, message) in enumerate(items, start=1)
    }


PROVISIONING = _steps(
    Operation.PROVISIONING,
    ("validating", "Validating the order against the inventory"),
    ("allocating", "Allocating an IP address and a VLAN"),
    ("configuring", "Configuring the ONT on the OLT and the sub-interface on the BNG"),
    ("activating", "Activating the subscriber in RADIUS"),
    ("testing", "Testing RADIUS authentication and ONT status"),
    ("completed", "Service is active"),
)

SUSPENSION = _steps(
    Operation.SUSPENSION,
    ("validating", "Checking the service can be suspended"),
    ("suspending", "Moving the subscriber to the walled garden"),
    ("notifying", "Sending the change to the BNG (RADIUS CoA)"),
    ("completed", "Service is suspended"),
)

RESUMPTION = _steps(
    Operation.RESUMPTION,
    ("validating", "Checking the service can be resumed"),
    ("resuming", "Restoring the subscriber's plan"),
    ("notifying", "Sending the change to the BNG (RADIUS CoA)"),
    ("completed", "Service is active again"),
)

TERMINATION = _steps(
    Operation.TERMINATION,
    ("validating", "Checking the service can be terminated"),
    ("disconnecting", "Disconnecting the subscriber session"),
    ("deactivating", "Removing the subscriber from RADIUS"),
    ("unconfiguring", "Removing the BNG sub-interface and the ONT"),
    ("releasing", "Releasing the IP address and VLAN"),
    ("completed", "Service is terminated"),
)

REPROVISIONING = _steps(
    Operation.REPROVISIONING,
    ("checking", "Reading OLT, BNG and RADIUS state"),
    ("repairing", "Re-applying what drifted"),
    ("completed", "Service is in sync"),
)

BY_OPERATION: dict[Operation, dict[str, Step]] = {
    Operation.PROVISIONING: PROVISIONING,
    Operation.SUSPENSION: SUSPENSION,
    Operation.RESUMPTION: RESUMPTION,
    Operation.TERMINATION: TERMINATION,
    Operation.REPROVISIONING: REPROVISIONING,
}

"""ONT replacement: validate, remove the old ONT, add the new one on the same PON port
and VLAN, test it (online, optical power), complete.

The device steps run in one Prefect transaction: a failure deletes the new ONT and puts
the old one and its service-ports back, and the service returns to the status it
started from (active or suspended) with a ``service.ont_replacement.failed`` event
naming the cause. IP, VLAN, RADIUS and the BNG are never touched.
"""

from __future__ import annotations

from prefect import flow

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.tasks.compensation import transaction
from fiberflow.tasks.hooks import flow_hooks
from fiberflow.tasks.ont_replacement import (
    add_new_ont,
    complete_replacement,
    remove_old_ont,
    restore_service,
    test_new_ont,
    validate_replacement,
)
from fiberflow.tasks.run import begin_run


@flow(name=catalogue.ONT_REPLACEMENT.deployment.flow, **flow_hooks())
def replace_ont(service_id: str, ont_serial: str) -> dict[str, object]:
    ctx = begin_run(service_id, Operation.ONT_REPLACEMENT)
    try:
        with transaction():
            swap = validate_replacement(service_id, ont_serial)
            remove_old_ont(swap)
            ont_id = add_new_ont(swap)
            rx_power_dbm = test_new_ont(swap, ont_id)
            complete_replacement(swap, ont_id, rx_power_dbm)
    except BaseException as exc:
        restore_service(ctx, exc)
        raise
    return {
        "service_id": service_id,
        "old_serial": swap.old_serial,
        "ont_serial": swap.new_serial,
        "ont_id": ont_id,
        "rx_power_dbm": rx_power_dbm,
    }

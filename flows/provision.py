"""Provisioning: validate, allocate, configure (OLT + BNG), activate, test, complete.

Everything after validation runs in one Prefect transaction: if any step fails, the
rollback hooks of the completed steps undo them in reverse order, so a failed
provisioning leaves no IP, VLAN, ONT, BNG config or RADIUS rows behind.
"""

from __future__ import annotations

from prefect import flow
from prefect.futures import wait
from prefect.transactions import transaction

from core.db.models import Operation
from tasks.hooks import flow_hooks
from tasks.provisioning import (
    activate_radius,
    allocate,
    complete,
    configure_bng,
    configure_ont,
    test_service,
    validate,
)
from tasks.run import abort_run, begin_run


@flow(name="provision", **flow_hooks())
def provision(service_id: str) -> dict[str, object]:
    ctx = begin_run(service_id, Operation.PROVISIONING)
    try:
        with transaction():
            order = validate(service_id)
            alloc = allocate(order)
            # OLT and BNG are independent: configure both at once, and resolve both
            # futures inside the transaction so neither escapes the rollback.
            ont_future = configure_ont.submit(order, alloc)
            bng_future = configure_bng.submit(order, alloc)
            wait([ont_future, bng_future])  # type: ignore[arg-type]  # mixed result types
            ont_id = ont_future.result()
            bng_future.result()
            activate_radius(order, alloc)
            test_service(order, alloc, ont_id)
            complete(order)
    except BaseException as exc:
        abort_run(ctx, exc, clear_resources=True)
        raise
    return {"service_id": service_id, "ip": alloc.ip, "vlan": alloc.vlan, "ont_id": ont_id}

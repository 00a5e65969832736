"""Termination: Disconnect-Request, remove RADIUS rows, BNG config, service-port and
ONT, release IP/VLAN. Forward only (nothing to compensate): every step is idempotent
(absent = done), so running it again over the same row completes a termination that
failed half-way. A NAS that refuses or does not answer the Disconnect does not block it."""

from __future__ import annotations

from prefect import flow

from fiberflow.core import catalogue
from fiberflow.core.db.models import Operation
from fiberflow.tasks.hooks import flow_hooks
from fiberflow.tasks.run import abort_run, begin_run
from fiberflow.tasks.termination import (
    complete_termination,
    disconnect,
    release_resources,
    remove_network_config,
    remove_radius,
    validate_termination,
)


@flow(name=catalogue.TERMINATION.deployment.flow, **flow_hooks())
def terminate(service_id: str) -> dict[str, object]:
    ctx = begin_run(service_id, Operation.TERMINATION)
    try:
        svc = validate_termination(service_id)
        session = disconnect(svc)
        remove_radius(svc)
        remove_network_config(svc)
        release_resources(svc)
        complete_termination(service_id)
    except BaseException as exc:
        abort_run(ctx, exc, clear_resources=False)
        raise
    return {"service_id": service_id, "session": session}

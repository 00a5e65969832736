"""Status changes that start an operation (used by the API and the nightly run)."""

from __future__ import annotations

from sqlalchemy.orm.exc import StaleDataError

from fiberflow.core import catalogue
from fiberflow.core.db.models import InvalidTransition, Operation, ServiceInstance
from fiberflow.tasks.runtime import runtime


def claim(service_id: str, operation: Operation) -> bool:
    """Move the service into ``operation``'s running status; False if the state forbids
    it or another process changed the row first (optimistic lock)."""
    try:
        with runtime().sessions() as s, s.begin():
            row = s.get(ServiceInstance, service_id)
            if row is None:
                return False
            row.begin(operation)
        return True
    except (InvalidTransition, StaleDataError):
        return False


def release(service_id: str, operation: Operation) -> bool:
    """Give back a claim whose run never began (its subflow could not be created): the
    service returns to where ``claim`` found it. False if the row moved on (the run began,
    then finished or failed it)."""
    entry = catalogue.of(operation)
    if len(entry.starts_from) != 1:
        raise ValueError(f"{operation.value}: more than one status to give the claim back to")
    (before,) = entry.starts_from
    with runtime().sessions() as s, s.begin():
        row = s.get(ServiceInstance, service_id)
        if row is None or row.status != entry.running.value:
            return False
        row.status = before.value
        return True

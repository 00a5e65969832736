"""The service row as tasks see it: short transactions, never held across device I/O."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from fiberflow.core.db.models import TRANSITIONAL, Operation, ServiceInstance, ServiceStatus
from fiberflow.tasks.runtime import runtime


class ServiceGone(LookupError):
    pass


class ServiceStateError(ValueError):
    """The service row does not allow this step: another status, or a field the step
    needs is empty. No device was asked, and a retry would read the same row."""


@dataclass(frozen=True, slots=True)
class ServiceView:
    id: str
    tenant_id: str
    customer_ref: str
    status: str
    plan: str
    olt: str
    pon_port: str
    ont_serial: str
    ont_id: int | None
    vlan: int | None
    ip_address: str | None
    radius_username: str | None
    description: str | None
    flow_run_id: str | None
    current_operation: str | None

    @classmethod
    def of(cls, row: ServiceInstance) -> ServiceView:
        return cls(**{f: getattr(row, f) for f in cls.__dataclass_fields__})


def _get(session: Session, service_id: str) -> ServiceInstance:
    row = session.get(ServiceInstance, service_id)
    if row is None:
        raise ServiceGone(f"service {service_id} does not exist")
    return row


def load(service_id: str) -> ServiceView:
    with runtime().sessions() as s:
        return ServiceView.of(_get(s, service_id))


def update(service_id: str, **fields: Any) -> ServiceView:
    with runtime().sessions() as s, s.begin():
        row = _get(s, service_id)
        for key, value in fields.items():
            setattr(row, key, value)
        return ServiceView.of(row)


def record_flow_run(service_id: str, flow_run_id: str) -> None:
    """Unversioned on purpose: the API records the same id as it launches the run."""
    with runtime().sessions() as s, s.begin():
        s.execute(
            sa_update(ServiceInstance)
            .where(ServiceInstance.id == service_id)
            .values(flow_run_id=flow_run_id, run_process=f"{socket.gethostname()}:{os.getpid()}")
        )


def finish(service_id: str, operation: Operation, **fields: Any) -> ServiceView:
    with runtime().sessions() as s, s.begin():
        row = _get(s, service_id)
        for key, value in fields.items():
            setattr(row, key, value)
        row.finish(operation)
        return ServiceView.of(row)


def mark_failed(service_id: str, error: str, *, clear_resources: bool) -> bool:
    """Move a service in a transitional status to ``failed``. False if it was not."""
    with runtime().sessions() as s, s.begin():
        row = _get(s, service_id)
        if ServiceStatus(row.status) not in TRANSITIONAL:
            return False
        row.fail(error[:2000])
        if clear_resources:
            # DESIGN.md: a failed provisioning leaves no IP, VLAN or ONT behind.
            row.ip_address = None
            row.vlan = None
            row.ont_id = None
        return True

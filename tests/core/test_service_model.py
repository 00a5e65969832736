from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fiberflow.core.db.models import InvalidTransition, Operation, ServiceInstance, ServiceStatus

TENANT = "4f1c2a4e-8d7b-4c3a-9e2f-0a1b2c3d4e5f"


def _service(serial: str = "485754431A2B3C4D") -> ServiceInstance:
    return ServiceInstance(tenant_id=TENANT, customer_ref="c1", plan="100M", olt="olt-1",
                           pon_port="0/1/3", ont_serial=serial)  # fmt: skip


def test_status_machine() -> None:
    svc = _service()
    svc.status = ServiceStatus.PENDING.value
    with pytest.raises(InvalidTransition):
        svc.begin(Operation.SUSPENSION)
    svc.begin(Operation.PROVISIONING)
    assert svc.status == "provisioning"
    with pytest.raises(InvalidTransition):
        svc.begin(Operation.PROVISIONING)  # a second concurrent operation is refused
    svc.finish(Operation.PROVISIONING)
    assert svc.status == "active"
    svc.begin(Operation.SUSPENSION)
    svc.finish(Operation.SUSPENSION)
    svc.begin(Operation.RESUMPTION)
    svc.fail("NAS refused CoA")
    assert svc.status == "failed" and svc.error == "NAS refused CoA"
    with pytest.raises(InvalidTransition):
        svc.fail("again")


def test_optimistic_locking(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        svc = _service()
        s.add(svc)
    with Session(engine) as a, Session(engine, expire_on_commit=False) as b:
        theirs = b.get(ServiceInstance, svc.id)
        b.commit()  # end b's read (SQLite allows one writer at a time), keep the stale copy
        mine = a.get(ServiceInstance, svc.id)
        assert mine is not None and theirs is not None
        mine.begin(Operation.PROVISIONING)
        a.commit()
        theirs.begin(Operation.PROVISIONING)
        with pytest.raises(StaleDataError):
            b.commit()


def test_one_live_service_per_ont_serial(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(_service())
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.add(_service())
    with Session(engine) as s, s.begin():
        # A failed or terminated service releases the serial.
        old = s.query(ServiceInstance).one()
        old.status = ServiceStatus.FAILED.value
    with Session(engine) as s, s.begin():
        s.add(_service())

"""tasks/service_ops.py on SQLite and PostgreSQL: claims taken and given back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fiberflow.core.db.models import Operation, ServiceInstance
from fiberflow.core.settings import get_settings
from fiberflow.tasks import service_ops
from fiberflow.tasks.runtime import reset_runtime


@pytest.fixture
def rt(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FIBERFLOW_DATABASE_URL", database_url)
    get_settings.cache_clear()
    reset_runtime()
    yield
    reset_runtime()
    get_settings.cache_clear()


def _service(engine: Engine, status: str) -> str:
    with Session(engine) as s, s.begin():
        row = ServiceInstance(
            tenant_id=str(uuid.uuid4()), customer_ref="c", plan="100M", olt="olt-1",
            pon_port="0/1/1", ont_serial=uuid.uuid4().hex[:16].upper(), status=status,
        )  # fmt: skip
        s.add(row)
        s.flush()
        return row.id


def _status(engine: Engine, sid: str) -> str:
    with Session(engine) as s:
        row = s.get(ServiceInstance, sid)
        assert row is not None
        return row.status


def test_a_claim_whose_run_never_began_is_given_back(rt: None, engine: Engine) -> None:
    sid = _service(engine, "active")
    assert service_ops.claim(sid, Operation.REPROVISIONING)
    assert _status(engine, sid) == "reprovisioning"
    assert service_ops.release(sid, Operation.REPROVISIONING)
    assert _status(engine, sid) == "active"
    assert not service_ops.release(sid, Operation.REPROVISIONING)  # nothing to give back


def test_a_row_that_moved_on_is_left_alone(rt: None, engine: Engine) -> None:
    failed = _service(engine, "failed")
    assert not service_ops.release(failed, Operation.REPROVISIONING)
    assert _status(engine, failed) == "failed"
    assert not service_ops.release(str(uuid.uuid4()), Operation.REPROVISIONING)  # no such row


def test_operations_with_several_start_statuses_cannot_be_given_back(rt: None) -> None:
    with pytest.raises(ValueError, match="more than one status"):
        service_ops.release(str(uuid.uuid4()), Operation.TERMINATION)

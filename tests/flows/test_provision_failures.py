"""A provisioning that fails at any step leaves nothing behind (DESIGN.md): every
completed step is compensated, the service is ``failed`` with no IP, VLAN or ONT, and
the client sees rollback notices, then the failed event."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from fiberflow.core.db.models import VlanAllocation
from fiberflow.flows.provision import provision
from tests.fixtures.lifecycle import Lifecycle


def _assert_failed_cleanly(lc: Lifecycle, sid: str, step: int, needle: str) -> None:
    svc = lc.service(sid)
    assert svc.status == "failed"
    assert needle in (svc.error or ""), svc.error
    assert (svc.ip_address, svc.vlan, svc.ont_id) == (None, None, None)
    assert lc.leftovers(sid, svc.radius_username) == {}
    events = lc.events(sid)
    assert events[-1].event_type == "service.provisioning.failed"
    assert events[-1].data["step"] == step
    assert needle in events[-1].data["error"]
    failed_progress = [e for e in events if e.data.get("status") == "failed"]
    assert failed_progress and failed_progress[-1].data["step"] == step
    # No event after the terminal one, and the terminal one comes after compensation.
    assert sum(e.event_type.endswith(".failed") for e in events) == 1


def test_allocation_failure(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service()
    with Session(lifecycle.engine) as s, s.begin():  # every VLAN of bng-1 taken
        s.execute(insert(VlanAllocation), [
            {"scope": "bng-1", "vlan": v, "service_id": f"other-{v}"} for v in range(100, 4000)
        ])  # fmt: skip
    with pytest.raises(Exception, match="VLAN"):
        provision(sid)
    _assert_failed_cleanly(lifecycle, sid, 2, "no free VLAN")
    with Session(lifecycle.engine) as s, s.begin():
        s.execute(text("DELETE FROM vlan_allocations"))


def test_olt_failure_rolls_back_allocation_and_bng(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service()
    lifecycle.lab.device("olt-1").faults.update(
        error_replies={r"^ont add": "Failure: The port of the board is not ready"}
    )
    with pytest.raises(Exception, match="not ready"):
        provision(sid)
    _assert_failed_cleanly(lifecycle, sid, 3, "not ready")
    notices = [e.data["message"] for e in lifecycle.events(sid)
               if e.data.get("status") == "rolled_back"]  # fmt: skip
    assert any("IP address" in m for m in notices)


def test_service_port_failure_removes_the_ont_it_added(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service()
    lifecycle.lab.device("olt-1").faults.update(
        error_replies={r"^service-port": "Failure: Conflicted service virtual port index"}
    )
    with pytest.raises(Exception, match="Conflicted"):
        provision(sid)
    _assert_failed_cleanly(lifecycle, sid, 3, "Conflicted")


def test_bng_failure_rolls_back_the_ont(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service()
    lifecycle.lab.device("bng-1").faults.update(
        error_replies={r"^service-policy input": "% Invalid input detected at '^' marker."}
    )
    with pytest.raises(Exception, match="Invalid"):
        provision(sid)
    _assert_failed_cleanly(lifecycle, sid, 3, "Invalid")


def test_radius_failure_rolls_back_devices(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service(customer="blocked")
    # A real database fault: the RADIUS table refuses this subscriber's rows.
    dialect = lifecycle.engine.dialect.name
    with lifecycle.engine.begin() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON radcheck WHEN NEW.username LIKE "
                "'blocked.%' BEGIN SELECT RAISE(ABORT, 'radcheck refused the row'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                "IF NEW.username LIKE 'blocked.%%' THEN RAISE EXCEPTION 'radcheck refused the row';"
                " END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON radcheck FOR EACH ROW EXECUTE FUNCTION "
                "refuse()"
            )
    with pytest.raises(Exception, match="refused"):
        provision(sid)
    _assert_failed_cleanly(lifecycle, sid, 4, "refused")


def test_ont_never_online_fails_the_test_step_and_rolls_back_everything(
    lifecycle: Lifecycle,
) -> None:
    serial = "48575443DEADBEEF"
    sid = lifecycle.new_service(serial=serial)
    lifecycle.lab.device("olt-1").faults.update(never_online={serial})
    with pytest.raises(Exception, match="did not come online"):
        provision(sid)
    _assert_failed_cleanly(lifecycle, sid, 5, "did not come online")
    messages = [e.data["message"] for e in lifecycle.events(sid)
                if e.data.get("status") == "rolled_back"]  # fmt: skip
    assert len(messages) == 4  # RADIUS, BNG, ONT, IP/VLAN


def test_radius_reject_fails_the_test_step(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service(customer="rejected")
    lifecycle.lab.radius.reject_users.add(f"rejected.{sid[:8]}")
    with pytest.raises(Exception, match="reject"):
        provision(sid)
    _assert_failed_cleanly(lifecycle, sid, 5, "reject")


def test_transient_olt_latency_is_retried_to_success(lifecycle: Lifecycle) -> None:
    """A dropped session is transient: the task retries and the run completes."""
    sid = lifecycle.new_service()
    olt = lifecycle.lab.device("olt-1")
    olt.faults.update(drop_match=r"^service-port")
    import threading
    import time

    from sqlalchemy import select

    from fiberflow.core.db.models import DeviceCommandAudit

    def dropped() -> bool:
        with Session(lifecycle.engine) as s:
            q = select(DeviceCommandAudit.id).where(
                DeviceCommandAudit.service_id == sid,
                DeviceCommandAudit.command.like("service-port%"),
                DeviceCommandAudit.ok.is_(False),
            )
            return s.scalars(q).first() is not None

    def heal_after_first_drop() -> None:
        deadline = time.monotonic() + 60
        while not dropped() and time.monotonic() < deadline:
            time.sleep(0.05)
        olt.faults.update(drop_match=None)

    healer = threading.Thread(target=heal_after_first_drop, daemon=True)
    healer.start()
    provision(sid)
    healer.join(5)
    assert lifecycle.service(sid).status == "active"
    with Session(lifecycle.engine) as s:
        attempts = list(s.scalars(
            select(DeviceCommandAudit).where(DeviceCommandAudit.service_id == sid,
                                             DeviceCommandAudit.command.like("service-port%"))
            .order_by(DeviceCommandAudit.id)
        ))  # fmt: skip
    assert len(attempts) >= 2 and not attempts[0].ok and attempts[-1].ok
    assert {a.step for a in attempts} == {"configuring"}

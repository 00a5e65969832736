"""Provisioning against the lab over real SSH, real RADIUS rows, a real Prefect server."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiberflow.core.db.models import DeviceCommandAudit
from fiberflow.events.schema import validate_event
from fiberflow.flows.provision import provision
from tests.fixtures.lifecycle import Lifecycle


def test_provision_configures_every_system_and_streams_the_steps(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service(serial="485754431A2B3C4D")
    result = provision(sid)
    svc = lifecycle.service(sid)
    assert svc.status == "active", svc.error
    assert (svc.ip_address, svc.vlan, svc.ont_id) == (
        result["ip"],
        result["vlan"],
        result["ont_id"],
    )
    olt = lifecycle.lab.device("olt-1").state.dump()
    assert [o["serial"] for o in olt["onts"]] == ["485754431A2B3C4D"]
    assert [sp["vlan"] for sp in olt["service_ports"]] == [svc.vlan]
    subifs = lifecycle.lab.device("bng-1").state.dump()["subinterfaces"]
    assert len(subifs) == 1 and subifs[0]["ip_address"] == svc.ip_address

    events = lifecycle.events(sid)
    for e in events:
        validate_event(e.event_type, e.data)
    progress = [e for e in events if e.event_type == "service.provisioning.progress"]
    assert len(progress) >= 6
    assert progress[0].data["step"] == 1 and progress[0].data["status"] == "validating"
    assert progress[-1].data["status"] == "completed" and progress[-1].data["step"] == 6
    assert events[-1].event_type == "service.provisioning.completed"
    steps = [e.data["step"] for e in progress]
    assert steps == sorted(steps)


def test_provision_twice_is_idempotent(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service()
    provision(sid)
    first = lifecycle.service(sid)
    # Put it back in provisioning and run again: same end state, no duplicate config.
    from fiberflow.core.db.models import ServiceInstance

    with Session(lifecycle.engine) as s, s.begin():
        row = s.get(ServiceInstance, sid)
        assert row is not None
        row.status = "provisioning"
    provision(sid)
    again = lifecycle.service(sid)
    assert (again.ip_address, again.vlan, again.ont_id) == (first.ip_address, first.vlan,
                                                           first.ont_id)  # fmt: skip
    olt = lifecycle.lab.device("olt-1").state.dump()
    assert len(olt["onts"]) == 1 and len(olt["service_ports"]) == 1
    assert len(lifecycle.lab.device("bng-1").state.dump()["subinterfaces"]) == 1


def test_failure_at_validation_leaves_nothing(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service(pon_port="0/3/0")  # not a port of the lab OLT
    with pytest.raises(Exception, match="pon_port"):
        provision(sid)
    svc = lifecycle.service(sid)
    assert svc.status == "failed" and "pon_port" in (svc.error or "")
    assert lifecycle.leftovers(sid, svc.radius_username) == {}
    events = lifecycle.events(sid)
    assert events[-1].event_type == "service.provisioning.failed"
    assert events[-1].data["step"] == 1


def test_one_session_per_device_and_step(lifecycle: Lifecycle) -> None:
    """configuring: one OLT session (add_ont + add_service_port) and one BNG session;
    testing: one OLT session for the online polling and the optical read. Each session's
    set-up (``enable``) is audited once, and the lab counts the logins itself."""
    olt, bng = lifecycle.lab.device("olt-1"), lifecycle.lab.device("bng-1")
    olt.counters.reset()
    bng.counters.reset()
    sid = lifecycle.new_service(serial="485754431A2B3C4E")
    provision(sid)
    assert lifecycle.service(sid).status == "active"
    with Session(lifecycle.engine) as s:
        rows = s.execute(
            select(
                DeviceCommandAudit.device, DeviceCommandAudit.step, DeviceCommandAudit.command
            ).where(DeviceCommandAudit.service_id == sid)
        ).all()
    sessions = Counter((device, step) for device, step, command in rows if command == "enable")
    assert sessions == {("olt-1", "configuring"): 1, ("bng-1", "configuring"): 1,
                        ("olt-1", "testing"): 1}, sessions  # fmt: skip
    commands = {(d, st): [c for dd, stt, c in rows if (dd, stt) == (d, st)] for d, st in sessions}
    assert any(c.startswith("ont add") for c in commands["olt-1", "configuring"])
    assert any(c.startswith("service-port") for c in commands["olt-1", "configuring"])
    assert olt.counters.logins == 2 and bng.counters.logins == 1
    assert olt.counters.peak_open == 1 and bng.counters.peak_open == 1

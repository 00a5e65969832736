"""Plan change against the lab: RADIUS group and BNG policies move to the new plan and
the session is told (CoA ACK; NAK or timeout -> Disconnect-Request); a failure at the
BNG step puts the old plan back everywhere and the service stays active on it; every
CoA and Disconnect is in the audit log with its outcome."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from fiberflow.core.db.models import DeviceCommandAudit, Operation
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.events.schema import validate_event
from fiberflow.flows.plan_change import change_plan
from fiberflow.flows.provision import provision
from tests.fixtures.lifecycle import Lifecycle

OLD = ("PLAN-100M-IN", "PLAN-100M-OUT")
NEW = ("PLAN-500M-IN", "PLAN-500M-OUT")
NEW_AVPAIRS = ["ip:sub-qos-policy-in=PLAN-500M-IN", "ip:sub-qos-policy-out=PLAN-500M-OUT"]


def _provisioned(lc: Lifecycle) -> tuple[str, str]:
    sid = lc.new_service(plan="100M")
    provision(sid)
    svc = lc.service(sid)
    assert svc.status == "active", svc.error
    assert svc.radius_username is not None
    assert svc.radius_username in lc.lab.nas.sessions  # provisioning's test logged in
    return sid, svc.radius_username


def _policies(lc: Lifecycle) -> list[tuple[str | None, str | None]]:
    subifs = lc.lab.device("bng-1").state.dump()["subinterfaces"]
    return [(s["policy_in"], s["policy_out"]) for s in subifs]


def _group(lc: Lifecycle, user: str) -> tuple[str, ...]:
    sub = RadiusStore(lc.engine).get(user)
    assert sub is not None
    return sub.groups


def _events(lc: Lifecycle, sid: str, run_id: str | None) -> list[tuple[str, dict]]:
    events = [e for e in lc.events(sid) if e.data.get("flow_run_id") == run_id]
    for e in events:
        validate_event(e.event_type, e.data)
    return [(e.event_type, e.data) for e in events]


def _session_audit(lc: Lifecycle, run_id: str | None) -> list[tuple[str, str, str, bool]]:
    """(step, request kind, outcome, ok) of every CoA / Disconnect the run sent."""
    with lc.engine.connect() as conn:
        rows = conn.execute(
            select(DeviceCommandAudit)
            .where(DeviceCommandAudit.flow_run_id == run_id)
            .order_by(DeviceCommandAudit.id)
        ).all()
    return [
        (r.step, r.command.split(" ", 1)[0], r.output, r.ok)
        for r in rows
        if r.command.startswith(("CoA-Request", "Disconnect-Request"))
    ]


def _change(lc: Lifecycle, sid: str, plan: str) -> dict[str, object]:
    lc.begin(sid, Operation.PLAN_CHANGE)
    return change_plan(sid, plan)


def _completed(lc: Lifecycle, sid: str, plan: str) -> tuple[str | None, str]:
    """The run's id and the applying step's last progress message."""
    svc = lc.service(sid)
    assert (svc.status, svc.plan, svc.error) == ("active", plan, None)
    events = _events(lc, sid, svc.flow_run_id)
    progress = [d for t, d in events if t == "service.plan_change.progress"]
    assert [(d["step"], d["status"]) for d in progress] == [
        (1, "validating"),
        (2, "updating_radius"),
        (3, "updating_bng"),
        (4, "applying"),
        (4, "applied"),
        (5, "completed"),
    ]
    assert {d["total_steps"] for d in progress} == {5}
    assert events[-1][0] == "service.plan_change.completed"
    assert [t for t, _ in events].count("service.plan_change.completed") == 1
    assert progress[3]["message"] == "Applying the new speed to your connection"
    return svc.flow_run_id, progress[4]["message"]


def test_plan_change_with_coa_ack(lifecycle: Lifecycle) -> None:
    sid, user = _provisioned(lifecycle)
    before = lifecycle.service(sid)
    failed_before = REGISTRY.get_sample_value(
        "lifecycle_workflow_completed_total", {"operation": "plan_change", "plan": "100M"}
    )

    result = _change(lifecycle, sid, "500M")

    run_id, message = _completed(lifecycle, sid, "500M")
    assert message == "Speed changed on the live session (CoA acknowledged)"
    assert result["session"] == message
    assert _group(lifecycle, user) == ("500M",)
    assert _policies(lifecycle) == [NEW]
    nas = lifecycle.lab.nas
    assert nas.sessions[user].attributes["Cisco-AVPair"] == NEW_AVPAIRS
    assert _session_audit(lifecycle, run_id) == [("applying", "CoA-Request", "ack", True)]
    # IP, VLAN, RADIUS username and ONT never change.
    after = lifecycle.service(sid)
    for field in ("ip_address", "vlan", "radius_username", "ont_id", "ont_serial"):
        assert getattr(after, field) == getattr(before, field), field
    completed = REGISTRY.get_sample_value(
        "lifecycle_workflow_completed_total", {"operation": "plan_change", "plan": "100M"}
    )
    assert completed == (failed_before or 0) + 1


def test_coa_nak_falls_back_to_disconnect(lifecycle: Lifecycle) -> None:
    sid, user = _provisioned(lifecycle)
    nas = lifecycle.lab.nas
    nas.nak_coa_users[user] = 406  # Unsupported-Extension: this NAS cannot change QoS live

    _change(lifecycle, sid, "1G")

    run_id, message = _completed(lifecycle, sid, "1G")
    assert message == (
        "CoA-Request refused (Unsupported-Extension); "
        "session disconnected to re-authenticate on the new plan"
    )
    assert user not in nas.sessions  # ended: the CPE logs in again, on the new plan
    assert _group(lifecycle, user) == ("1G",)
    assert _policies(lifecycle) == [("PLAN-1G-IN", "PLAN-1G-OUT")]
    assert _session_audit(lifecycle, run_id) == [
        ("applying", "CoA-Request", "nak Error-Cause=Unsupported-Extension", False),
        ("applying", "Disconnect-Request", "ack", True),
    ]


def test_coa_timeout_falls_back_to_disconnect(lifecycle: Lifecycle) -> None:
    sid, user = _provisioned(lifecycle)
    nas = lifecycle.lab.nas
    nas.drop_coa_users.add(user)

    _change(lifecycle, sid, "500M")

    run_id, message = _completed(lifecycle, sid, "500M")
    assert message == (
        "CoA-Request unanswered; session disconnected to re-authenticate on the new plan"
    )
    assert user not in nas.sessions
    assert _session_audit(lifecycle, run_id) == [
        ("applying", "CoA-Request", "timeout", False),
        ("applying", "Disconnect-Request", "ack", True),
    ]


def test_offline_and_a_nas_that_refuses_both_still_complete(lifecycle: Lifecycle) -> None:
    sid, user = _provisioned(lifecycle)
    nas = lifecycle.lab.nas
    # Offline (NAK 503): nothing to change or end, no Disconnect.
    assert nas.remove_session(user)
    _change(lifecycle, sid, "500M")
    run_id, message = _completed(lifecycle, sid, "500M")
    assert message == "No active session: the new plan applies at the next login"
    assert _session_audit(lifecycle, run_id) == [
        ("applying", "CoA-Request", "nak Error-Cause=Session-Context-Not-Found", False)
    ]
    # Online, and the NAS refuses the CoA and the Disconnect: RADIUS and the BNG hold
    # the new plan, which the session gets when it next re-authenticates.
    nas.add_session(user)
    nas.nak_users[user] = 501  # Administratively-Prohibited
    _change(lifecycle, sid, "1G")
    run_id, message = _completed(lifecycle, sid, "1G")
    assert message == (
        "CoA-Request refused (Administratively-Prohibited); the Disconnect-Request was "
        "refused (Administratively-Prohibited): the new plan applies when the session "
        "next re-authenticates"
    )
    assert [(kind, ok) for _, kind, _, ok in _session_audit(lifecycle, run_id)] == [
        ("CoA-Request", False),
        ("Disconnect-Request", False),
    ]
    assert _group(lifecycle, user) == ("1G",)


def test_failure_at_the_bng_step_puts_the_old_plan_back(lifecycle: Lifecycle) -> None:
    sid, user = _provisioned(lifecycle)
    nas = lifecycle.lab.nas
    seen = len(nas.requests)
    bng = lifecycle.lab.device("bng-1")
    # The new plan's policy-map is missing on this BNG: the input line is refused after
    # the old input policy was detached (a half-applied change to undo as well).
    bng.faults.update(
        error_replies={
            r"^service-policy input PLAN-500M-IN": "% policy map PLAN-500M-IN not configured"
        }
    )

    with pytest.raises(Exception, match="service-policy input PLAN-500M-IN' rejected"):
        _change(lifecycle, sid, "500M")
    bng.faults.clear()

    svc = lifecycle.service(sid)
    assert (svc.status, svc.plan) == ("active", "100M")
    assert "PLAN-500M-IN' rejected" in (svc.error or "")
    assert _group(lifecycle, user) == ("100M",)
    assert _policies(lifecycle) == [OLD]
    assert nas.requests[seen:] == []  # the session was never told anything
    assert user in nas.sessions
    events = _events(lifecycle, sid, svc.flow_run_id)
    notices = [d["message"] for t, d in events if d.get("status") == "rolled_back"]
    assert notices == ["Restored RADIUS group 100M"]
    assert events[-1][0] == "service.plan_change.failed"
    assert events[-1][1]["step"] == 3
    assert "PLAN-500M-IN' rejected" in events[-1][1]["error"]
    assert [t for t, _ in events].count("service.plan_change.failed") == 1

    # The service is active on the old plan: the same change goes through now.
    _change(lifecycle, sid, "500M")
    _completed(lifecycle, sid, "500M")
    assert _policies(lifecycle) == [NEW]


def _refuse_plan(lc: Lifecycle, plan: str) -> None:
    """A real database fault: the row refuses to take ``plan``."""
    with lc.engine.begin() as conn:
        if lc.engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_plan BEFORE UPDATE OF plan ON service_instances "
                f"WHEN NEW.plan = '{plan}' BEGIN SELECT RAISE(ABORT, 'row refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_plan() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.plan = '{plan}' THEN RAISE EXCEPTION 'row refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_plan BEFORE UPDATE ON service_instances "
                "FOR EACH ROW EXECUTE FUNCTION refuse_plan()"
            )


def test_failure_at_the_last_step_undoes_the_session_too(lifecycle: Lifecycle) -> None:
    """Every device step done and the CoA acknowledged, then the row refuses the new
    plan: the rollback hooks send the old plan to the session and put RADIUS and the BNG
    back, latest step first."""
    sid, user = _provisioned(lifecycle)
    nas = lifecycle.lab.nas
    _refuse_plan(lifecycle, "500M")

    with pytest.raises(Exception, match="row refused"):
        _change(lifecycle, sid, "500M")

    svc = lifecycle.service(sid)
    assert (svc.status, svc.plan) == ("active", "100M")
    assert _group(lifecycle, user) == ("100M",)
    assert _policies(lifecycle) == [OLD]
    new, old = nas.requests[-2:]
    assert new.acked and new.attributes["Cisco-AVPair"] == NEW_AVPAIRS
    assert old.acked and "ip:sub-qos-policy-in=PLAN-100M-IN" in old.attributes["Cisco-AVPair"]
    assert nas.sessions[user].attributes["Cisco-AVPair"] == [
        "ip:sub-qos-policy-in=PLAN-100M-IN",
        "ip:sub-qos-policy-out=PLAN-100M-OUT",
    ]
    events = _events(lifecycle, sid, svc.flow_run_id)
    notices = [d["message"] for t, d in events if d.get("status") == "rolled_back"]
    assert notices == [
        "Sent the old plan to the session (CoA)",
        "Restored service-policy PLAN-100M-IN / PLAN-100M-OUT on bng-1",
        "Restored RADIUS group 100M",
    ]
    assert events[-1][0] == "service.plan_change.failed" and events[-1][1]["step"] == 5
    assert [step for step, kind, _, _ in _session_audit(lifecycle, svc.flow_run_id)] == [
        "applying",
        "rollback",
    ]


def test_the_flow_refuses_what_the_api_would(lifecycle: Lifecycle) -> None:
    """A run started with a bad plan (not through the API) changes nothing."""
    sid, user = _provisioned(lifecycle)
    for plan, needle in (("10G", "unknown plan '10G'"), ("100M", "already on plan '100M'")):
        with pytest.raises(Exception, match=needle):
            _change(lifecycle, sid, plan)
        svc = lifecycle.service(sid)
        assert (svc.status, svc.plan) == ("active", "100M")
        events = _events(lifecycle, sid, svc.flow_run_id)
        assert events[-1][0] == "service.plan_change.failed"
        assert events[-1][1]["step"] == 1
    assert _group(lifecycle, user) == ("100M",)
    assert _policies(lifecycle) == [OLD]


def test_a_crashed_plan_change_is_restored_by_the_reconciler(lifecycle: Lifecycle) -> None:
    """The run died after steps 2 and 3 (its rollback hooks never ran): the reconcile
    flow puts the recorded plan back in RADIUS and on the BNG, the service is active on
    it again (not failed), and the failed event names the crash."""
    from fiberflow.devices.registry import bng_driver
    from fiberflow.flows.reconcile import reconcile

    sid, user = _provisioned(lifecycle)
    svc = lifecycle.service(sid)
    lifecycle.begin(sid, Operation.PLAN_CHANGE)
    dead_run = "0c7e4b1a-5d2f-4e3a-9b8c-1d2e3f4a5b6c"
    with lifecycle.engine.begin() as conn:
        conn.execute(
            text("UPDATE service_instances SET flow_run_id = :run WHERE id = :id"),
            {"run": dead_run, "id": sid},
        )
    # What the dead run had done: the new plan in RADIUS and on the BNG.
    RadiusStore(lifecycle.engine).set_group(user, "500M")
    assert svc.vlan is not None
    inv = lifecycle.lab.inventory
    bng_driver(inv.bng("bng-1"), inv.walled_garden_policy).restore_plan(svc.vlan, *NEW)
    assert _policies(lifecycle) == [NEW]

    outcome = reconcile(sid, "flow run crashed: worker lost")

    assert outcome == "restored"
    after = lifecycle.service(sid)
    assert (after.status, after.plan) == ("active", "100M")
    assert "flow run crashed: worker lost" in (after.error or "")
    assert _group(lifecycle, user) == ("100M",)
    assert _policies(lifecycle) == [OLD]
    events = _events(lifecycle, sid, dead_run)
    assert events[-2][1]["status"] == "rolled_back"
    assert events[-1][0] == "service.plan_change.failed"
    assert "flow run crashed: worker lost" in events[-1][1]["error"]
    # Run again (a second reporter of the same dead run): nothing more happens.
    assert reconcile(sid, "flow run crashed: worker lost").startswith("nothing to do")
    assert len(_events(lifecycle, sid, dead_run)) == len(events)

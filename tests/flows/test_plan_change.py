"""Plan change against the lab: RADIUS group and BNG policies move to the new plan and
the session is told (CoA ACK; NAK or timeout -> Disconnect-Request; offline); every CoA
and Disconnect is in the audit log with its outcome. Failures and their compensation:
test_plan_change_failures.py."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import select

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

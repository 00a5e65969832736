"""Resumption against the lab: the reverse of suspension, soft and hard (ONT deactivated)."""

from __future__ import annotations

import pytest

from fiberflow.core.db.models import InvalidTransition, Operation
from fiberflow.devices.radius.sql import RadiusStore
from fiberflow.events.schema import validate_event
from fiberflow.flows.provision import provision
from fiberflow.flows.reprovision import reprovision
from fiberflow.flows.resume import resume
from fiberflow.flows.suspend import suspend
from tests.fixtures.lifecycle import Lifecycle

WALLED = "WALLED-GARDEN"
PLAN_POLICIES = ("PLAN-100M-IN", "PLAN-100M-OUT")


def _state(lc: Lifecycle, user: str) -> tuple[tuple[str, ...], list[tuple[str, str]], list[bool]]:
    """RADIUS groups, BNG (policy_in, policy_out) per sub-interface, ONT active flags."""
    sub = RadiusStore(lc.engine).get(user)
    assert sub is not None
    subifs = lc.lab.device("bng-1").state.dump()["subinterfaces"]
    onts = lc.lab.device("olt-1").state.dump()["onts"]
    return (
        sub.groups,
        [(s["policy_in"], s["policy_out"]) for s in subifs],
        [o["active"] for o in onts],
    )


def _assert_completed(lc: Lifecycle, sid: str, noun: str) -> None:
    svc = lc.service(sid)
    events = [e for e in lc.events(sid) if e.data.get("flow_run_id") == svc.flow_run_id]
    for e in events:
        validate_event(e.event_type, e.data)
    progress = [e.data for e in events if e.event_type == f"service.{noun}.progress"]
    assert [d["step"] for d in progress] == [1, 2, 3, 4]
    assert [e.event_type for e in events][-1] == f"service.{noun}.completed"


def test_resume_reverses_soft_and_hard_suspension(lifecycle: Lifecycle) -> None:
    sid = lifecycle.new_service()
    provision(sid)
    user = lifecycle.service(sid).radius_username
    assert user is not None
    nas = lifecycle.lab.nas
    assert _state(lifecycle, user) == (("100M",), [PLAN_POLICIES], [True])

    lifecycle.begin(sid, Operation.SUSPENSION)
    suspend(sid)
    assert _state(lifecycle, user) == (("suspended",), [(WALLED, WALLED)], [True])
    # Reprovisioning repairs active services only: a suspended one is refused, untouched.
    run_before = lifecycle.service(sid).flow_run_id
    with pytest.raises(InvalidTransition):
        reprovision(sid)
    assert (lifecycle.service(sid).status, lifecycle.service(sid).flow_run_id) == (
        "suspended",
        run_before,
    )
    assert _state(lifecycle, user) == (("suspended",), [(WALLED, WALLED)], [True])
    refused = lifecycle.events(sid)[-1]  # reported as what it was, not as the suspension
    assert refused.event_type == "service.reprovisioning.failed"
    assert "cannot start reprovisioning" in refused.data["error"]

    lifecycle.begin(sid, Operation.RESUMPTION)
    result = resume(sid)
    assert lifecycle.service(sid).status == "active"
    assert result["session"] == "session updated"
    assert _state(lifecycle, user) == (("100M",), [PLAN_POLICIES], [True])
    last = nas.requests[-1]
    assert (last.kind, last.username, last.acked) == ("coa", user, True)
    assert "ip:sub-qos-policy-in=PLAN-100M-IN" in last.attributes["Cisco-AVPair"]
    _assert_completed(lifecycle, sid, "resumption")

    # Hard, with the subscriber offline: the NAS answers 503 (no session), which is
    # not an error; the ONT is deactivated, and resumption activates it again.
    nas.remove_session(user)
    lifecycle.begin(sid, Operation.SUSPENSION)
    assert suspend(sid, hard=True)["session"] == "no active session"
    assert lifecycle.service(sid).status == "suspended"
    assert nas.requests[-1].error_cause == 503
    assert _state(lifecycle, user) == (("suspended",), [(WALLED, WALLED)], [False])
    _assert_completed(lifecycle, sid, "suspension")

    lifecycle.begin(sid, Operation.RESUMPTION)
    assert resume(sid)["session"] == "no active session"
    assert lifecycle.service(sid).status == "active"
    assert _state(lifecycle, user) == (("100M",), [PLAN_POLICIES], [True])
    _assert_completed(lifecycle, sid, "resumption")

"""Plan changes that fail against the lab: at the BNG step, at the last step (after the
session took the new plan), refused by the flow itself, and a run that died (the
reconciler). Each leaves the service active on its old plan in RADIUS, on the BNG and
in the session, with one failed event naming the cause."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fiberflow.core.db.models import Operation
from fiberflow.devices.radius.sql import RadiusStore
from tests.fixtures.lifecycle import Lifecycle
from tests.flows.test_plan_change import (
    NEW,
    NEW_AVPAIRS,
    OLD,
    _change,
    _completed,
    _events,
    _group,
    _policies,
    _provisioned,
    _session_audit,
)


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
